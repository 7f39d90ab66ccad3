"""Driver and controller with fakes: steps, NO-GO, rollback order, promote, pause, resume, lock,
webhook and /metrics (no CLI, no cluster)."""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from driver import bake, cli, core
from driver.audit import REDACTED, AuditLog, default_audit_path, redact
from driver.controller import Controller
from driver.lock import LockHeld, StackLock
from driver.metrics import RolloutMetrics
from driver.notify import WebhookNotifier
from driver.prom import collect_gate_inputs
from driver.stack import Resource, rollback_targets
from driver.traffic import TrafficError, provider_field_manager
from rollout import phases as rollout
from rollout.gate import GateThresholds
from tests.driver.driver_fakes import (
    HEALTHY,
    Clock,
    FakeApprovals,
    FakeProm,
    FakeStack,
    FakeTraffic,
    advance_as,
    approve,
    promote_as,
)

T = GateThresholds(min_requests=100)


class TestCollect:
    def test_collect_runs_every_query_on_the_tracks_labels(self) -> None:
        prom = FakeProm(values=HEALTHY)
        stack = FakeStack(deployed=1)
        target = core.targets_from_outputs(stack.outputs())["canary"]
        gi = collect_gate_inputs(prom, T, target)
        assert (gi.error_ratio, gi.p95_ms, gi.p99_ms, gi.request_count, gi.agents_down) == (
            0.0,
            120.0,
            300.0,
            1_000_000.0,
            0.0,
        )
        assert len(prom.queries) == 6
        assert all('destination_version="5.1.0"' in q for q in prom.queries[:4])
        # the app's own series (agents, workflows) carry the pod's labels
        assert all('version="5.1.0"' in q for q in prom.queries[4:])

    def test_missing_metrics_skip_queries(self) -> None:
        prom = FakeProm(names={"up"}, values=HEALTHY)
        target = core.targets_from_outputs(FakeStack(deployed=1).outputs())["canary"]
        gi = collect_gate_inputs(prom, T, target)
        assert prom.queries == [] and gi.request_count is None

    def test_nan_becomes_no_data(self) -> None:
        target = core.targets_from_outputs(FakeStack(deployed=1).outputs())["canary"]
        gi = collect_gate_inputs(FakeProm(values={**HEALTHY, "p95_ms": math.nan}), T, target)
        assert gi.p95_ms is None

    def test_outputs_without_targets_are_a_clear_error(self) -> None:
        with pytest.raises(Exception, match="trafficTargets is missing"):
            core.targets_from_outputs({"rolloutPhase": 0})


# ---------------------------------------------------------------- bake + approval (pure)
class TestBake:
    def entries(self) -> list[dict[str, object]]:
        return [
            {"ts": "2025-01-01T10:00:00.000Z", "result": "applied", "to_phase": 1},
            {"ts": "2025-01-01T10:20:00.000Z", "result": "refused", "to_phase": 2},
            {"ts": "2025-01-01T10:40:00.000Z", "result": "applied", "to_phase": 2},
        ]

    def test_entered_at_is_last_applied(self) -> None:
        assert bake.phase_entered_at(self.entries(), 2) == bake.parse_ts("2025-01-01T10:40:00Z")
        assert bake.phase_entered_at(self.entries(), 1) is None  # left phase 1 since
        assert bake.phase_entered_at([], 0) is None

    def test_remaining_and_done(self) -> None:
        entered = bake.parse_ts("2025-01-01T10:40:00Z")
        s = bake.bake_status(2, entered, 45 * 60, bake.parse_ts("2025-01-01T11:00:00Z"))
        assert (s.required_s, s.elapsed_s, s.remaining_s, s.done) == (2700, 1200, 1500, False)
        assert "1500 s of 2700 s" in s.describe()
        assert bake.bake_status(2, entered, 45 * 60, bake.parse_ts("2025-01-01T11:25:00Z")).done

    def test_unknown_entry_time_is_not_done(self) -> None:
        s = bake.bake_status(1, None, 30 * 60, bake.parse_ts("2025-01-01T11:25:00Z"))
        assert not s.done and "entry time unknown" in s.describe()

    def test_phase_zero_and_zero_minutes_need_no_bake(self) -> None:
        assert bake.bake_status(0, None, 0, bake.parse_ts("2025-01-01T00:00:00Z")).done


# ---------------------------------------------------------------- audit
class TestAudit:
    def test_default_path(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.delenv("CE_AUDIT_DIR", raising=False)
        monkeypatch.setenv("CE_HOME", str(tmp_path))
        assert (
            default_audit_path("claude-enhancer", "local")
            == tmp_path / "audit" / "claude-enhancer-local.jsonl"
        )
        monkeypatch.setenv("CE_AUDIT_DIR", str(tmp_path / "x"))
        assert default_audit_path("p", "org/s") == tmp_path / "x" / "p-org_s.jsonl"

    def test_append_and_redact(self, tmp_path: Path) -> None:
        log = AuditLog(tmp_path / "a" / "log.jsonl")
        log.append(
            {
                "actor": "sre",
                "token": "abc",
                "prometheus": "http://u:pw@127.0.0.1:9090",
                "reason": "vault hvs.CAESIabc123 leaked",
            }
        )
        log.append({"actor": "sre", "n": 2})
        (e1, e2) = log.entries()
        assert (
            e1["token"] == REDACTED and "pw" not in e1["prometheus"] and "hvs." not in e1["reason"]
        )
        assert e2["n"] == 2 and log.tail(1) == [e2]
        assert redact({"nested": {"password": "x"}}) == {"nested": {"password": REDACTED}}


# ---------------------------------------------------------------- driver with fakes
CFG = {"phase": 0, "bakeMinutes": {"1": 30, "2": 45, "3": 30, "4": 15}}


def make_driver(
    tmp_path: Path,
    stack: FakeStack,
    prom: FakeProm | None = None,
    clock: Clock | None = None,
    notifier: Any = None,
    metrics: RolloutMetrics | None = None,
) -> tuple[core.Driver, list[str], Clock]:
    lines: list[str] = []
    clk = clock or Clock()
    p = prom or FakeProm(values=HEALTHY)
    d = core.Driver(
        stack,
        AuditLog(tmp_path / "audit.jsonl"),
        clock=clk,
        prom_factory=lambda url: p,
        out=lines.append,
        traffic=FakeTraffic(stack.events),
        notifier=notifier,
        metrics=metrics,
    )
    return d, lines, clk


class TestDriver:
    def test_full_rollout_0_to_4_by_hand(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, lines, clk = make_driver(tmp_path, stack)
        roles = ["deployment-commander", "tech-lead", "sre", "product-owner"]
        for phase, (role, minutes) in enumerate(zip(roles, [0, 30, 45, 30], strict=True)):
            clk.advance(minutes)
            rep = advance_as(d, role, "http://prom")
            assert rep.code == core.OK, lines
            assert stack.outputs()["rolloutPhase"] == phase + 1
        applied = [e for e in d.audit.entries() if e["result"] == "applied"]
        assert [(e["from_phase"], e["to_phase"], e["actor"]) for e in applied] == [
            (0, 1, "deployment-commander"),
            (1, 2, "tech-lead"),
            (2, 3, "sre"),
            (3, 4, "product-owner"),
        ]
        assert applied[0]["gate"]["track"] == "stable" and applied[0]["gate"]["version"] == "5.0.3"
        assert applied[1]["gate"]["track"] == "canary" and applied[1]["gate"]["version"] == "5.1.0"
        assert advance_as(d, "product-owner", "http://prom").code == core.REFUSED  # final

    def test_bake_time_enforced(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, _, clk = make_driver(tmp_path, stack)
        assert advance_as(d, "deployment-commander", "u").code == core.OK
        clk.advance(29)
        rep = advance_as(d, "tech-lead", "u")
        assert rep.code == core.REFUSED and "bake time not over" in rep.reason
        clk.advance(1)
        assert advance_as(d, "tech-lead", "u").code == core.OK

    def test_wrong_approver_refused_without_touching_stack(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, _, _ = make_driver(tmp_path, stack)
        rep = advance_as(d, "tech-lead", "u")
        assert rep.code == core.REFUSED and "deployment-commander" in rep.reason
        assert stack.up_calls == []

    def test_no_go_at_phase_0_changes_nothing_and_runs_no_up(self, tmp_path: Path) -> None:
        """Before: a failed GO/NO-GO "rolled back" from phase 0 to phase 0 with an `up`."""
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, lines, _ = make_driver(tmp_path, stack, prom=FakeProm(fail=True))
        rep = advance_as(d, "deployment-commander", "http://127.0.0.1:1")
        assert rep.code == core.REFUSED, lines
        assert stack.up_calls == [] and stack.events == []
        assert d.audit.entries()[-1]["result"] == "refused"

    def test_hard_breach_rolls_back_weights_first(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        prom = FakeProm(values=HEALTHY)
        d, _, clk = make_driver(tmp_path, stack, prom=prom)
        assert advance_as(d, "deployment-commander", "u").code == core.OK
        clk.advance(30)
        prom.values["error_ratio"] = 0.02
        rep = advance_as(d, "tech-lead", "u")
        assert rep.code == core.ROLLED_BACK
        assert stack.outputs()["rolloutPhase"] == 0
        # traffic moves before the config/`up` that scales green down
        tail = stack.events[stack.events.index("traffic canary=0") :]
        assert tail == ["traffic canary=0", "config phase=0", "up phase=0"]

    def test_soft_failure_at_phase_2_pauses_and_at_3_holds(self, tmp_path: Path) -> None:
        stack = FakeStack(config={**CFG, "phase": 2}, deployed=2)
        prom = FakeProm(values={**HEALTHY, "agents_down": 5.0})
        d, _, clk = make_driver(tmp_path, stack, prom=prom)
        d.record(action="advance", result="applied", to_phase=2, from_phase=1)
        clk.advance(45)
        assert advance_as(d, "sre", "u").code == core.PAUSED
        assert d.audit.entries()[-1]["result"] == "paused" and stack.up_calls == []

    def test_up_failure_reported(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0, fail_up=True)
        d, _, _ = make_driver(tmp_path, stack)
        rep = advance_as(d, "deployment-commander", "u")
        assert rep.code == core.ERROR and "boom" in d.audit.entries()[-1]["reason"]

    def test_stale_pulumi_lock_is_removed_once(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        stack.locked = True
        d, lines, _ = make_driver(tmp_path, stack)
        assert advance_as(d, "deployment-commander", "u").code == core.OK
        assert any("stale update lock" in line for line in lines)

    def test_manual_rollback_full_and_targeted(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 2}, deployed=2)
        d, _, _ = make_driver(tmp_path, stack)
        assert d.rollback("sre", targeted=True) == core.OK
        assert stack.up_calls[-1]["targets"] is not None
        assert stack.outputs()["rolloutPhase"] == 0

    def test_steps_take_the_runners_targets_and_audit_the_mode(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, _, _ = make_driver(tmp_path, stack)
        assert advance_as(d, "deployment-commander", "u").code == core.OK  # nothing converged yet
        assert stack.up_calls[-1]["targets"] is None
        assert d.audit.entries()[-1]["mode"] == "full"
        stack.converged_targets = ["urn:stack", "urn:vs"]
        assert d.rollback("sre") == core.OK
        assert stack.up_calls[-1]["targets"] == ["urn:stack", "urn:vs"]
        assert d.audit.entries()[-1]["mode"] == "targeted (2 resources)"

    def test_rollback_targets_need_a_virtualservice(self) -> None:
        assert rollback_targets([Resource("urn:x::y", "pulumi:pulumi:Stack")]) == []

    def test_approve_checks_the_role(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, _, _ = make_driver(tmp_path, stack)
        assert approve(d, "sre") == core.REFUSED
        assert approve(d, "deployment-commander") == core.OK
        assert [e["actor"] for e in d.decisions(0)] == ["deployment-commander"]

    def test_promote_after_phase_4(self, tmp_path: Path) -> None:
        stack = FakeStack(config={**CFG, "phase": 4}, deployed=4)
        d, _, clk = make_driver(tmp_path, stack)
        d.record(action="advance", result="applied", to_phase=4, from_phase=3)
        assert d.promote() == core.REFUSED  # bake not over
        clk.advance(15)
        assert d.promote() == core.REFUSED  # no approval yet
        assert approve(d, "sre") == core.REFUSED  # not the sre's gate: the API server refuses
        assert promote_as(d, "deployment-commander") == core.OK
        assert stack.app["stableVersion"] == "5.1.0" and stack.outputs()["rolloutPhase"] == 0
        ev = stack.events
        # blue rolls to the new version while green holds 100 %, then weights, then scale-down
        assert ev == [
            "config claude-enhancer:app.stableVersion=5.1.0",
            "up phase=4",
            "traffic canary=0",
            "config phase=0",
            "up phase=0",
        ]
        assert len(stack.up_calls) == 2


# ---------------------------------------------------------------- controller with fakes
def run_controller(
    d: core.Driver, clk: Clock, turns: int, on_turn: Any = None, minutes: float = 1
) -> int | None:
    c = Controller(d, "http://prom")
    code = c.resume()
    if code is not None:
        return code
    for i in range(turns):
        if on_turn:
            on_turn(i)
        code = c.turn()
        if code is not None:
            return code
        clk.advance(minutes)
    return None


class TestController:
    def test_healthy_0_to_4_and_promote(self, tmp_path: Path) -> None:
        stack = FakeStack(
            config={"phase": 0, "bakeMinutes": {str(p): 2 for p in (1, 2, 3, 4)}}, deployed=0
        )
        d, lines, clk = make_driver(tmp_path, stack)

        def approve_when_due(_: int) -> None:
            p = d.current_phase()
            role = rollout.PROMOTE_DECIDER if p == 4 else rollout.decider_for(p)
            if not d.decisions(p):
                approve(d, role)

        assert run_controller(d, clk, 40, approve_when_due) == core.OK, lines
        applied = [
            (e.get("from_phase"), e.get("to_phase"))
            for e in d.audit.entries()
            if e["result"] == "applied"
        ]
        assert applied == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
        assert stack.app["stableVersion"] == "5.1.0"
        assert d.audit.entries()[-1]["result"] == "promoted"

    def test_waits_for_the_decider_after_the_bake(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 1, "bakeMinutes": {"1": 2}}, deployed=1)
        d, lines, clk = make_driver(tmp_path, stack)
        d.record(action="advance", result="applied", to_phase=1, from_phase=0)
        assert run_controller(d, clk, 5) is None
        assert stack.up_calls == [] and any(
            "`./ce rollout approve` by a tech-lead" in x for x in lines
        )

    def test_fault_mid_bake_rolls_back_at_once(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 1}, deployed=1)
        prom = FakeProm(values=HEALTHY)
        d, _, clk = make_driver(tmp_path, stack, prom=prom)
        d.record(action="advance", result="applied", to_phase=1, from_phase=0)

        def fault(i: int) -> None:
            if i == 3:  # minute 3 of a 30-minute bake
                prom.values["p99_ms"] = 1500.0

        assert run_controller(d, clk, 10, fault) == core.ROLLED_BACK
        assert stack.outputs()["rolloutPhase"] == 0
        assert clk.now.minute == 3  # the very turn that saw the breach

    def test_phase_2_pauses_then_rollback_by_decision(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 2}, deployed=2)
        prom = FakeProm(values={**HEALTHY, "agents_down": 6.0})
        d, _, clk = make_driver(tmp_path, stack, prom=prom)
        d.record(action="advance", result="applied", to_phase=2, from_phase=1)
        assert run_controller(d, clk, 3) is None
        assert [e["result"] for e in d.audit.entries()].count("paused") == 1
        assert stack.up_calls == [] and stack.outputs()["canaryWeight"] == 20
        approve(d, "sre", decision="rollback")
        assert run_controller(d, clk, 1) == core.ROLLED_BACK

    def test_phase_2_pause_lifted_by_continue(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 2, "bakeMinutes": {"2": 1}}, deployed=2)
        prom = FakeProm(values={**HEALTHY, "agents_down": 6.0})
        d, _, clk = make_driver(tmp_path, stack, prom=prom)
        d.record(action="advance", result="applied", to_phase=2, from_phase=1)
        assert run_controller(d, clk, 2) is None
        prom.values["agents_down"] = 0.0
        assert run_controller(d, clk, 2) is None and stack.up_calls == []  # still paused
        approve(d, "sre")
        assert run_controller(d, clk, 1) is None
        assert stack.outputs()["rolloutPhase"] == 3

    def test_phase_3_holds_at_50(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 3}, deployed=3)
        d, _, clk = make_driver(
            tmp_path, stack, prom=FakeProm(values={**HEALTHY, "agents_down": 9.0})
        )
        d.record(action="advance", result="applied", to_phase=3, from_phase=2)
        assert run_controller(d, clk, 5) is None
        assert [e["result"] for e in d.audit.entries()].count("held") == 1
        assert stack.outputs()["canaryWeight"] == 50 and stack.up_calls == []

    def test_resume_after_kill_mid_step_does_not_double_step(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 1, "bakeMinutes": {"1": 0}}, deployed=1)
        d, _, clk = make_driver(tmp_path, stack)
        d.record(action="advance", result="applied", to_phase=1, from_phase=0)
        approve(d, "tech-lead")
        stack.crash_after_set_phase = True
        with pytest.raises(KeyboardInterrupt):
            run_controller(d, clk, 1)
        assert stack.config["phase"] == "2" and stack.outputs()["rolloutPhase"] == 1
        stack.crash_after_set_phase = False
        # restart: the step to 2 is finished, not repeated, and 2 is not left without approval
        d2, _, _ = make_driver(tmp_path, stack, clock=clk)
        assert run_controller(d2, clk, 3) is None
        assert stack.outputs()["rolloutPhase"] == 2
        assert [c["phase"] for c in stack.up_calls] == [2]
        applied = [e for e in d2.audit.entries() if e["result"] == "applied"]
        assert [(e["from_phase"], e["to_phase"]) for e in applied][-1] == (1, 2)

    def test_resume_after_kill_mid_rollback(self, tmp_path: Path) -> None:
        stack = FakeStack(config={"phase": 2}, deployed=2)
        d, _, _ = make_driver(tmp_path, stack)
        d.record(
            action="rollback",
            actor="controller",
            from_phase=2,
            to_phase=0,
            trigger="gate_failed",
            op="abc",
            result="started",
            reason="p99",
        )
        assert Controller(d, "u").resume() == core.ROLLED_BACK
        assert stack.outputs()["rolloutPhase"] == 0 and "traffic canary=0" in stack.events


# ---------------------------------------------------------------- lock, webhook, metrics
def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    with (
        StackLock(tmp_path / "l.lock", "./ce rollout run"),
        pytest.raises(LockHeld, match=r"held by ./ce rollout run \(pid \d+"),
    ):
        StackLock(tmp_path / "l.lock", "./ce rollout advance").acquire()
    StackLock(tmp_path / "l.lock", "again").acquire()  # released on exit


def test_cli_advance_refused_while_a_controller_holds_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CE_HOME", str(tmp_path))
    stack = FakeStack(config=dict(CFG), deployed=0)
    from driver.lock import default_lock_path

    with StackLock(default_lock_path(stack.project, stack.stack_name), "./ce rollout run"):
        code = cli.main(
            [
                "--audit-log",
                str(tmp_path / "a.jsonl"),
                "advance",
            ],
            runner_factory=lambda s, w, k: stack,
            traffic_factory=lambda: None,
        )
    assert code == core.REFUSED and "held by ./ce rollout run" in capsys.readouterr().err
    assert stack.up_calls == []


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        _Receiver.got.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        return


def test_each_decision_is_sent_to_the_webhook(tmp_path: Path) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Receiver.got = []
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        stack = FakeStack(config={"phase": 1}, deployed=1)
        prom = FakeProm(values={**HEALTHY, "error_ratio": 0.05})
        d, _, clk = make_driver(tmp_path, stack, prom=prom, notifier=WebhookNotifier(url))
        d.record(action="advance", result="applied", to_phase=1, from_phase=0, notify=False)
        assert run_controller(d, clk, 2) == core.ROLLED_BACK
    finally:
        srv.shutdown()
    results = [e["result"] for e in _Receiver.got]
    assert results == ["judge_failed", "traffic_switched", "applied"]
    first = _Receiver.got[0]
    assert first["event"] == "rollout.decision"
    assert "error_ratio: 5.0000% vs < 0.1000%" in first["reason"]
    # the decision carries its numbers: value, threshold, window, sample, p-value and CI
    check = next(c for c in first["judge"]["checks"] if c["name"] == "error_ratio")
    assert check["outcome"] == "fail" and check["layer"] == "absolute"
    assert check["value"] == pytest.approx(0.05) and check["threshold"] == 0.001
    assert check["canary_n"] == 1_000_000 and check["window"] == "5m"
    assert check["p_value"] < 0.02 and check["ci"][0] > 0.001


def test_metrics_endpoint(tmp_path: Path) -> None:
    m = RolloutMetrics("test")
    port = m.serve(0)
    try:
        stack = FakeStack(config={"phase": 1}, deployed=1)
        prom = FakeProm(values={**HEALTHY, "error_ratio": 0.05})
        d, _, clk = make_driver(tmp_path, stack, prom=prom, metrics=m)
        d.record(action="advance", result="applied", to_phase=1, from_phase=0)
        assert run_controller(d, clk, 2) == core.ROLLED_BACK
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    finally:
        m.close()
    assert 'ce_rollout_phase{stack="test"} 0.0' in text
    assert 'ce_rollout_canary_weight{stack="test"} 0.0' in text
    assert 'ce_rollout_rollbacks_total{stack="test",trigger="judge_failed"} 1.0' in text
    # the SLO is judged by the judge's absolute layer: its verdict and numbers are served
    labels = 'check="error_ratio",layer="absolute",phase="1",stack="test"'
    assert (
        'ce_judge_check_outcome{check="error_ratio",layer="absolute",outcome="fail",'
        'phase="1",stack="test"} 1.0'
    ) in text
    assert f"ce_judge_check_value{{{labels}}} 0.05" in text
    assert f"ce_judge_check_threshold{{{labels}}} 0.001" in text
    assert f"ce_judge_check_p_value{{{labels}}}" in text
    assert 'ce_judge_outcome{outcome="fail",phase="1",stack="test"} 1.0' in text
    assert 'ce_rollout_gate_check_passed{check="agents_up",phase="1",stack="test"} 1.0' in text
    assert "ce_rollout_phase_completed_total" in text


def test_provider_field_manager() -> None:
    live = {
        "metadata": {
            "managedFields": [
                {"manager": "kubectl", "operation": "Update"},
                {"manager": "pulumi-kubernetes-abc123", "operation": "Apply"},
            ]
        }
    }
    assert provider_field_manager(live) == "pulumi-kubernetes-abc123"
    with pytest.raises(TrafficError):
        provider_field_manager({"metadata": {"managedFields": []}})


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for word in ("run", "approve", "advance", "rollback", "promote", "phase 2 pauses"):
        assert word in text or word.replace("phase 2 pauses", "2 pauses") in text


def test_cli_advance_and_approve_use_the_one_approval_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No flag names an approver: `advance` finds no approval until one is made, and the one
    `approve` makes carries the store's authenticated user."""
    monkeypatch.setenv("CE_HOME", str(tmp_path))
    stack = FakeStack(config=dict(CFG), deployed=0)
    store = FakeApprovals(Clock())
    store.user = "deployment-commander"

    def main(*argv: str) -> int:
        return cli.main(
            ["--audit-log", str(tmp_path / "a.jsonl"), *argv],
            runner_factory=lambda s, w, k: stack,
            traffic_factory=lambda: None,
            approvals_factory=lambda ns, kc: store,
        )

    assert main("advance", "--prometheus", "http://127.0.0.1:1") == core.REFUSED
    assert "no approval of phase-0 by a deployment-commander" in capsys.readouterr().out
    assert main("approve") == core.OK
    assert [(a.phase, a.approver) for a in store.items] == [(0, "deployment-commander")]
    with pytest.raises(SystemExit):
        main("approve", "--role", "sre")  # a role is not something one claims


def test_a_go_from_before_the_last_traffic_change_does_not_start_a_rollout_on_a_fresh_log(
    tmp_path: Path,
) -> None:
    """Approvals live in the cluster and outlive the machine's audit log. A controller with a
    fresh log (another machine, or the next run) must not count the previous rollout's GO:
    without an entry time of its own it takes the traffic objects' last write (found by
    tests/integration/test_rollout_controller.py::test_second_controller_is_refused, where the
    previous test's GO started the rollout at once)."""
    stack = FakeStack(config=dict(CFG), deployed=0)
    d, _lines, clk = make_driver(tmp_path, stack)
    store = FakeApprovals(clk)
    d.approvals = store
    approve(d, "deployment-commander")  # the previous rollout's GO ...
    clk.advance(30)
    store.traffic_written = clk()  # ... which then rolled back to phase 0 (the VS rewritten)
    fresh, _, _ = make_driver(tmp_path / "other-machine", stack, clock=clk)
    fresh.approvals = store
    assert fresh.gate_decision(0).continues == []
    assert "made before the stack entered the phase" in [
        w for _, w in fresh.gate_decision(0).ignored
    ]
    approve(fresh, "deployment-commander")  # a GO given for this rollout counts
    assert [a.approver for a in fresh.gate_decision(0).continues] == ["deployment-commander"]
