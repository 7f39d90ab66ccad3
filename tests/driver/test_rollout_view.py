"""`status --watch` and the rollout report's pure parts, on snapshots the real driver makes
(fakes for the stack and Prometheus): what the view draws, the plain fallback when stdout
is not a terminal, the live redraw in a real terminal (tmux), how the report cuts the audit
log into rollouts and places a fault."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from driver import cli, core, report, status_view
from driver.audit import AuditLog
from driver.controller import Controller
from driver.metrics import RolloutMetrics
from rollout.gate import GateThresholds
from tests.driver.driver_fakes import HEALTHY, FakeApprovals, FakeProm, FakeStack, approve
from tests.driver.driver_rollout import Hook
from tests.driver.test_driver_logic import make_driver

ROOT = Path(__file__).resolve().parents[2]
CANARY = "5.1.0"
ANSI = re.compile(r"\x1b\[")


def paused_at_phase_2(tmp_path: Path, hook: Any = None, reports: Path | None = None) -> core.Driver:
    """Phase 2 (20 %), 10 of 45 bake minutes gone, paused by the judge: canary errors 3x
    stable's (both under the SLO), the relative check fails, phase 2's action is pause."""
    stack = FakeStack(config={"phase": 2}, deployed=2)
    prom = FakeProm(values={**HEALTHY, "error_ratio": 0.0002})
    prom.track_values[CANARY] = {"error_ratio": 0.0006}
    d, _, clk = make_driver(tmp_path, stack, prom=prom, notifier=hook)
    if reports is not None:  # nothing listens there: the report notes the failed queries
        d.report_to = core.ReportTarget(reports, "http://127.0.0.1:9")
    d.record(action="advance", actor="tech-lead", result="applied", from_phase=1, to_phase=2)
    clk.advance(10)
    assert Controller(d, "http://prom").turn() is None
    return d


def text_of(info: dict[str, Any], width: int = 140) -> str:
    console = Console(
        record=True, width=width, force_terminal=True, color_system=None, file=io.StringIO()
    )
    console.print(status_view.render(info))
    return console.export_text()


def test_the_view_draws_the_snapshot(tmp_path: Path) -> None:
    info = paused_at_phase_2(tmp_path).status()
    shown = text_of(info)
    assert "phase 2: stable 80% / canary 20%" in shown
    # the bake as a bar with the time left: 10 of 45 minutes
    assert "22% of 45m00s (35m00s left)" in shown
    assert "━" in shown  # rich's progress bar
    # each check: value against threshold, with its outcome
    row = next(line for line in shown.splitlines() if "error_ratio_vs_stable" in line)
    assert re.search(r"3\.00x\s.*<= 1\.50x\s.*fail", row), row
    row = next(line for line in shown.splitlines() if "│ p95 " in line or " p95 " in line)
    assert "< 500 ms" in row and "pass" in row, row
    assert "agents_up" in shown  # the gate's own checks the judge does not cover
    # the judge's last outcome and the pending approval with who may give it
    assert "FAIL at" in shown and "(paused, phase 2)" in shown
    assert "approval pending" in shown
    assert "sre may give it: paused since" in shown
    assert "./ce rollout approve (as the sre)" in shown


def test_the_view_is_a_pure_function_of_the_snapshot(tmp_path: Path) -> None:
    info = paused_at_phase_2(tmp_path).status()
    again = json.loads(json.dumps(info))  # what `status --json` would hand another process
    assert text_of(info) == text_of(again)


def test_a_decision_clears_the_pending_approval(tmp_path: Path) -> None:
    d = paused_at_phase_2(tmp_path)
    assert approve(d, "sre") == core.OK
    info = d.status()
    assert info["pending"]["waiting"] is False
    assert "given: sre decided continue" in text_of(info)


def test_a_pause_writes_the_report_even_without_prometheus(tmp_path: Path) -> None:
    hook = Hook()
    d = paused_at_phase_2(tmp_path, hook, tmp_path / "reports")
    last = d.audit.entries()[-1]
    assert (last["action"], last["result"], last["outcome"]) == ("report", "reported", "paused")
    assert hook.events[-1]["event"] == "rollout.report"
    assert hook.events[-1]["report"] == last["report"]
    page = Path(last["report"]).read_text()
    assert "query error" in page and "127.0.0.1:9" in page  # said on the page, not raised
    assert "error_ratio_vs_stable" in page  # the judgement's table from the audit log


def test_the_judge_comes_live_from_a_running_controller(tmp_path: Path) -> None:
    d = paused_at_phase_2(tmp_path)  # the audit log holds the pause's failed judgement
    live = Controller(d, "http://prom")._judgement(2, 60)  # what `run` judges this turn
    metrics = RolloutMetrics("test")
    metrics.judge(2, live)
    url = f"http://127.0.0.1:{metrics.serve(0)}"
    try:
        info = d.status(url)
        shown = info["judgement"]
        assert shown["decision"] == "controller judging" and shown["phase"] == 2
        assert shown["outcome"] == live.outcome.value
        want = {c.name: (c.outcome.value, c.value, c.threshold, c.unit) for c in live.checks}
        got = {c["name"]: (c["outcome"], c["value"], c["threshold"], c["unit"])
               for c in shown["checks"]}  # fmt: skip
        assert got == want  # the exposition carries floats exactly
        assert "(controller judging, phase 2)" in text_of(info)
        metrics.judge(1, live)  # a judgement of another phase is not this phase's
        assert d.status(url)["judgement"]["decision"] == "paused"
    finally:
        metrics.close()
    assert d.status(url)["judgement"]["decision"] == "paused"  # no controller: the audit log's


def test_watch_falls_back_to_plain_lines_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = paused_at_phase_2(tmp_path)
    stack = d.runner
    argv = ["--audit-log", str(tmp_path / "audit.jsonl"), "status", "--watch"]
    code = cli.main([*argv, "--frames", "3", "--interval", "0"], runner_factory=lambda *a: stack)
    out = capsys.readouterr().out
    assert code == core.OK
    assert not ANSI.search(out), "no colour or cursor movement into a pipe"
    lines = out.splitlines()
    assert "phase            phase 2: stable 80% / canary 20%" in lines
    assert any(x.startswith("approval         sre may give it: paused since") for x in lines)
    assert any(re.match(r"  error_ratio_vs_stable\s+relative\s+3\.00x <= 1\.50x\s+fail", x)
               for x in lines), lines  # fmt: skip
    # the snapshot did not change between the frames: one block, not three
    assert sum(x.startswith("stack ") for x in lines) == 1


def test_status_without_watch_prints_the_same_plain_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = paused_at_phase_2(tmp_path)
    stack = d.runner
    argv = ["--audit-log", str(tmp_path / "audit.jsonl"), "status"]
    assert cli.main(argv, runner_factory=lambda *a: stack) == core.OK
    out = capsys.readouterr().out.splitlines()
    assert out[:-1] == status_view.plain_lines(d.status())[:-1] or out[0].startswith("stack")
    assert out[-1] == f"audit log        {tmp_path / 'audit.jsonl'}"


# --------------------------------------------------------------------------- live (tmux)

WATCHER = """
import sys
sys.path.insert(0, {root!r})
from driver import cli
from pathlib import Path
from tests.driver.driver_fakes import FakeApprovals, FakeStack
stack = FakeStack(config={{"phase": 2, "bakeMinutes": {{"2": 1}}}}, deployed=2)
store = FakeApprovals(lambda: None, path=Path({approvals!r}))
sys.exit(cli.main(["--audit-log", {audit!r}, "status", "--watch", "--interval", "0.5"],
                  runner_factory=lambda *a: stack, approvals_factory=lambda *a: store))
"""


def _pane(target: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_watch_redraws_in_place_in_a_terminal(tmp_path: Path) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    audit = tmp_path / "audit.jsonl"
    log = AuditLog(audit)
    now = datetime.now(UTC)
    entered = now - timedelta(seconds=20)  # 20 s into a 60 s bake
    log.append(
        {"ts": entered.isoformat().replace("+00:00", "Z"), "action": "advance", "actor": "sre",
         "from_phase": 1, "to_phase": 2, "result": "applied", "reason": "approved by tech-lead"}
    )  # fmt: skip
    script = tmp_path / "watch.py"
    shared = tmp_path / "approvals.json"  # the cluster both processes read
    script.write_text(WATCHER.format(root=str(ROOT), audit=str(audit), approvals=str(shared)))
    session = f"ce-watch-{time.monotonic_ns()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "50",
         f"{sys.executable} {script}"],
        check=True,
    )  # fmt: skip
    try:
        first = _wait_pane(session, lambda p: _left(p) is not None)
        assert "sre may give it" not in first  # the bake is not over: nothing pending
        # the bake moves on and an approval arrives: the same screen shows both, redrawn
        d = core.Driver(
            FakeStack(config={"phase": 2}, deployed=2),
            log,
            out=lambda _: None,
            approvals=FakeApprovals(core.utcnow, path=shared),
        )
        assert approve(d, "sre") == core.OK
        later = _wait_pane(
            session,
            lambda p: "given: sre decided continue" in p and (_left(p) or 99) < (_left(first) or 0),
        )
        assert later.count("rollout status") == 1, "redrawn in place, not scrolled"
        assert later.count("phase 2: stable 80% / canary 20%") == 1
        assert not ANSI.search(later)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _left(pane: str) -> int | None:
    """Seconds of bake left as the progress bar's label shows them."""
    m = re.search(r"\d+% of 1m00s \((\d+)m(\d+)s left\)", pane)
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def _wait_pane(session: str, ok: Any, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = _pane(session)
        if ok(pane):
            return pane
        time.sleep(0.2)
    pytest.fail(f"the pane never showed it:\n{pane}", pytrace=False)


# --------------------------------------------------------------------------- report (pure)


def _e(ts: datetime, **kw: Any) -> dict[str, Any]:
    return {"ts": ts.isoformat().replace("+00:00", "Z"), **kw}


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _two_rollouts() -> list[dict[str, Any]]:
    s = timedelta(seconds=1)
    return [
        _e(T0, action="approve", phase=0, actor="deployment-commander", result="recorded"),
        _e(T0 + s, action="advance", from_phase=0, to_phase=1, result="applied"),
        _e(T0 + 2 * s, action="gate", from_phase=1, result="judge_failed"),
        _e(T0 + 3 * s, action="rollback", trigger="judge_failed", result="traffic_switched"),
        _e(T0 + 4 * s, action="rollback", trigger="judge_failed", to_phase=0, result="applied"),
        _e(T0 + 5 * s, action="report", result="reported", report="/r.html"),
        _e(T0 + 9 * s, action="advance", from_phase=0, to_phase=1, result="applied"),
        _e(T0 + 10 * s, action="judge", from_phase=1, result="paused"),
    ]


def test_the_audit_log_is_cut_into_rollouts() -> None:
    s = timedelta(seconds=1)
    entries = _two_rollouts()
    first, second = report.rollouts(entries)
    assert first.outcome == "rolled back" and len(first.entries) == 5
    assert second.outcome == "paused" and second.start == T0 + 9 * s
    assert report.failure(first) is entries[2]
    # a promotion's own traffic switch does not end the rollout; the promotion does
    promo = [
        _e(T0, action="rollback", trigger="promote", to_phase=0, result="applied"),
        _e(T0 + s, action="promote", result="promoted"),
    ]
    assert [r.outcome for r in report.rollouts(promo)] == ["promoted"]


def test_report_all_writes_one_page_per_rollout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for e in _two_rollouts():
        log.append(e)
    argv = ["--audit-log", str(log.path), "report", "--all", "--out", str(tmp_path / "r"),
            "--prometheus", "http://127.0.0.1:9"]  # fmt: skip
    assert cli.main(argv, runner_factory=lambda *a: FakeStack(deployed=0)) == core.OK
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == [
        "claude-enhancer-test-20260101T120000Z.html",
        "claude-enhancer-test-20260101T120009Z.html",
    ]
    assert all(Path(p).is_file() for p in written)


def _pod(offset: float, onset: float, rate: float, per_s: float = 50) -> list[Any]:
    """One pod's raw counters (requests, 5xx), scraped every second from 1000 + offset;
    its 5xx series is born with the first error, as prometheus_client's labels() does."""
    reqs, errs, n, k = [], [], 0.0, 0.0
    for i in range(21):
        t = 1000.0 + offset + i
        reqs.append([t, str(n)])
        if k:
            errs.append([t, str(k)])
        n += per_s  # what happens in (t, t + 1], seen by the next scrape
        k += per_s * rate * min(1.0, max(0.0, t + 1 - onset))  # failing from the onset on
    return [{"values": reqs}, {"values": errs}]


def test_the_fault_onset_is_the_change_point_of_the_bad_request_rate() -> None:
    requests, errors = _pod(0.0, onset=1007.6, rate=0.3)
    found = report.fault_onset(report.intervals([requests], [errors], 999.0, 1.0))
    assert found is not None
    # the first 5xx happen in (1007, 1008] and the scrape at 1008 carries them
    assert (found.low.timestamp(), found.high.timestamp()) == (1007.0, 1008.0)
    assert found.at.timestamp() == 1007.5
    assert found.rate_before == 0.0 and found.rate_after == pytest.approx(0.3, abs=0.02)
    requests, errors = _pod(0.0, onset=9999, rate=0.3)
    assert report.fault_onset(report.intervals([requests], [errors], 999.0, 1.0)) is None


def test_pods_scraped_at_different_moments_place_the_fault_within_a_scrape() -> None:
    pods = [_pod(off, onset=1010.0, rate=0.2) for off in (0.0, 0.35, 0.8)]
    every = report.intervals([p[0] for p in pods], [p[1] for p in pods], 999.0, 1.0)
    assert sum(x[2] for x in every) == pytest.approx(3 * 20 * 50)  # every increase, once
    found = report.fault_onset(every)
    assert found is not None and abs(found.at.timestamp() - 1010.0) <= 1.0, found


def test_slow_requests_come_from_the_buckets_at_or_over_the_limit() -> None:
    def bucket(le: str, values: list[float]) -> dict[str, Any]:
        return {"metric": {"le": le, "pod": "a"}, "values": [[1000.0 + i, str(v)]
                for i, v in enumerate(values)]}  # fmt: skip

    buckets = [bucket("250.0", [10, 20, 20]), bucket("500.0", [10, 20, 21]),
               bucket("1000.0", [10, 21, 30]), bucket("+Inf", [10, 21, 30])]  # fmt: skip
    every, slow, bound = report.slower_than(buckets, 400)
    assert bound == 500.0 and every == [buckets[-1]]
    assert slow == [{"values": [[1000.0, "0.0"], [1001.0, "1.0"], [1002.0, "9.0"]]}]
    assert report.slower_than(buckets, 5000)[2] is None  # no finite bound reaches it


def test_a_series_there_from_the_start_is_a_baseline_not_an_increase() -> None:
    old = {"values": [[1000.0, "500"], [1001.0, "550"]]}  # scraped from the window's start
    born = {"values": [[1005.0, "7"], [1006.0, "9"]]}  # a 5xx series born mid-window
    assert report.increments([old, born], 999.5, 1.0) == [(1001.0, 50.0), (1005.0, 7.0),
                                                          (1006.0, 2.0)]  # fmt: skip
    assert report.scrape_interval([old]) == 1.0


def test_the_page_is_self_contained_with_one_section_per_chart() -> None:
    s = timedelta(seconds=10)
    r = report.Rollout(
        (
            _e(T0, action="advance", actor="deployment-commander", from_phase=0, to_phase=1,
               result="applied"),
            _e(T0 + s, action="promote", actor="deployment-commander", result="promoted"),
        ),
        "promoted",
    )  # fmt: skip
    pts = [(T0 + timedelta(seconds=i), 0.001 * i) for i in range(5)]
    data = report.ReportData(
        project="p", stack="s", rollout=r, weights={0: 0, 1: 5}, thresholds=GateThresholds(),
        start=T0, end=T0 + 2 * s, step_s=1, chart_window="4s", scrape_s=1.0,
        series={k: {"stable": pts, "canary": pts} for k, *_ in report.CHARTS},
    )  # fmt: skip
    page = report.render_html(data)
    assert page.count('<section class="chart"') == 1 + len(report.CHARTS)
    # nothing to fetch: no script or style by URL (the browser test sees no request leave)
    assert not re.search(r"<(script|link)[^>]*(src|href)=", page)
    assert page.count("Plotly.newPlot") == 1 + len(report.CHARTS)
    assert len(page) > 1_000_000  # plotly.js itself is inlined (once)
