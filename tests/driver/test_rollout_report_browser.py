"""The rollout report as a person sees it: a real rollout against a real Prometheus (the
private promstack of driver_promstack, through driver_rollout; no shared platform), the report
written at its end, opened in Debian's headless Chromium.

For a healthy rollout (GO, four approved steps, promotion) and a rolled-back one (the
controller's judge catches an injected canary fault at phase 1): the page loads without a
console error, an uncaught exception or a request leaving the file; every chart has data
(each chart's section carries the points plotly drew, set by the page once it has drawn);
for the rollback, the fault-onset marker sits within one scrape interval of the moment the
fault was injected and the traffic-switch marker at the audit log's switch. A full-page
screenshot of each stays as a test artefact ($CE_TEST_ARTEFACTS, default
<tmp>/ce-test-artefacts/rollout-report/), never in the repo.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driver import cli, core
from driver.bake import parse_ts
from driver.report import CHARTS, ERROR_CHECKS, failed_checks
from tests.driver.browser import Page, chromium, open_page, screenshot
from tests.driver.driver_rollout import (
    BAKING,
    SCRAPE_S,
    MeshRollout,
    healthy_rollout,
    mesh_rollout,
    rolled_back_rollout,
)

ARTEFACTS = (
    Path(os.environ.get("CE_TEST_ARTEFACTS") or Path(tempfile.gettempdir()) / "ce-test-artefacts")
    / "rollout-report"
)
#: drawn: every chart's section has its data-count (set by the page after plotly drew it)
READY = (
    "document.querySelectorAll('section[data-chart]').length > 0 && "
    "document.querySelectorAll('section[data-chart]').length === "
    "document.querySelectorAll('section[data-count]').length"
)
SECTIONS = """JSON.stringify(Array.from(document.querySelectorAll('section[data-chart]')).map(
  function (s) { return {chart: s.dataset.chart, count: +s.dataset.count,
    series: +s.dataset.series, rendered: +s.dataset.rendered,
    onset: s.dataset.faultOnset || null, traffic: s.dataset.trafficSwitch || null}; }))"""
BUDGET_S = 60


def reported(m: MeshRollout, outcome: str) -> Path:
    """The report the end of the rollout wrote: its path in the audit log and the webhook."""
    entry = m.driver.audit.entries()[-1]
    assert entry["action"] == "report" and entry["outcome"] == outcome, entry
    hook = m.webhook.events[-1]
    assert hook["event"] == "rollout.report" and hook["report"] == entry["report"]
    path = Path(entry["report"])
    assert path.parent == m.reports and path.is_file()
    return path


def in_chromium(path: Path, name: str) -> tuple[Page, list[dict[str, Any]], str]:
    import json

    with chromium() as tab:
        page = open_page(tab, path, READY)
        sections = json.loads(tab.evaluate(SECTIONS))
        text = str(tab.evaluate("document.body.innerText"))
        shot = screenshot(tab, ARTEFACTS / f"{name}.png")
    print(f"screenshot: {shot}")
    assert page.errors == [], page.errors
    assert page.requests == [path.resolve().as_uri()], "the page fetched something else"
    assert [s["chart"] for s in sections] == ["timeline", *(k for k, *_ in CHARTS)]
    for s in sections:
        assert s["rendered"] > 0 and s["count"] > 0, s  # drawn, with data
    for s in sections[1:]:
        assert s["series"] == 2, f"{s['chart']}: canary and stable both drawn: {s}"
    assert shot.stat().st_size > 50_000
    return page, sections, text


def _plotly_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def test_a_healthy_rollout_report_in_chromium(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with mesh_rollout(tmp_path) as m:
        healthy_rollout(m)
        path = reported(m, "promoted")
        # on demand, through the CLI: the same rollout, the same file name
        ondemand = tmp_path / "on-demand"
        argv = ["--audit-log", str(tmp_path / "audit.jsonl"), "report", "--out", str(ondemand),
                "--prometheus", m.prom_url]  # fmt: skip
        assert cli.main(argv, runner_factory=lambda *a: m.stack) == core.OK
        assert (ondemand / path.name).is_file()
    _, sections, text = in_chromium(path, "healthy")
    assert all(s["onset"] is None and s["traffic"] is None for s in sections)
    # the timeline names every approval and who gave it; each judgement has its table
    for role in ("deployment-commander", "tech-lead", "sre", "product-owner"):
        assert f"{role} decided continue" in text or f"recorded\t{role}" in text, role
    assert text.count("p-value") >= 3  # the judgements of the steps 1->2, 2->3, 3->4
    elapsed = time.monotonic() - t0
    print(f"healthy rollout + report + browser: {elapsed:.1f} s")
    assert elapsed < BUDGET_S


#: what may catch each fault first: the SLO's absolute check or the comparison with stable
CATCHES = {
    "errors": set(ERROR_CHECKS),
    "latency": {"p95", "p99", "latency_vs_stable"},
}


@pytest.mark.parametrize("fault", sorted(CATCHES))
def test_a_rolled_back_rollout_report_marks_the_fault_and_the_switch(
    tmp_path: Path, fault: str
) -> None:
    t0 = time.monotonic()
    with mesh_rollout(tmp_path, config=BAKING) as m:
        injected = rolled_back_rollout(m, fault)
        assert injected.code == core.ROLLED_BACK, m.lines
        path = reported(m, "rolled back")
        (failed,) = [e for e in m.driver.audit.entries() if e["result"] == "judge_failed"]
        assert set(failed_checks(failed)) <= CATCHES[fault], failed["reason"]
        switched = next(e for e in m.driver.audit.entries() if e["result"] == "traffic_switched")
    _, sections, text = in_chromium(path, f"rolled-back-{fault}")
    switch_at = parse_ts(switched["ts"])
    for s in sections:
        onset = _plotly_time(s["onset"])
        off = onset.timestamp() - injected.at
        print(f"{fault} {s['chart']}: fault onset marker {off:+.3f} s from the injection")
        assert abs(off) <= SCRAPE_S, (s, injected.at)
        assert abs((_plotly_time(s["traffic"]) - switch_at).total_seconds()) < 0.002, s
    assert "judge_failed" in text and "fault onset" in text
    results = [e["result"] for e in m.driver.audit.entries()]
    assert "paused" not in results and "extended" not in results  # mid-bake, as meant
    elapsed = time.monotonic() - t0
    print(f"rolled-back ({fault}) rollout + report + browser: {elapsed:.1f} s")
    assert elapsed < BUDGET_S


def test_the_browser_check_sees_console_errors_and_fetches(tmp_path: Path) -> None:
    """The check above would catch a broken page: a console error, an uncaught exception,
    a script from a CDN (which an offline machine cannot load)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><head><script src='https://cdn.example.invalid/plotly.min.js'></script></head>"
        "<body><section data-chart='x' data-count='0'></section><script>"
        "console.error('boom'); undefinedFunction();</script></body></html>"
    )
    with chromium() as tab:
        page = open_page(tab, bad, READY)
    assert any("console.error: boom" in e for e in page.errors)
    assert any("undefinedFunction" in e for e in page.errors)
    assert any("cdn.example.invalid" in e for e in page.errors)
    assert page.requests != [bad.resolve().as_uri()]
