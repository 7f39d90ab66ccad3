"""The phase table and the transition rules (pure).

Phase 0 is "stable only" (also the rollback target); phases 1..4 are the SPEC's
hybrid canary -> blue/green steps 5 % -> 20 % -> 50 % -> 100 %.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RolloutError(ValueError):
    """A rollout transition or phase value that is not allowed."""


class FailureAction(enum.StrEnum):
    """What the controller does when a phase's *soft* gate fails (SPEC table).

    Hard SLO breaches (error ratio, P95, P99, no data) always roll back.
    """

    REFUSE = "refuse"  # GO/NO-GO: do not start; nothing changes
    ROLLBACK = "rollback"  # all traffic back on stable
    PAUSE = "pause"  # hold traffic, raise an alert, continue or roll back by decision
    HOLD = "hold"  # stay at this phase's weight (phase 3 stays at 50 %)


@dataclass(frozen=True)
class Phase:
    """One row of the SPEC rollout table."""

    number: int
    weight: int
    """Canary (new-version) traffic in percent."""
    bake_minutes: int
    """SPEC (prod) bake time before the gate that leaves this phase may pass."""
    decider: str | None
    """Role approving the step *out of* this phase (None: final phase, promote instead)."""
    on_failure: FailureAction
    """Action when this phase's soft gate checks fail."""
    gate_profile: tuple[str, ...]
    """Checks judged while in this phase (names from :mod:`rollout.gate`)."""
    judged_track: str
    """Which track the gate judges: ``stable`` (GO/NO-GO) or ``canary``."""


#: Hard SLO checks: judged in every phase that carries canary traffic; a breach
#: always rolls back whatever the phase's failure action.
HARD_CHECKS: tuple[str, ...] = ("metrics_present", "request_count", "error_ratio", "p95", "p99")

PHASES: tuple[Phase, ...] = (
    # GO/NO-GO: monitoring up and the stable version healthy
    Phase(
        0,
        0,
        0,
        "deployment-commander",
        FailureAction.REFUSE,
        (*HARD_CHECKS, "agents_up", "workflows"),
        "stable",
    ),
    # error < 0.1 %, agents loaded, UX normal (tech lead) -> else roll back
    Phase(1, 5, 30, "tech-lead", FailureAction.ROLLBACK, (*HARD_CHECKS, "agents_up"), "canary"),
    # agent coordination, perf, workflow state (SRE) -> else pause
    Phase(
        2,
        20,
        45,
        "sre",
        FailureAction.PAUSE,
        (*HARD_CHECKS, "agents_up", "workflows"),
        "canary",
    ),
    # green fully ready, data consistent, all metrics normal (product owner) -> else stay at 50 %
    Phase(
        3,
        50,
        30,
        "product-owner",
        FailureAction.HOLD,
        (*HARD_CHECKS, "agents_up", "workflows"),
        "canary",
    ),
    # full switch; promotion follows the bake
    Phase(
        4,
        100,
        15,
        None,
        FailureAction.HOLD,
        (*HARD_CHECKS, "agents_up", "workflows"),
        "canary",
    ),
)

MAX_PHASE: int = len(PHASES) - 1
#: canary weight per phase (index == phase); the default of ``rollout.phaseWeights``.
PHASE_WEIGHTS: tuple[int, ...] = tuple(p.weight for p in PHASES)
#: SPEC bake minutes per phase 1..4; the default of ``rollout.bakeMinutes``.
PROD_BAKE_MINUTES: dict[int, int] = {p.number: p.bake_minutes for p in PHASES if p.number > 0}
#: role that approves leaving each phase (and ``promote`` for the final one).
DECIDERS: dict[int, str] = {p.number: p.decider for p in PHASES if p.decider is not None}
#: who approves the promotion after the final phase's bake.
PROMOTE_DECIDER = "deployment-commander"


@dataclass(frozen=True)
class Weights:
    """Traffic split between the stable and canary subsets (sums to 100)."""

    stable: int
    canary: int


def validate_phase(phase: int) -> int:
    """Return ``phase`` if it is a known phase, else raise RolloutError."""
    if isinstance(phase, bool) or not isinstance(phase, int):
        raise RolloutError(f"rollout.phase must be an integer 0..{MAX_PHASE}, got {phase!r}")
    if not 0 <= phase <= MAX_PHASE:
        raise RolloutError(f"rollout.phase must be between 0 and {MAX_PHASE}, got {phase}")
    return phase


def phase(number: int) -> Phase:
    """The table row of ``number``."""
    return PHASES[validate_phase(number)]


def weights_for(phase: int, phase_weights: tuple[int, ...] = PHASE_WEIGHTS) -> Weights:
    """Stable/canary weights for ``phase``."""
    validate_phase(phase)
    canary = phase_weights[phase]
    if not 0 <= canary <= 100:
        raise RolloutError(f"phase {phase} canary weight {canary} is outside 0..100")
    return Weights(stable=100 - canary, canary=canary)


def validate_phase_weights(weights: tuple[int, ...]) -> tuple[int, ...]:
    """Phase weights must start at 0, end at 100 and strictly increase."""
    if len(weights) != len(PHASE_WEIGHTS):
        raise RolloutError(
            f"rollout.phaseWeights must have {len(PHASE_WEIGHTS)} entries (phase 0..{MAX_PHASE}), "
            f"got {len(weights)}"
        )
    if weights[0] != 0 or weights[-1] != 100:
        raise RolloutError("rollout.phaseWeights must start at 0 and end at 100")
    if any(b <= a for a, b in zip(weights, weights[1:])):
        raise RolloutError(f"rollout.phaseWeights must strictly increase, got {list(weights)}")
    return weights


def check_transition(previous: int | None, new: int, allow_skip: bool = False) -> str:
    """Classify a phase change; raise on a skipped phase.

    Returns one of ``"initial"``, ``"noop"``, ``"advance"``, ``"rollback"``.
    Advancing more than one step at a time is refused unless ``allow_skip``.
    Any move down (to any lower phase, usually 0) is a rollback and allowed.
    """
    validate_phase(new)
    if previous is None:
        return "initial"
    validate_phase(previous)
    if new == previous:
        return "noop"
    if new < previous:
        return "rollback"
    if new - previous > 1 and not allow_skip:
        raise RolloutError(
            f"rollout.phase jumps from {previous} to {new}: phases advance one step at a time "
            f"(next allowed is {previous + 1}); set rollout.allowSkip=true to override"
        )
    return "advance"


#: from this phase on (blue/green prep) the green track runs at full size
FULL_GREEN_FROM_PHASE = 3


#: the fewest green api pods while the canary serves: its PodDisruptionBudget allows one
#: disruption, so with a single pod one node drain takes the canary (and its sticky users) down.
MIN_CANARY_REPLICAS = 2


def canary_replicas(
    phase: int,
    full_replicas: int,
    phase_weights: tuple[int, ...] = PHASE_WEIGHTS,
    min_replicas: int = MIN_CANARY_REPLICAS,
) -> int:
    """Replicas for the canary (green) track at ``phase`` under ``phase_weights``.

    0 at phase 0, full size from phase 3 (blue/green prep) on, otherwise
    proportional to the configured traffic weight but never below ``min_replicas``
    (nor above full size).
    """
    validate_phase(phase)
    if full_replicas < 0:
        raise RolloutError(f"replicas must be >= 0, got {full_replicas}")
    if phase == 0:
        return 0
    if phase >= FULL_GREEN_FROM_PHASE:
        return full_replicas
    share = -(-full_replicas * weights_for(phase, phase_weights).canary // 100)  # ceil
    return min(full_replicas, max(min_replicas, share))


@dataclass(frozen=True)
class Step:
    """A resolved phase: what the program deploys for it."""

    phase: int
    weights: Weights
    canary_replicas: int


def resolve_step(phase: int, phase_weights: tuple[int, ...], full_replicas: int) -> Step:
    """Weights plus the green api's replicas for ``phase`` (one call, one answer)."""
    return Step(
        phase=phase,
        weights=weights_for(phase, phase_weights),
        canary_replicas=canary_replicas(phase, full_replicas, phase_weights),
    )


def next_phase(phase: int) -> int:
    """The phase an ``advance`` moves to."""
    validate_phase(phase)
    if phase >= MAX_PHASE:
        raise RolloutError(f"phase {phase} is final; nothing to advance to")
    return phase + 1


def decider_for(phase: int) -> str:
    """Role that must approve leaving ``phase``."""
    validate_phase(phase)
    if phase not in DECIDERS:
        raise RolloutError(f"phase {phase} is final; no gate to approve (promote instead)")
    return DECIDERS[phase]


def approver_for(phase: int) -> str:
    """Role whose ``approve`` counts at ``phase``: its decider, or the promoter at the last."""
    return PROMOTE_DECIDER if phase == MAX_PHASE else decider_for(phase)
