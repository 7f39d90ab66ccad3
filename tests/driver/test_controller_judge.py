"""The controller with the canary judge (fakes): relative failures follow the phase's
failure action, an inconclusive judgement extends the bake and then pauses, and every
decision carries the judge's numbers (audit log, CLI output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driver import core
from driver.controller import Controller
from rollout import config as rollout_config
from tests.driver.driver_fakes import HEALTHY, Clock, FakeProm, FakeStack, advance_as, approve
from tests.driver.test_driver_logic import CFG, make_driver, run_controller

CANARY, STABLE = "5.1.0", "5.0.3"


def _three_times_stable() -> FakeProm:
    """Canary errors 3x stable's, both under the 0.1 % SLO (the fixed gate passes it)."""
    prom = FakeProm(values={**HEALTHY, "error_ratio": 0.0002})
    prom.track_values[CANARY] = {"error_ratio": 0.0006}
    return prom


def _entered(d: core.Driver, phase: int) -> None:
    d.record(action="advance", result="applied", to_phase=phase, from_phase=phase - 1)


def test_relative_failure_at_phase_1_rolls_back_with_its_numbers(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1}, deployed=1)
    d, lines, clk = make_driver(tmp_path, stack, prom=_three_times_stable())
    _entered(d, 1)
    assert run_controller(d, clk, 3) == core.ROLLED_BACK
    failed = next(e for e in d.audit.entries() if e["result"] == "judge_failed")
    assert failed["gate"]["passed"], "the fixed thresholds alone pass this canary"
    checks = {c["name"]: c for c in failed["judge"]["checks"]}
    rel = checks["error_ratio_vs_stable"]
    assert rel["outcome"] == "fail" and rel["layer"] == "relative"
    assert rel["value"] == pytest.approx(3.0, rel=0.01) and rel["threshold"] == 1.5
    assert rel["p_value"] < 0.02 and rel["ci"][0] > 1.5
    assert checks["error_ratio"]["outcome"] == "pass"  # under the SLO
    rollback = next(e for e in d.audit.entries() if e.get("trigger") == "judge_failed")
    assert rollback["result"] == "started"
    assert any("error_ratio_vs_stable" in x and "FAIL" in x for x in lines)


def test_relative_failure_at_phase_2_pauses(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 2}, deployed=2)
    d, _, clk = make_driver(tmp_path, stack, prom=_three_times_stable())
    _entered(d, 2)
    assert run_controller(d, clk, 3) is None
    results = [e["result"] for e in d.audit.entries()]
    assert results.count("paused") == 1 and "judge_failed" not in results
    paused = next(e for e in d.audit.entries() if e["result"] == "paused")
    assert any(c["outcome"] == "fail" for c in paused["judge"]["checks"])
    assert stack.up_calls == [] and stack.outputs()["canaryWeight"] == 20


def test_inconclusive_extends_the_bake_then_pauses_then_continue_steps(tmp_path: Path) -> None:
    # 2000 requests: far too few to tell a +50 % error increase at 5 % weight
    cfg = {"phase": 1, "bakeMinutes": {"1": 2}, "analysis": {"maxExtension": "3m"}}
    stack = FakeStack(config=cfg, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": 2000.0})
    d, lines, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    approve(d, "tech-lead")  # the decider approved early: the judge still holds the step
    assert run_controller(d, clk, 4) is None  # minutes 0..3: bake (2 min), then extended
    results = [e["result"] for e in d.audit.entries()]
    assert results.count("extended") == 1 and "paused" not in results
    extended = next(e for e in d.audit.entries() if e["result"] == "extended")
    assert extended["judge"]["outcome"] == "inconclusive"
    assert extended["judge"]["min_sample"] > 2000
    assert stack.up_calls == []
    assert run_controller(d, clk, 3) is None  # the 3-minute cap passes: pause, not pass
    assert [e["result"] for e in d.audit.entries()].count("paused") == 1
    assert stack.up_calls == [] and any("PAUSED at phase 1" in x for x in lines)
    approve(d, "tech-lead")  # a human looked and continues
    assert run_controller(d, clk, 1) is None
    assert stack.outputs()["rolloutPhase"] == 2


def test_inconclusive_never_passes_by_default(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 3, "bakeMinutes": {"3": 1}}, deployed=3)
    prom = FakeProm(values={**HEALTHY, "request_count": 500.0})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 3)
    approve(d, "deployment-commander")
    assert run_controller(d, clk, 60) is None
    assert stack.up_calls == [] and stack.outputs()["rolloutPhase"] == 3


def test_the_judge_window_starts_with_the_phase(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1, "analysis": {"window": "1h"}}, deployed=1)
    prom = FakeProm(values=HEALTHY)
    d, _, clk = make_driver(tmp_path, stack, prom=prom, clock=Clock())
    _entered(d, 1)
    clk.advance(7)
    d.judge_canary(1, "http://prom")
    windows = {q.rsplit("[", 1)[1].split("]")[0] for q in prom.queries if "increase(" in q}
    assert windows == {"420s", "5m"}  # the comparison since entry; the SLO over the gate's


def test_analysis_settings_come_from_the_rollout_config() -> None:
    cfg = rollout_config.parse(
        {"analysis": {"window": "10m", "phases": {"2": {"maxErrorIncrease": 1.0}}}}
    )
    assert cfg.analysis.for_phase(1).window == "10m"
    assert cfg.analysis.for_phase(2).max_error_increase == 1.0
    assert cfg.analysis.for_phase(2).window == "10m"
    with pytest.raises(rollout_config.RolloutConfigError) as e:
        rollout_config.parse({"analysis": {"phases": {"2": {"confidence": 2}}}})
    assert str(e.value).startswith("claude-enhancer:rollout.analysis.phases.2.confidence:")


def test_no_data_right_after_a_step_is_awaited_then_fails(tmp_path: Path) -> None:
    """On a real mesh the canary had no traffic before phase 1: its series appear only
    after two scrapes. That is not a breach during the grace; after it, it is."""
    stack = FakeStack(config={"phase": 1, "dataGraceSeconds": 120}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": None})
    d, lines, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    assert run_controller(d, clk, 2) is None  # minutes 0 and 1: waiting
    assert any("waiting for data" in x for x in lines) and stack.up_calls == []
    assert run_controller(d, clk, 1) == core.ROLLED_BACK  # minute 2: no data is a breach
    failed = next(e for e in d.audit.entries() if e["result"] == "gate_failed")
    assert "no data" in failed["reason"]


def test_a_breach_during_the_grace_still_rolls_back(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "agents_down": None, "request_count": None})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    assert run_controller(d, clk, 1) == core.ROLLED_BACK  # agents_up is not a data check


def test_workflow_failures_at_phase_2_pause(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 2}, deployed=2)
    prom = FakeProm(values={**HEALTHY, "workflow_failure_ratio": 0.1})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 2)
    assert run_controller(d, clk, 3) is None
    paused = next(e for e in d.audit.entries() if e["result"] == "paused")
    assert "workflows: 10.000% >= 2.000%" in paused["reason"]
    assert stack.up_calls == []


def test_slo_every_turn_comparison_every_interval(tmp_path: Path) -> None:
    """analysis.interval paces the comparison with stable; the SLO guard runs every turn."""
    stack = FakeStack(config={"phase": 1, "analysis": {"interval": "3m"}}, deployed=1)
    prom = FakeProm(values=HEALTHY)
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    c = Controller(d, "http://prom")
    stable_q: list[int] = []
    for _ in range(6):  # minutes 0..5
        before = len(prom.queries)
        assert c.turn() is None
        # the judge's counts (increase); the signal's irate of stable runs every turn
        stable_q.append(sum(STABLE in q and "increase(" in q for q in prom.queries[before:]))
        clk.advance(1)
    assert [n > 0 for n in stable_q] == [True, False, False, True, False, False]
    # a breach between two comparisons is caught on the very turn it shows
    prom.values["error_ratio"] = 0.05
    assert c.turn() == core.ROLLED_BACK


def test_combine_keeps_fresh_slo_checks_and_the_last_comparison() -> None:
    from rollout.analysis import AnalysisSettings
    from rollout.gate import GateThresholds
    from rollout.judge import JudgeInputs, Layer, Outcome, TrackCounts, combine, judge

    les = ((100.0, 0.0), (float("inf"), 0.0))
    ok = TrackCounts(10_000, 0, ((100.0, 10_000.0), (float("inf"), 10_000.0)))
    bad = TrackCounts(10_000, 500, ((100.0, 10_000.0), (float("inf"), 10_000.0)))
    s, g = AnalysisSettings(), GateThresholds()
    full = judge(JudgeInputs(ok, ok, 20, "10m"), g, s)
    fresh = judge(JudgeInputs(bad, TrackCounts(0, 0, les), 20, "5m"), g, s, relative=False)
    j = combine(fresh, full)
    assert {c.layer for c in fresh.checks} == {Layer.ABSOLUTE}
    assert [c.name for c in j.checks] == [c.name for c in full.checks]
    assert j.outcome is Outcome.FAIL and j.hard_failure
    assert next(c for c in j.checks if c.name == "error_ratio").canary_n == 10_000


# ------------------------------------------------- the manual `advance` asks the same judge
def _baked(tmp_path: Path, phase: int, prom: FakeProm) -> tuple[core.Driver, FakeStack, list[str]]:
    """A stack at ``phase`` whose bake is over (the ``local``-like bakes of test_driver_logic)."""
    stack = FakeStack(config={**CFG, "phase": phase}, deployed=phase)
    d, lines, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, phase)
    clk.advance(60)
    return d, stack, lines


def test_manual_advance_rolls_back_at_phase_1_on_the_judges_relative_failure(
    tmp_path: Path,
) -> None:
    """The gate's fixed thresholds pass this canary; before, `advance` stepped to 20 %."""
    d, stack, lines = _baked(tmp_path, 1, _three_times_stable())
    rep = advance_as(d, "tech-lead", "http://prom")
    assert rep.code == core.ROLLED_BACK and stack.outputs()["rolloutPhase"] == 0
    failed = next(e for e in d.audit.entries() if e["result"] == "judge_failed")
    assert failed["gate"]["passed"] and failed["actor"] == "tech-lead"
    assert {c["name"]: c["outcome"] for c in failed["judge"]["checks"]}[
        "error_ratio_vs_stable"
    ] == "fail"
    assert any("[FAIL]" in x and "error_ratio_vs_stable" in x for x in lines)


def test_manual_advance_pauses_at_phase_2_on_the_judges_relative_failure(tmp_path: Path) -> None:
    d, stack, _ = _baked(tmp_path, 2, _three_times_stable())
    assert advance_as(d, "sre", "http://prom").code == core.PAUSED
    assert stack.up_calls == [] and stack.outputs()["canaryWeight"] == 20


def test_manual_advance_records_the_judgement_it_stepped_on(tmp_path: Path) -> None:
    d, stack, _ = _baked(tmp_path, 1, FakeProm(values=HEALTHY))
    assert advance_as(d, "tech-lead", "http://prom").code == core.OK
    assert stack.outputs()["rolloutPhase"] == 2
    applied = d.audit.entries()[-1]
    assert applied["result"] == "applied" and applied["to_phase"] == 2
    assert applied["judge"]["outcome"] == "pass"
    # the judge's absolute layer replaces the gate's point estimates, as in `rollout run`
    assert not {"error_ratio", "p95", "p99"} & {c["name"] for c in applied["gate"]["checks"]}


def test_manual_advance_on_an_inconclusive_judgement_steps_on_the_approval(
    tmp_path: Path,
) -> None:
    """Too few requests to tell canary from stable: the approver decides, as a decider's
    "continue" does for a paused controller; the judgement is shown and kept."""
    d, stack, lines = _baked(tmp_path, 1, FakeProm(values={**HEALTHY, "request_count": 500.0}))
    assert advance_as(d, "tech-lead", "http://prom").code == core.OK
    assert stack.outputs()["rolloutPhase"] == 2
    applied = d.audit.entries()[-1]
    assert applied["result"] == "applied" and applied["judge"]["outcome"] == "inconclusive"
    assert any("judge INCONCLUSIVE" in x and "tech-lead" in x for x in lines)
