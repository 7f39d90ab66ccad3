"""A whole rollout against a real Prometheus, without the shared platform.

The synthetic exporter (the platform's, ``monitoring/exporter``) serves the mesh's telemetry
at 1000 requests/s; a private Prometheus scrapes it and the controller's ``/metrics`` every
second (driver_promstack). The stack is the fake one (driver_fakes: the program's own output
builders, no Pulumi), but every ``up`` and the rollback's traffic switch move the exporter's
split as the VirtualService would, so Prometheus sees the weights the rollout sets. The driver,
the controller, the gate, the judge and the report are the real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driver import core
from driver.audit import AuditLog
from driver.controller import Controller
from driver.metrics import RolloutMetrics
from driver.prom import PrometheusClient
from driver.stack import OnOutput, UpOutcome
from tests.driver.driver_fakes import FakeStack, FakeTraffic, advance_as, approve, promote_as
from tests.driver.driver_promstack import (
    Exporter,
    exporters,
    free_port,
    prometheus,
    wait_for_canary,
    wait_for_full_window,
)

#: the exporter's job as platform/telemetry.sh names it; it keeps the labels as exported
#: (the app's series carry their own job="claude-enhancer", which the dashboards select)
JOB = "istio-mesh"
SCRAPE_S = 1.0  # driver_promstack's scrape interval
#: short bakes and windows so a whole rollout fits in well under a minute; a high
#: confidence so a healthy canary is never failed by chance in the few comparisons it gets
CONFIG: dict[str, Any] = {
    "phase": 0,
    "bakeMinutes": {"1": 0.05, "2": 0.05, "3": 0.05, "4": 0.05},
    "intervalSeconds": 1,
    "dataGraceSeconds": 20,
    "gate": {"window": "5s", "minRequests": 20},
    "analysis": {"interval": "2s", "window": "10s", "maxExtension": "2s", "confidence": 0.999},
}
EXPORTER_FLAGS = [
    "--rps", "1000", "--tick", "0.05", "--canary-weight", "0",
    "--stable-error-rate", "0.0001", "--canary-error-rate", "0.0001",
]  # fmt: skip


class MeshStack(FakeStack):
    """``up`` also moves the exporter's split to the deployed weight (the VirtualService)."""

    def __init__(self, exporter: Exporter, **kw: Any) -> None:
        super().__init__(**kw)
        self.exporter = exporter

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        outcome = super().up(on_output, targets)
        self.exporter.control(canary_weight=outcome.outputs["canaryWeight"])
        return outcome


class MeshTraffic(FakeTraffic):
    """The rollback's server-side apply: the exporter's split moves at once."""

    def __init__(self, exporter: Exporter) -> None:
        super().__init__([])
        self.exporter = exporter

    def apply(self, manifest: Mapping[str, Any]) -> float:
        took = super().apply(manifest)
        self.exporter.control(canary_weight=self.events[-1].split("=")[1])
        return took


@dataclass
class Hook:
    events: list[dict[str, Any]] = field(default_factory=list)

    def send(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))


@dataclass
class MeshRollout:
    driver: core.Driver
    stack: MeshStack
    exporter: Exporter
    prom_url: str
    reports: Path
    webhook: Hook
    lines: list[str]

    def wait_bake(self, phase: int) -> None:
        cfg = self.driver.config()
        while not self.driver.bake_status(phase, cfg).done:
            time.sleep(0.2)

    def wait_canary(self, at_least: float) -> None:
        wait_for_canary(self.prom_url, JOB, CONFIG["gate"]["window"], at_least)


@contextmanager
def mesh_rollout(
    work: Path, flags: list[str] = EXPORTER_FLAGS, config: dict[str, Any] | None = None
) -> Iterator[MeshRollout]:
    metrics = RolloutMetrics("test")
    mport = metrics.serve(free_port())
    try:
        with (
            exporters({JOB: flags}) as exps,
            prometheus(
                {JOB: exps[JOB].port, "ce-rollout": mport},
                work,
                honor_labels=frozenset({JOB}),
            ) as url,
        ):
            exp = exps[JOB]
            stack = MeshStack(exp, config={**CONFIG, **(config or {})}, deployed=0)
            lines: list[str] = []
            hook = Hook()
            reports = work / "reports"
            d = core.Driver(
                stack,
                AuditLog(work / "audit.jsonl"),
                prom_factory=PrometheusClient,
                out=lines.append,
                traffic=MeshTraffic(exp),
                notifier=hook,
                metrics=metrics,
                report_to=core.ReportTarget(reports, url),
            )
            d._publish(0, d.config())
            # the GO judges stable's point estimates: one 5xx (at 0.01 %) in a half-filled
            # window would read as 0.1 %; a full window (5000 requests) needs five to fail
            wait_for_full_window(url, [JOB], CONFIG["gate"]["window"], at_least=4000)
            yield MeshRollout(d, stack, exp, url, reports, hook, lines)
    finally:
        metrics.close()


def healthy_rollout(m: MeshRollout) -> None:
    """GO, four approved steps by hand (`advance`, the gate and the judge each time), promote."""
    d = m.driver
    assert approve(d, "deployment-commander") == core.OK
    rep = advance_as(d, "deployment-commander", m.prom_url)
    assert rep.code == core.OK, m.lines
    for phase, role in ((1, "tech-lead"), (2, "sre"), (3, "product-owner")):
        m.wait_canary(100)
        m.wait_bake(phase)
        assert approve(d, role) == core.OK
        rep = advance_as(d, role, m.prom_url)
        assert rep.code == core.OK, m.lines
    m.wait_bake(4)
    assert approve(d, "deployment-commander") == core.OK
    assert promote_as(d, "deployment-commander") == core.OK, m.lines


@dataclass
class Fault:
    at: float
    """Epoch seconds at which the canary began to fail."""
    code: int | None
    """The controller's exit code."""


#: the rolled-back rollout bakes phase 1 for longer than the test runs: the fault comes mid-bake
BAKING = {"bakeMinutes": {**CONFIG["bakeMinutes"], "1": 1}}


#: the faults injected into the canary: 30 % 5xx, or latencies around 800 ms (P95 over 500)
FAULTS: dict[str, dict[str, float]] = {
    "errors": {"canary_error_rate": 0.3},
    "latency": {"canary_latency_ms": 800},
}


def rolled_back_rollout(m: MeshRollout, fault: str = "errors") -> Fault:
    """The controller (`run`) takes the GO, steps to phase 1; a few healthy seconds later the
    canary gets the ``fault``; the controller's judge fails it and rolls back."""
    d = m.driver
    assert approve(d, "deployment-commander") == core.OK
    result: dict[str, int] = {}
    ctl = Controller(d, m.prom_url)
    thread = threading.Thread(target=lambda: result.update(code=ctl.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while d.deployed_phase() != 1:
        assert time.monotonic() < deadline and thread.is_alive(), m.lines
        time.sleep(0.2)
    m.wait_canary(150)
    time.sleep(2)  # a few healthy scrapes of the canary at 5 %
    at = time.time()
    m.exporter.control(**FAULTS[fault])
    thread.join(timeout=40)
    return Fault(at, result.get("code"))
