"""Pure rollout phase model (no Pulumi imports).

Phase 0 is "stable only" (also the rollback target), phases 1..4 are the
SPEC's hybrid canary -> blue/green steps 5% -> 20% -> 50% -> 100%.
Everything here is a pure function so it is trivially unit-testable and
shared by the program, the policy pack and the rollout driver.
"""

from __future__ import annotations

from dataclasses import dataclass

#: canary (new-version) weight per phase; index == phase number.
PHASE_WEIGHTS: tuple[int, ...] = (0, 5, 20, 50, 100)
MAX_PHASE: int = len(PHASE_WEIGHTS) - 1

#: SPEC bake times in minutes (prod) for phases 1..4.
PROD_BAKE_MINUTES: dict[int, int] = {1: 30, 2: 45, 3: 30, 4: 15}

#: Who decides the gate that *leaves* a phase (SPEC table). Phase 0 -> 1 is
#: the GO/NO-GO of the deployment commander.
DECIDERS: dict[int, str] = {
    0: "deployment-commander",
    1: "tech-lead",
    2: "sre",
    3: "product-owner",
}


class RolloutError(ValueError):
    """A rollout transition or phase value that is not allowed."""


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


def canary_replicas(phase: int, full_replicas: int, min_replicas: int = 1) -> int:
    """Replicas for the canary (green) track at ``phase``.

    0 at phase 0, full size from phase 3 (blue/green prep) on, otherwise
    proportional to the traffic weight but never below ``min_replicas``.
    """
    validate_phase(phase)
    if full_replicas < 0:
        raise RolloutError(f"replicas must be >= 0, got {full_replicas}")
    if phase == 0:
        return 0
    if phase >= 3:
        return full_replicas
    share = -(-full_replicas * PHASE_WEIGHTS[phase] // 100)  # ceil
    return max(min_replicas, min(full_replicas, share))


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
        raise RolloutError(f"phase {phase} is final; no gate to approve")
    return DECIDERS[phase]
