"""Integration: the gate against a real Prometheus scraping the synthetic exporter.

One Prometheus scrapes four exporters (one job each); the gate's label
selector picks the job. Needs the Debian ``prometheus`` binary (missing = FAIL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driver import core
from driver.audit import AuditLog
from driver.prom import PrometheusClient, collect_gate_inputs
from rollout import phases
from rollout.gate import GateResult, GateThresholds, evaluate
from tests.driver.driver_fakes import Clock, FakeStack, advance_as, assert_failed_on
from tests.driver.driver_promstack import (
    exporters,
    prometheus,
    wait_for_canary,
    wait_for_full_window,
)

#: the mesh at phase 1's weight (5 % of 400 requests/s: ~300 canary requests per window)
AT_PHASE_1 = ["--canary-weight", str(phases.PHASE_WEIGHTS[1]), "--rps", "400"]
SPECS = {
    "healthy": [*AT_PHASE_1],
    "errors": ["--canary-error-rate", "0.02", *AT_PHASE_1],
    "slow": ["--canary-latency-ms", "800", *AT_PHASE_1],
    "notraffic": ["--no-traffic", *AT_PHASE_1],
}
WINDOW = "15s"
MIN_REQUESTS = 100


def thresholds(job: str) -> GateThresholds:
    return GateThresholds(
        window=WINDOW, min_requests=MIN_REQUESTS, selector=f'reporter="destination",job="{job}"'
    )


@pytest.fixture(scope="module")
def prom_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prom")
    with exporters(SPECS) as exps, prometheus({n: e.port for n, e in exps.items()}, work) as url:
        wait_for_full_window(url, list(SPECS), WINDOW)
        for job in SPECS:  # most of a window at the canary's 20 requests/s (notraffic: none)
            if job != "notraffic":
                wait_for_canary(url, job, WINDOW, 250)
        yield url


#: the program's own Istio labels per track (from its pure builders, via the fake outputs)
TARGETS = core.targets_from_outputs(FakeStack(deployed=1).outputs())


def gate(url: str, job: str, track: str = "canary") -> GateResult:
    t = thresholds(job)
    phase = 0 if track == "stable" else 1
    return evaluate(
        collect_gate_inputs(PrometheusClient(url), t, TARGETS[track]),
        t,
        phases.phase(phase).gate_profile,
    )


def failures(r: GateResult) -> dict[str, str]:
    return {c.name: c.reason for c in r.failures}


def test_metric_names_exist(prom_url: str) -> None:
    names = PrometheusClient(prom_url).metric_names()
    assert {"istio_requests_total", "istio_request_duration_milliseconds_bucket"} <= names


def test_healthy_canary_passes(prom_url: str) -> None:
    r = gate(prom_url, "healthy")
    assert r.passed, r.summary()
    values = {c.name: c.value for c in r.checks}
    assert values["error_ratio"] == 0.0
    assert isinstance(values["p95"], float) and values["p95"] < 500
    assert values["agents_up"] == 0.0  # no agent down
    assert isinstance(values["request_count"], float) and values["request_count"] >= MIN_REQUESTS


def test_two_percent_errors_fail(prom_url: str) -> None:
    r = gate(prom_url, "errors")
    assert set(failures(r)) == {"error_ratio"}, r.summary()
    ratio = next(c.value for c in r.checks if c.name == "error_ratio")
    assert isinstance(ratio, float) and 0.005 < ratio < 0.06
    assert ">= 0.100%" in failures(r)["error_ratio"]


def test_p95_800ms_fails(prom_url: str) -> None:
    r = gate(prom_url, "slow")
    assert set(failures(r)) == {"p95"}, r.summary()
    p95 = next(c.value for c in r.checks if c.name == "p95")
    assert isinstance(p95, float) and p95 >= 500
    assert ">= 500.0 ms" in failures(r)["p95"]


def test_no_traffic_fails_never_passes(prom_url: str) -> None:
    r = gate(prom_url, "notraffic")
    assert not r.passed
    f = failures(r)
    assert {"request_count", "error_ratio", "p95", "p99"} <= set(f), r.summary()
    assert "no data" in f["request_count"]


def test_go_no_go_judges_stable_even_without_canary_traffic(prom_url: str) -> None:
    assert gate(prom_url, "notraffic", track="stable").passed


def test_missing_metrics_fail(prom_url: str) -> None:
    t = GateThresholds(window=WINDOW, min_requests=MIN_REQUESTS, selector='job="nonexistent"')
    r = evaluate(collect_gate_inputs(PrometheusClient(prom_url), t, TARGETS["canary"]), t)
    assert not r.passed and "no data" in failures(r)["request_count"]


def test_unreachable_prometheus_fails() -> None:
    t = thresholds("healthy")
    r = evaluate(
        collect_gate_inputs(
            PrometheusClient("http://127.0.0.1:9", timeout=2), t, TARGETS["canary"]
        ),
        t,
    )
    assert not r.passed and "could not list metric names" in failures(r)["metrics_present"]


@pytest.mark.parametrize(
    ("job", "check"),
    [("errors", "error_ratio"), ("slow", "p95"), ("notraffic", "request_count")],
)
def test_driver_rolls_back_on_real_gate(
    prom_url: str, tmp_path: Path, job: str, check: str
) -> None:
    """Driver + real Prometheus + fake Pulumi: a bad canary at phase 1 is rolled back."""
    gate_cfg = {"window": WINDOW, "minRequests": MIN_REQUESTS, "selector": f'job="{job}"'}
    stack = FakeStack(config={"phase": 1, "bakeMinutes": {"1": 0}, "gate": gate_cfg}, deployed=1)
    lines: list[str] = []
    d = core.Driver(stack, AuditLog(tmp_path / "a.jsonl"), clock=Clock(), out=lines.append)
    rep = advance_as(d, "tech-lead", prom_url)
    assert rep.code == core.ROLLED_BACK, lines
    assert stack.outputs()["rolloutPhase"] == 0
    assert assert_failed_on(d.audit.entries(), check)["from_phase"] == 1


def test_driver_advances_on_real_healthy_gate(prom_url: str, tmp_path: Path) -> None:
    gate_cfg = {"window": WINDOW, "minRequests": MIN_REQUESTS, "selector": 'job="healthy"'}
    stack = FakeStack(config={"phase": 1, "bakeMinutes": {"1": 0}, "gate": gate_cfg}, deployed=1)
    lines: list[str] = []
    d = core.Driver(stack, AuditLog(tmp_path / "a.jsonl"), clock=Clock(), out=lines.append)
    assert advance_as(d, "tech-lead", prom_url).code == core.OK, lines
    assert stack.outputs()["rolloutPhase"] == 2
