"""The controller's ``/metrics``: what the info alerts and the dashboard read."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import MetricsHandler
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from rollout.gate import GateResult
from rollout.judge import CHECK_UNITS, METRIC_HELP, Judgement, MetricSample, metric_samples
from rollout.phases import MAX_PHASE


class _LatestJudgement(Collector):
    """Serves the last judgement's samples; a new judgement replaces every series, so a
    check that is no longer judged (e.g. the relative ones at 100 %) disappears."""

    def __init__(self) -> None:
        self.samples: list[MetricSample] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_name: dict[str, list[MetricSample]] = {}
        for x in self.samples:
            by_name.setdefault(x.name, []).append(x)
        for name, xs in by_name.items():
            keys = sorted(xs[0].labels)
            fam = GaugeMetricFamily(name, METRIC_HELP.get(name, name), labels=keys)
            for x in xs:
                fam.add_metric([x.labels[k] for k in keys], x.value)
            yield fam


class RolloutMetrics:
    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.registry = CollectorRegistry()
        self.phase = Gauge(
            "ce_rollout_phase", "Deployed rollout phase (0..4)", ["stack"], registry=self.registry
        )
        self.canary_weight = Gauge(
            "ce_rollout_canary_weight",
            "Canary traffic weight in percent",
            ["stack"],
            registry=self.registry,
        )
        self.completed = Counter(
            "ce_rollout_phase_completed",
            "Phases that completed their bake with a passing gate",
            ["stack", "phase"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "ce_rollout_rollbacks",
            "Rollbacks to phase 0",
            ["stack", "trigger"],
            registry=self.registry,
        )
        self.gate_passed = Gauge(
            "ce_rollout_gate_check_passed",
            "Last gate evaluation per check (1 pass, 0 fail)",
            ["stack", "phase", "check"],
            registry=self.registry,
        )
        self.gate_value = Gauge(
            "ce_rollout_gate_check_value",
            "Last value seen per gate check (NaN = no data)",
            ["stack", "phase", "check"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "ce_rollout_paused", "1 while the rollout is paused", ["stack"], registry=self.registry
        )
        self.awaiting_data = Gauge(
            "ce_rollout_awaiting_data",
            "1 while the controller holds the phase waiting for the canary's first data",
            ["stack"],
            registry=self.registry,
        )
        self._judgement = _LatestJudgement()
        self.registry.register(self._judgement)
        self._server: ThreadingHTTPServer | None = None
        # counters exist at 0 from the first scrape, so increase() sees the first completion
        for p in range(MAX_PHASE + 1):
            self.completed.labels(stack, str(p))
        self.paused.labels(stack).set(0)
        self.awaiting_data.labels(stack).set(0)

    def set_phase(self, phase: int, canary_weight: int) -> None:
        self.phase.labels(self.stack).set(phase)
        self.canary_weight.labels(self.stack).set(canary_weight)

    def gate(self, phase: int, result: GateResult) -> None:
        for c in result.checks:
            self.gate_passed.labels(self.stack, str(phase), c.name).set(1 if c.passed else 0)
            value = c.value if isinstance(c.value, (int, float)) else float("nan")
            self.gate_value.labels(self.stack, str(phase), c.name).set(value)

    def judge(self, phase: int, j: Judgement) -> None:
        self._judgement.samples = metric_samples(j, {"stack": self.stack, "phase": str(phase)})

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        handler = MetricsHandler.factory(self.registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def read_judgement(text: str, stack: str) -> dict[str, Any] | None:
    """The controller's last judgement for ``stack`` back from its ``/metrics`` text (what
    :meth:`RolloutMetrics.judge` serves), shaped as the status shows a judgement; None
    when it has judged nothing yet."""
    outcome: str | None = None
    phase: str | None = None
    checks: dict[tuple[str, str], dict[str, Any]] = {}
    fields = {
        "ce_judge_check_value": "value",
        "ce_judge_check_threshold": "threshold",
        "ce_judge_check_p_value": "p_value",
    }
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            lb = smp.labels
            if lb.get("stack") != stack:
                continue
            if smp.name == "ce_judge_outcome" and smp.value == 1:
                outcome, phase = lb["outcome"], lb.get("phase")
            elif smp.name in fields or smp.name == "ce_judge_check_outcome":
                c = checks.setdefault(
                    (lb["check"], lb["layer"]),
                    {
                        "name": lb["check"],
                        "layer": lb["layer"],
                        "unit": CHECK_UNITS.get(lb["check"]),
                    },
                )
                if smp.name == "ce_judge_check_outcome":
                    if smp.value == 1:
                        c["outcome"] = lb["outcome"]
                else:
                    c[fields[smp.name]] = smp.value
    if outcome is None:
        return None
    return {
        "outcome": outcome,
        "phase": int(phase) if phase else None,
        "checks": list(checks.values()),
    }


def controller_judgement(url: str, stack: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """:func:`read_judgement` from a running controller's ``/metrics``; None when none runs."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        return read_judgement(text, stack)
    except (ValueError, KeyError):  # something else answers on that port
        return None
