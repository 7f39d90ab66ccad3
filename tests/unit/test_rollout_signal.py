"""The canary signal's decision (rollout.signal.decide): a table over snapshots, no fakes.

Issue 29: the grace for missing data covers only the first data at a new weight; series
seen in the phase and gone, or a counter that stops while stable's grows, act at once."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.gate import Check, GateResult, Verdict
from rollout.signal import (
    STUCK_MIN_EXPECTED_RPS,
    Signal,
    SignalSnapshot,
    build_queries,
    collect,
    decide,
    expected_canary_rps,
    no_data_only,
    with_signal,
)

GRACE = 60.0


def snap(
    age: float | None = 10.0,
    seen: bool = True,
    present: bool = True,
    canary: float | None = 20.0,
    stable: float | None = 380.0,
    weight: float = 5,
    no_data: bool = False,
) -> SignalSnapshot:
    return SignalSnapshot(age, GRACE, seen, present, canary, stable, weight, no_data)


#: nothing of the canary in Prometheus, and the gate short of data
NOTHING: dict[str, Any] = {
    "seen": False,
    "present": False,
    "canary": None,
    "stable": None,
    "no_data": True,
}

# (case, snapshot, expected signal)
TABLE = [
    # healthy: there and growing
    ("flowing", snap(), Signal.FLOWING),
    ("flowing after the grace", snap(age=600), Signal.FLOWING),
    # the case: seen 10 s into phase 1, gone now; the gate's window still has the
    # old samples (passes) or has drained (fails for no data): at once either way
    ("lost, gate still passes", snap(present=False, canary=None, stable=None), Signal.LOST),
    (
        "lost, gate window drained",
        snap(present=False, canary=None, stable=None, no_data=True),
        Signal.LOST,
    ),
    ("lost past the grace", snap(age=65, present=False, canary=None), Signal.LOST),
    # a counter that stopped while stable grows at 380/s (expected 20/s at 5 %)
    ("stuck", snap(canary=0.0), Signal.STUCK),
    ("stuck during the grace", snap(age=3, canary=0.0, no_data=True), Signal.STUCK),
    ("stuck at 50 %", snap(canary=0.0, stable=200, weight=50), Signal.STUCK),
    # an idle canary that chance explains: too little expected traffic to tell
    ("idle at low traffic", snap(canary=0.0, stable=20.0), Signal.FLOWING),
    # 100 %: stable takes nothing, there is no rate to compare with
    ("100 % has no stable to compare", snap(canary=0.0, stable=0.0, weight=100), Signal.FLOWING),
    ("stable idle too", snap(canary=0.0, stable=0.0), Signal.FLOWING),
    # right after a step: nothing reported yet at the new weight -> wait for the grace
    ("first data not there yet", snap(age=2, **NOTHING), Signal.AWAITING),
    ("first data there, window not full", snap(age=8, no_data=True), Signal.AWAITING),
    ("never came, grace over", snap(age=61, **NOTHING), Signal.ABSENT),
    ("seen, still too little after the grace", snap(age=61, no_data=True), Signal.ABSENT),
    ("entry time unknown: no grace", snap(age=None, **NOTHING), Signal.ABSENT),
    # nothing missing and nothing seen (the gate failed on something else): not ours
    ("gate failed on other checks", snap(seen=False, present=False, canary=None), Signal.FLOWING),
]


@pytest.mark.parametrize(("case", "s", "want"), TABLE, ids=[t[0] for t in TABLE])
def test_decide(case: str, s: SignalSnapshot, want: Signal) -> None:
    d = decide(s)
    assert d.signal is want, f"{case}: {d.reason}"
    assert d.acts == (want in (Signal.LOST, Signal.STUCK))


def test_the_stuck_threshold_is_the_expected_rate_not_stables() -> None:
    # stable at 76/s and 5 % predict exactly the threshold: stuck; just under it: not
    at = STUCK_MIN_EXPECTED_RPS * 95 / 5
    assert expected_canary_rps(at, 5) == pytest.approx(STUCK_MIN_EXPECTED_RPS)
    assert decide(snap(canary=0.0, stable=at)).signal is Signal.STUCK
    assert decide(snap(canary=0.0, stable=at * 0.99)).signal is Signal.FLOWING
    assert expected_canary_rps(100.0, 100) is None


def test_an_acting_decision_fails_the_gate_softly() -> None:
    passed = GateResult(Verdict.PASS, (Check("request_count", True, 300.0, ">= 100", "ok"),))
    lost = decide(snap(present=False))
    out = with_signal(passed, lost)
    assert not out.passed and not out.hard_failure  # the phase's failure action decides
    (failure,) = out.failures
    assert failure.name == "canary_signal" and failure.value == "lost"
    assert "gone" in failure.reason


def test_no_data_only() -> None:
    no = Check("request_count", False, None, ">= 100", "request_count: no data")
    agents = Check("agents_up", False, 6.0, "<= 3 down", "agents_up: 6", hard=False)
    assert no_data_only(GateResult(Verdict.FAIL, (no,)))
    assert not no_data_only(GateResult(Verdict.FAIL, (no, agents)))
    assert not no_data_only(GateResult(Verdict.PASS, ()))


def test_queries_look_over_the_phase_only() -> None:
    q = build_queries('reporter="destination",destination_version="5.1.0"', 'v="s"', 9.2, "5m")
    assert q.present == (
        'count(istio_requests_total{reporter="destination",destination_version="5.1.0"})'
    )
    assert q.seen.endswith("[10s]))")  # since the phase's entry, rounded up
    assert q.canary_rps.startswith("sum(irate(") and q.canary_rps.endswith("[5m]))")
    assert build_queries('a="b"', 'c="d"', None, "5m").seen.endswith("[1s]))")


def test_collect_reads_the_answers() -> None:
    q = build_queries('v="c"', 'v="s"', 30, "5m")
    answers = {q.present: [], q.seen: [{"metric": {}, "value": [0, "4"]}]}
    gate = GateResult(Verdict.PASS, ())
    s = collect(
        lambda promql: answers.get(promql, []),
        q,
        phase_age_s=30,
        grace_s=GRACE,
        canary_weight=5,
        gate=gate,
    )
    assert s.seen and not s.present and s.canary_rps is None
    assert decide(s).signal is Signal.LOST
