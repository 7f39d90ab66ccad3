"""Integration: the canary signal's queries (rollout.signal) against a real Prometheus
scraping the synthetic exporter at phase 1's weight (scrape 1 s; no platform, no stack).

What the decision relies on, checked on Prometheus itself: a series that leaves the exposition
is gone from an instant query one scrape later (staleness marker) while ``count_over_time``
since the phase's entry still sees it; a frozen counter reads ``irate`` 0 two scrapes later.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driver import core
from driver.audit import AuditLog
from driver.controller import Controller
from rollout import phases
from rollout.gate import Check, GateResult, Verdict
from rollout.signal import Signal
from tests.driver.driver_fakes import FakeStack
from tests.driver.driver_promstack import Exporter, exporters, prometheus, wait_for_canary

WINDOW = "15s"
SCRAPE_S = 1.0
PASSED = GateResult(Verdict.PASS, ())
NO_DATA = GateResult(
    Verdict.FAIL, (Check("request_count", False, None, ">= 100", "request_count: no data"),)
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Exporter]]:
    work = tmp_path_factory.mktemp("prom-signal")
    flags = ["--canary-weight", str(phases.PHASE_WEIGHTS[1]), "--rps", "400"]
    with exporters({"mesh": flags}) as exps, prometheus({"mesh": exps["mesh"].port}, work) as url:
        wait_for_canary(url, "mesh", WINDOW, 100)
        yield url, exps["mesh"]


class WallClock:
    """The real time (Prometheus' own), ``behind_s`` seconds ago while it is set."""

    def __init__(self) -> None:
        self.behind_s = 0.0

    def __call__(self) -> datetime:
        return datetime.now(UTC) - timedelta(seconds=self.behind_s)


def _driver(tmp_path: Path, entered_s_ago: float) -> core.Driver:
    """A driver at phase 1, entered ``entered_s_ago`` seconds ago (audit), on real time."""
    stack = FakeStack(
        config={"phase": 1, "bakeMinutes": {"1": 10}, "gate": {"window": WINDOW}}, deployed=1
    )
    clock = WallClock()
    d = core.Driver(stack, AuditLog(tmp_path / "audit.jsonl"), clock=clock, out=lambda _: None)
    clock.behind_s = entered_s_ago
    d.record(action="advance", result="applied", from_phase=0, to_phase=1)
    clock.behind_s = 0.0
    return d


def _until(d: core.Driver, url: str, want: Signal, gate: GateResult, within: float) -> float:
    t0 = time.monotonic()
    while True:
        got = d.signal(1, url, gate)
        if got.signal is want:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < within, f"still {got.signal}: {got.reason}"
        time.sleep(0.1)


def test_lost_then_back_then_stuck(mesh: tuple[str, Exporter], tmp_path: Path) -> None:
    url, exp = mesh
    d = _driver(tmp_path, entered_s_ago=20)
    assert d.signal(1, url, PASSED).signal is Signal.FLOWING
    try:
        exp.control(canary_reports=0)
        lost = _until(d, url, Signal.LOST, PASSED, within=5)
        assert lost <= SCRAPE_S + 1.0  # one scrape (+ query time)
        exp.control(canary_reports=1)
        _until(d, url, Signal.FLOWING, PASSED, within=5)
        time.sleep(2 * SCRAPE_S)  # two samples of the new series
        exp.control(canary_reports_frozen=1)
        stuck = _until(d, url, Signal.STUCK, PASSED, within=6)
        assert stuck <= 2 * SCRAPE_S + 1.0  # two scrapes (+ query time)
    finally:
        exp.control(canary_reports=1, canary_reports_frozen=0)
    _until(d, url, Signal.FLOWING, PASSED, within=5)


def test_not_seen_since_the_phase_began_is_awaited(
    mesh: tuple[str, Exporter], tmp_path: Path
) -> None:
    """Series from before the phase's entry do not count as seen in it."""
    url, exp = mesh
    try:
        exp.control(canary_reports=0)
        time.sleep(3 * SCRAPE_S)  # gone from Prometheus
        d = _driver(tmp_path, entered_s_ago=1)
        assert d.signal(1, url, NO_DATA).signal is Signal.AWAITING
    finally:
        exp.control(canary_reports=1)


#: the controller's interval in the tests below (the local stack's is 2 s, the SPEC's 15 s)
INTERVAL_S = 1.0


def _turns_until_done(c: Controller, within: float) -> tuple[int | None, float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        code = c.turn()
        if code is not None:
            return code, time.monotonic() - t0
        time.sleep(INTERVAL_S)
    return None, time.monotonic() - t0


@pytest.mark.parametrize("fault", [{"canary_reports": 0}, {"canary_reports_frozen": 1}])
def test_the_controller_acts_within_two_scrapes_and_a_turn(
    mesh: tuple[str, Exporter], tmp_path: Path, fault: dict[str, int]
) -> None:
    """Issue 29 on a real Prometheus, the stack faked: the canary's series vanish (or its
    counter stops) 10 s into phase 1, inside the 60 s grace; the controller decides the
    rollback within 2 scrape intervals + 1 controller interval (+ one turn's own queries).
    Before the fix it held: the gate's window still had the samples, then the grace."""
    url, exp = mesh
    d = _driver(tmp_path, entered_s_ago=0)
    c = Controller(d, url)
    code, _ = _turns_until_done(c, within=10)  # the phase's first 10 s, healthy
    assert code is None, "\n".join(str(e) for e in d.audit.entries())
    try:
        exp.control(**fault)
        code, took = _turns_until_done(c, within=20)
    finally:
        exp.control(canary_reports=1, canary_reports_frozen=0)
    assert code == core.ROLLED_BACK
    assert took <= 2 * SCRAPE_S + INTERVAL_S + 1.0, f"decided {took:.1f} s after the fault"
    failed = next(e for e in d.audit.entries() if e["result"] == "gate_failed")
    assert any(x["name"] == "canary_signal" and not x["passed"] for x in failed["gate"]["checks"])
    print(f"{fault}: rollback decided {took:.2f} s after the fault")
