"""The controller's /metrics, scraped by a real Prometheus evaluating monitoring/rules.yaml:
the rollout info alerts fire when a phase completes and the traffic split changes."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from driver import core
from driver.audit import AuditLog
from driver.metrics import RolloutMetrics
from tests.driver.driver_fakes import HEALTHY, Clock, FakeProm, FakeStack, FakeTraffic, advance_as
from tests.driver.driver_promstack import free_port, prometheus

ROOT = Path(__file__).resolve().parents[2]


def _firing(url: str) -> set[str]:
    q = urllib.parse.urlencode({"query": 'ALERTS{alertstate="firing",severity="info"}'})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as r:
        data = json.loads(r.read())
    return {x["metric"]["alertname"] for x in data["data"]["result"]}


def _count(url: str, expr: str) -> int:
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as r:
        data = json.loads(r.read())
    return sum(len(x["values"]) for x in data["data"]["result"])


def _wait(cond: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def test_info_alerts_fire_on_a_completed_phase(tmp_path: Path) -> None:
    m = RolloutMetrics("local")
    port = m.serve(free_port())
    stack = FakeStack(config={"phase": 0}, deployed=0)
    d = core.Driver(
        stack,
        AuditLog(tmp_path / "a.jsonl"),
        clock=Clock(),
        prom_factory=lambda _u: FakeProm(values=HEALTHY),
        out=lambda _l: None,
        traffic=FakeTraffic(stack.events),
        metrics=m,
    )
    d._publish(0, d.config())
    try:
        with prometheus(
            {"ce-rollout": port}, tmp_path, rule_files=(ROOT / "monitoring" / "rules.yaml",)
        ) as url:
            # scrapes at phase 0 first (Prometheus' first scrape waits for service discovery),
            # so the step is seen as a change
            assert _wait(lambda: _count(url, "ce_rollout_canary_weight[30s]") >= 2, 60)
            assert _firing(url) == set()
            assert advance_as(d, "deployment-commander", "http://prom").code == core.OK
            ok = _wait(lambda: {"CERolloutPhaseCompleted", "CETrafficSwitched"} <= _firing(url), 60)
            assert ok, _firing(url)
    finally:
        m.close()
