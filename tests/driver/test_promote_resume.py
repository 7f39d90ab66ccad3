"""Crash safety of `promote`: a controller killed at any point of a promotion finishes it
after a restart, never promotes twice and never leaves traffic on a track being replaced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driver import core
from driver.controller import Controller
from driver.stack import OnOutput, UpOutcome
from tests.driver.driver_fakes import Clock, FakeStack, approve
from tests.driver.test_driver_logic import make_driver


class KilledStack(FakeStack):
    """Dies (like ``kill -9``) inside the ``up`` at ``die_in_up`` (1-based), before it applies."""

    def __init__(self, die_in_up: int | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.die_in_up = die_in_up
        self.ups = 0

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        self.ups += 1
        if self.ups == self.die_in_up:
            raise KeyboardInterrupt("killed inside up")
        return super().up(on_output, targets)


def _at_phase_4_baked(tmp_path: Path, stack: FakeStack) -> tuple[core.Driver, Clock]:
    d, _, clk = make_driver(tmp_path, stack)
    d.record(action="advance", result="applied", from_phase=3, to_phase=4)
    clk.advance(16)  # phase 4's 15 min bake is over
    approve(d, "deployment-commander")
    return d, clk


def _results(d: core.Driver, action: str) -> list[str]:
    return [e["result"] for e in d.audit.entries() if e.get("action") == action]


@pytest.mark.parametrize("die_in_up", [1, 2], ids=["blue-to-new-version", "green-scale-down"])
def test_killed_inside_a_promotion_finishes_it_after_restart(
    tmp_path: Path, die_in_up: int
) -> None:
    stack = KilledStack(die_in_up, config={"phase": 4}, deployed=4)
    d, clk = _at_phase_4_baked(tmp_path, stack)
    with pytest.raises(KeyboardInterrupt):
        Controller(d, "http://prom").turn()
    assert _results(d, "promote") == ["started"]
    d2, _, _ = make_driver(tmp_path, stack, clock=clk)
    d2.approvals = d.approvals  # the approvals are in the cluster, not in the process
    assert Controller(d2, "http://prom").resume() == core.OK
    assert stack.outputs()["rolloutPhase"] == 0 and stack.outputs()["canaryWeight"] == 0
    assert stack.app["stableVersion"] == stack.app["canaryVersion"] == "5.1.0"
    assert _results(d2, "promote").count("promoted") == 1
    # traffic moved to the new stable before green scaled down, also after the restart
    assert stack.events[-2:] == ["config phase=0", "up phase=0"]
    assert "traffic canary=0" in stack.events


def test_promotion_done_but_unrecorded_is_recorded_without_a_new_up(tmp_path: Path) -> None:
    stack = FakeStack(config={"phase": 4}, deployed=4)
    d, clk = _at_phase_4_baked(tmp_path, stack)
    assert Controller(d, "http://prom").turn() == core.OK
    log = d.audit.path
    lines = log.read_text().splitlines()
    assert json.loads(lines[-1])["result"] == "promoted"
    log.write_text("\n".join(lines[:-1]) + "\n")  # killed before the last audit line
    ups = len(stack.up_calls)
    d2, _, _ = make_driver(tmp_path, stack, clock=clk)
    d2.approvals = d.approvals  # the approvals are in the cluster, not in the process
    assert Controller(d2, "http://prom").resume() == core.OK
    assert len(stack.up_calls) == ups
    assert _results(d2, "promote")[-1] == "promoted"
    assert Controller(d2, "http://prom").resume() is None  # nothing left to finish
