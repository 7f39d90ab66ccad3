"""Issue 29 through the controller (fakes): a canary whose telemetry vanishes or freezes
mid-phase is judged at once by the phase's failure action; no data right after a step is
awaited for the grace, and every wait is visible (one line and one audit entry when it starts
and when it ends, ``ce_rollout_awaiting_data``, the webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driver import core
from driver.controller import Controller
from driver.metrics import RolloutMetrics
from tests.driver.driver_fakes import HEALTHY, FakeProm, FakeStack
from tests.driver.test_driver_logic import make_driver, run_controller

#: one controller turn every 5 s (run_controller's clock steps are minutes)
FIVE_S = 5 / 60
#: the canary's request series as the local mesh reports them at 5 %: there, 20/s
REPORTING = {"present": 6.0, "seen": 6.0, "canary_rps": 20.0, "stable_rps": 380.0}


class Hook:
    """The webhook's receiver, without HTTP (the notifier protocol)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def send(self, event: Mapping[str, Any]) -> None:
        self.got.append(dict(event))


def _entered(d: core.Driver, phase: int) -> None:
    d.record(action="advance", result="applied", to_phase=phase, from_phase=phase - 1)


def _waits(d: core.Driver) -> list[dict[str, Any]]:
    return [e for e in d.audit.entries() if e.get("action") == "await_data"]


def test_series_vanish_10s_into_phase_1_roll_back_on_the_next_turn(tmp_path: Path) -> None:
    """The issue's case: before the fix the grace (60 s from the phase's entry) held the
    rollout, silently, for the rest of the minute."""
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values=HEALTHY)
    prom.signal.update(REPORTING)
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    assert run_controller(d, clk, 2, minutes=FIVE_S) is None  # 0 s, 5 s: healthy
    # 10 s: the canary's sidecar stops reporting; its samples are still in the gate's window
    # (the gate's own request_count drains only later), the app's metrics stay
    prom.signal.update(present=None, canary_rps=None)
    assert run_controller(d, clk, 1, minutes=FIVE_S) == core.ROLLED_BACK
    failed = next(e for e in d.audit.entries() if e["result"] == "gate_failed")
    check = next(c for c in failed["gate"]["checks"] if c["name"] == "canary_signal")
    assert not check["passed"] and check["value"] == "lost" and not check["hard"]
    assert "gone" in failed["reason"]
    assert stack.events[-3:] == ["traffic canary=0", "config phase=0", "up phase=0"]
    assert _waits(d) == []  # it never waited


def test_series_gone_from_the_gate_window_too_still_act_at_once(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": None})  # the window has drained
    prom.signal.update({**REPORTING, "present": None, "canary_rps": None})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    clk.advance(20 / 60)  # 20 s into the phase: well inside the grace
    assert run_controller(d, clk, 1, minutes=FIVE_S) == core.ROLLED_BACK
    assert _waits(d) == []


def test_a_counter_that_stops_growing_rolls_back_on_the_next_turn(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values=HEALTHY)
    prom.signal.update(REPORTING)
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    assert run_controller(d, clk, 2, minutes=FIVE_S) is None
    prom.signal["canary_rps"] = 0.0  # the series are there, frozen; stable grows at 380/s
    assert run_controller(d, clk, 1, minutes=FIVE_S) == core.ROLLED_BACK
    failed = next(e for e in d.audit.entries() if e["result"] == "gate_failed")
    assert "stopped growing" in failed["reason"]


def test_a_lost_signal_at_phase_2_pauses(tmp_path: Path) -> None:
    """The phase's failure action, not a hard rollback: phase 2 pauses for the sre."""
    stack = FakeStack(config={"phase": 2}, deployed=2)
    prom = FakeProm(values=HEALTHY)
    prom.signal.update({**REPORTING, "present": None, "canary_rps": None})
    d, lines, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 2)
    assert run_controller(d, clk, 3, minutes=FIVE_S) is None
    assert [e["result"] for e in d.audit.entries()].count("paused") == 1
    assert stack.up_calls == [] and any("PAUSED at phase 2" in x for x in lines)


def test_no_data_after_a_step_waits_visibly_then_data_arrives(tmp_path: Path) -> None:
    m = RolloutMetrics("test")
    hook = Hook()
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": None})  # nothing at the new weight
    d, lines, clk = make_driver(tmp_path, stack, prom=prom, metrics=m, notifier=hook)
    _entered(d, 1)
    gauge = m.awaiting_data.labels("test")
    assert run_controller(d, clk, 4, minutes=FIVE_S) is None  # 0..15 s: waiting
    assert gauge._value.get() == 1
    (started,) = _waits(d)  # one entry for the whole wait, not one per turn
    assert started["result"] == "waiting" and started["phase"] == 1
    assert started["grace_s"] == 60 and started["phase_age_s"] == 0
    assert "not reported yet" in started["reason"]
    assert sum("waiting for data" in x for x in lines) == 1
    prom.values["request_count"] = HEALTHY["request_count"]  # 20 s: the data is there
    assert run_controller(d, clk, 1, minutes=FIVE_S) is None
    assert stack.up_calls == []  # no rollback, no step
    started, ended = _waits(d)
    assert ended["result"] == "waited" and ended["ended_by"] == "data_arrived"
    assert ended["waited_s"] == 20
    assert sum("wait for data ended after 20.0 s (data_arrived)" in x for x in lines) == 1
    assert gauge._value.get() == 0
    assert [e["result"] for e in hook.got if e.get("action") == "await_data"] == [
        "waiting",
        "waited",
    ]
    assert not any(e["result"] in ("gate_failed", "judge_failed") for e in d.audit.entries())


def test_a_wait_past_the_grace_ends_then_rolls_back(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 1, "dataGraceSeconds": 30}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": None})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    assert run_controller(d, clk, 10, minutes=FIVE_S) == core.ROLLED_BACK  # at 30 s
    _, ended = _waits(d)
    assert ended["ended_by"] == "grace_over" and ended["waited_s"] == 30
    results = [e["result"] for e in d.audit.entries()]
    assert results.index("waited") < results.index("gate_failed")


def test_a_restarted_controller_continues_the_wait(tmp_path: Path) -> None:
    """The wait is read from the audit log: a new process neither starts a second one nor
    forgets to end it."""
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values={**HEALTHY, "request_count": None})
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    Controller(d, "http://prom").turn()
    clk.advance(FIVE_S)
    assert Controller(d, "http://prom").turn() is None  # a new process: same wait
    assert [e["result"] for e in _waits(d)] == ["waiting"]
    prom.values["request_count"] = HEALTHY["request_count"]
    clk.advance(FIVE_S)
    assert Controller(d, "http://prom").turn() is None
    assert [(e["result"], e.get("waited_s")) for e in _waits(d)] == [
        ("waiting", None),
        ("waited", 10),
    ]


def test_seen_in_the_phase_is_asked_of_prometheus_over_the_phase(tmp_path: Path) -> None:
    """Crash-safe: whether the series were seen comes from Prometheus over the phase's own
    window (count_over_time since the entry), not from the controller's memory."""
    stack = FakeStack(config={"phase": 1}, deployed=1)
    prom = FakeProm(values=HEALTHY)
    d, _, clk = make_driver(tmp_path, stack, prom=prom)
    _entered(d, 1)
    clk.advance(0.5)
    Controller(d, "http://prom").turn()
    seen = [q for q in prom.queries if q.startswith("count(count_over_time(")]
    assert seen and all(q.endswith("[30s]))") for q in seen)


def test_prometheus_gone_at_phase_1_still_rolls_back_at_once(tmp_path: Path) -> None:
    """The signal's queries fail with the rest: the gate's own failure (prometheus_api, hard)
    acts, the signal does not hold it."""
    stack = FakeStack(config={"phase": 1}, deployed=1)
    d, _, clk = make_driver(tmp_path, stack, prom=FakeProm(values=HEALTHY, fail=True))
    _entered(d, 1)
    assert run_controller(d, clk, 1, minutes=FIVE_S) == core.ROLLED_BACK
    failed = next(e for e in d.audit.entries() if e["result"] == "gate_failed")
    assert any(c["name"] == "prometheus_api" for c in failed["gate"]["checks"])
