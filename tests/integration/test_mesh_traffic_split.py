"""The platform's synthetic Istio exporter splits requests as the mesh would: by the canary
weight of the VirtualService the program applied, read from the API server.

Before, each track got the same requests/s whatever the phase, so a gate or judge at 5 % saw
as much canary traffic as at 50 %. Measured here from the exporter's own counters (the
sidecar's ``reporter="destination"`` series) over a few seconds.

Runs against the shared `local` stack; it is left at phase 0.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driver.traffic import KubectlTraffic
from rollout import phases
from tests.integration.conftest import LocalProject

EXPORTER = f"http://127.0.0.1:{os.environ.get('CE_EXPORTER_PORT', '15090')}"


def _answered() -> dict[str, float]:
    """Requests answered so far per destination_workload (api-blue / api-green)."""
    with urllib.request.urlopen(f"{EXPORTER}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "istio_requests_total" and s.labels["reporter"] == "destination":
                w = s.labels["destination_workload"]
                out[w] = out.get(w, 0.0) + s.value
    return out


def _canary_share(seconds: float = 3.0) -> float:
    a = _answered()
    time.sleep(seconds)
    b = _answered()
    d = {w: b.get(w, 0.0) - a.get(w, 0.0) for w in ("api-blue", "api-green")}
    total = sum(d.values())
    assert total > 0, f"the exporter answered nothing in {seconds} s: {d}"
    return 100.0 * d["api-green"] / total


def _eventually_share(want: float, tolerance: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while True:
        got = _canary_share()
        if abs(got - want) <= tolerance or time.monotonic() > deadline:
            return got


@pytest.fixture
def at_phase_1(local_project: LocalProject) -> Iterator[LocalProject]:
    local_project.set_phase(1)
    local_project.up()
    try:
        yield local_project
    finally:
        local_project.set_phase(0)
        local_project.up()


def test_the_canary_answers_its_phase_weight_and_follows_the_applied_object(
    at_phase_1: LocalProject,
) -> None:
    got = _eventually_share(phases.PHASE_WEIGHTS[1], 1.0)
    assert abs(got - phases.PHASE_WEIGHTS[1]) <= 1.0, f"canary share {got:.1f} % at phase 1"
    # the controller's rollback: phase 0 weights applied to the live object before any `up`
    # (the stack file still says phase 1): the traffic moves with the object
    rollback = json.loads(at_phase_1.pulumi("stack", "output", "trafficRollback", "--json").stdout)
    KubectlTraffic(kubeconfig=at_phase_1.env["KUBECONFIG"]).apply(rollback)
    got = _eventually_share(0.0, 0.0)
    assert got == 0.0, f"canary share {got:.1f} % after the rollback's apply"
