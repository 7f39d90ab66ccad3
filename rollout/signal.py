"""Is the canary's telemetry there? The pure decision over missing data.

Three kinds of missing data look alike to the gate (``request_count``: no data) but are
not alike:

* **not yet**: right after a step the new weight's series need a scrape or two before
  ``increase()`` sees them. Awaited for ``rollout.dataGraceSeconds``, counted from the
  phase's entry, and only while the canary's request series have not been seen in the
  phase;
* **lost**: the series *were* there in this phase and are gone now (the canary's sidecar
  stopped reporting, a relabel or scrape change dropped Istio's metrics). The canary still
  takes its share of live traffic, unobserved: judged at once;
* **stuck**: the series are there but the canary's counter stopped growing while stable's
  grows at a rate that makes an idle canary impossible by chance. Judged at once too.

:func:`decide` is a pure function of a :class:`SignalSnapshot` (what Prometheus answered,
the phase's age and the gate's verdict); the controller collects the snapshot
(:func:`collect`, through an injected query function) and applies the decision. "Seen in
the phase" is asked of Prometheus over the phase's own window (``count_over_time`` since
the phase's entry), not remembered by the controller: a restarted controller, or one that
was down while the series came and went, decides the same.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.gate import REQUESTS_METRIC, Check, GateResult, Verdict

#: gate checks that fail for missing data (the only failures the grace may hold)
NO_DATA_CHECKS = frozenset({"request_count", "metrics_present"})
#: Least canary request rate (per second) that stable's rate and the weights must predict
#: before a canary counter that did not grow between its last two samples counts as stuck:
#: at a scrape interval of 5 s or more that is 20 expected requests, and P(none by chance)
#: = e^-20 ~ 2e-9 per judgement. Below it, an idle canary can be chance; the gate's
#: request_count over its window still catches a counter that stays flat.
STUCK_MIN_EXPECTED_RPS = 4.0


class Signal(enum.StrEnum):
    FLOWING = "flowing"
    """The canary's request series are there and growing (or nothing is missing)."""
    AWAITING = "awaiting"
    """No data yet at the new weight, within the grace: hold, neither step nor fail."""
    ABSENT = "absent"
    """No data at the new weight and the grace is over: the gate's failure stands."""
    LOST = "lost"
    """Seen in this phase, gone now: the phase's failure action, at once."""
    STUCK = "stuck"
    """There, but not growing while stable grows: the phase's failure action, at once."""


@dataclass(frozen=True)
class SignalSnapshot:
    """What the decision needs; ``None`` = unknown (not measured / no such series)."""

    phase_age_s: float | None
    """Seconds since the phase was entered (audit log); None when the entry is unknown."""
    grace_s: float
    seen: bool
    """A canary request sample exists since the phase began (Prometheus, over the phase)."""
    present: bool
    """The canary's request series exist now (an instant query: stale series are gone)."""
    canary_rps: float | None
    """The canary's request rate between each series' last two samples (``irate``)."""
    stable_rps: float | None
    canary_weight: float
    """The canary's traffic share in percent at this phase."""
    gate_no_data_only: bool
    """The gate failed, and only on missing-data checks (:data:`NO_DATA_CHECKS`)."""


@dataclass(frozen=True)
class SignalDecision:
    signal: Signal
    reason: str

    @property
    def acts(self) -> bool:
        """Judged at once by the phase's failure action."""
        return self.signal in (Signal.LOST, Signal.STUCK)

    def check(self) -> Check:
        """The decision as a soft gate check: its failure goes through the phase's failure
        action (phase 1 rolls back, 2 pauses, 3-4 hold), as the issue of a lost signal is
        not an SLO breach measured but a canary no longer measured."""
        return Check(
            "canary_signal",
            not self.acts,
            self.signal.value,
            "present and growing",
            f"canary_signal: {self.reason}",
            hard=False,
        )


def expected_canary_rps(stable_rps: float, canary_weight: float) -> float | None:
    """The canary's rate that stable's rate predicts at the weights; None at 100 %."""
    if canary_weight >= 100:
        return None
    return stable_rps * canary_weight / (100.0 - canary_weight)


def decide(s: SignalSnapshot) -> SignalDecision:
    """Pure: lost and stuck act at once; the grace covers only the first data at a weight."""
    if s.seen and not s.present:
        return SignalDecision(
            Signal.LOST,
            "the canary's request series were reported in this phase and are gone "
            f"({_age(s)}): its traffic is unobserved",
        )
    if s.present and s.canary_rps is not None and s.stable_rps is not None:
        want = expected_canary_rps(s.stable_rps, s.canary_weight)
        if s.canary_rps <= 0 and want is not None and want >= STUCK_MIN_EXPECTED_RPS:
            return SignalDecision(
                Signal.STUCK,
                f"the canary's request counter stopped growing while stable's grows at "
                f"{s.stable_rps:.1f}/s (expected {want:.1f}/s at {s.canary_weight:g} %)",
            )
    if not s.gate_no_data_only:
        return SignalDecision(Signal.FLOWING, "the canary's data is there")
    if s.phase_age_s is not None and s.phase_age_s < s.grace_s:
        # not seen: the new weight's first scrapes; seen (and growing, or it would be lost
        # or stuck above): the first window is still filling up to the gate's minimum
        what = "not enough yet" if s.seen else "not reported yet"
        return SignalDecision(
            Signal.AWAITING,
            f"the canary's first data at the new weight is {what} "
            f"({_age(s)}, grace {s.grace_s:.0f} s)",
        )
    if s.phase_age_s is None:
        return SignalDecision(
            Signal.ABSENT, "no canary data and the phase's entry time is unknown (no grace)"
        )
    return SignalDecision(
        Signal.ABSENT, f"no usable canary data {_age(s)} (grace {s.grace_s:.0f} s is over)"
    )


def _age(s: SignalSnapshot) -> str:
    return "phase age unknown" if s.phase_age_s is None else f"{s.phase_age_s:.0f} s into the phase"


def with_signal(result: GateResult, decision: SignalDecision) -> GateResult:
    """The gate's result with the signal's check added (a failing one fails the gate)."""
    checks = (*result.checks, decision.check())
    ok = all(c.passed for c in checks)
    return GateResult(Verdict.PASS if ok else Verdict.FAIL, checks)


def no_data_only(result: GateResult) -> bool:
    """The gate failed, and only on missing-data checks."""
    return not result.passed and all(c.name in NO_DATA_CHECKS for c in result.failures)


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class SignalQueries:
    """The PromQL the snapshot is read with (kept here so tests and docs show the text)."""

    present: str
    seen: str
    canary_rps: str
    stable_rps: str


def build_queries(
    canary_matchers: str, stable_matchers: str, phase_age_s: float | None, rate_window: str
) -> SignalQueries:
    """``*_matchers``: the gate's label matchers of each track (no braces).

    ``present`` is an instant selector: Prometheus ends a series with a staleness marker at
    the first scrape that lacks it, so it is empty one scrape after the loss. ``seen`` looks
    over the phase only (a range since its entry). ``irate`` uses each series' last two
    samples, so a frozen counter reads 0 two scrapes after it froze; ``rate_window`` only
    bounds how far back those two samples may be.
    """
    since = f"{max(1, math.ceil(phase_age_s or 0))}s"
    c = f"{REQUESTS_METRIC}{{{canary_matchers}}}"
    s = f"{REQUESTS_METRIC}{{{stable_matchers}}}"
    return SignalQueries(
        present=f"count({c})",
        seen=f"count(count_over_time({c}[{since}]))",
        canary_rps=f"sum(irate({c}[{rate_window}]))",
        stable_rps=f"sum(irate({s}[{rate_window}]))",
    )


#: ``query(promql)`` -> the ``result`` list of an instant vector query
QueryFn = Callable[[str], Sequence[Mapping[str, Any]]]


def _scalar(rows: Sequence[Mapping[str, Any]]) -> float | None:
    if not rows:
        return None
    v = float(rows[0]["value"][1])
    return v if math.isfinite(v) else None


def collect(
    query: QueryFn,
    q: SignalQueries,
    *,
    phase_age_s: float | None,
    grace_s: float,
    canary_weight: float,
    gate: GateResult,
) -> SignalSnapshot:
    """The snapshot through the injected ``query`` (errors propagate to the caller)."""
    present = (_scalar(query(q.present)) or 0) > 0
    # an unknown entry time has no phase window: what is there now is all we know
    seen = present if phase_age_s is None else (_scalar(query(q.seen)) or 0) > 0
    return SignalSnapshot(
        phase_age_s=phase_age_s,
        grace_s=grace_s,
        seen=seen or present,
        present=present,
        canary_rps=_scalar(query(q.canary_rps)) if present else None,
        stable_rps=_scalar(query(q.stable_rps)) if present else None,
        canary_weight=canary_weight,
        gate_no_data_only=no_data_only(gate),
    )
