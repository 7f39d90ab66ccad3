"""Pure phase model: weights, transitions, canary scale, deciders."""

import pytest

from rollout import phases as r


@pytest.mark.parametrize(
    "phase,stable,canary", [(0, 100, 0), (1, 95, 5), (2, 80, 20), (3, 50, 50), (4, 0, 100)]
)
def test_weights_per_phase_sum_to_100(phase: int, stable: int, canary: int) -> None:
    w = r.weights_for(phase)
    assert (w.stable, w.canary) == (stable, canary)
    assert w.stable + w.canary == 100


@pytest.mark.parametrize("bad", [-1, 5, 99])
def test_unknown_phase_is_refused(bad: int) -> None:
    with pytest.raises(r.RolloutError, match=f"between 0 and 4, got {bad}"):
        r.weights_for(bad)


@pytest.mark.parametrize("bad", ["1", 1.0, True, None])
def test_non_integer_phase_is_refused(bad: object) -> None:
    with pytest.raises(r.RolloutError, match="must be an integer"):
        r.validate_phase(bad)  # type: ignore[arg-type]


def test_transitions() -> None:
    assert r.check_transition(None, 0) == "initial"
    assert r.check_transition(1, 1) == "noop"
    assert r.check_transition(1, 2) == "advance"
    assert r.check_transition(3, 0) == "rollback"
    assert r.check_transition(4, 2) == "rollback"


def test_skipped_phase_is_refused_unless_overridden() -> None:
    with pytest.raises(r.RolloutError, match=r"jumps from 1 to 3.*next allowed is 2"):
        r.check_transition(1, 3)
    assert r.check_transition(1, 3, allow_skip=True) == "advance"


def test_canary_replicas() -> None:
    # issue 23 defect 10: never fewer than 2 serving canary pods (was [0, 1, 2, 10, 10], 1)
    assert [r.canary_replicas(p, 10) for p in range(5)] == [0, 2, 2, 10, 10]
    assert r.canary_replicas(2, 3) == 2
    assert r.canary_replicas(1, 1) == 1  # never above full size
    with pytest.raises(r.RolloutError, match="replicas must be >= 0"):
        r.canary_replicas(1, -1)


def test_phase_weights_validation() -> None:
    assert r.validate_phase_weights((0, 5, 20, 50, 100)) == (0, 5, 20, 50, 100)
    with pytest.raises(r.RolloutError, match="start at 0 and end at 100"):
        r.validate_phase_weights((0, 5, 20, 50, 90))
    with pytest.raises(r.RolloutError, match="strictly increase"):
        r.validate_phase_weights((0, 20, 20, 50, 100))
    with pytest.raises(r.RolloutError, match="must have 5 entries"):
        r.validate_phase_weights((0, 50, 100))


def test_deciders_follow_the_spec_table() -> None:
    assert [r.decider_for(p) for p in range(4)] == [
        "deployment-commander",
        "tech-lead",
        "sre",
        "product-owner",
    ]
    with pytest.raises(r.RolloutError, match="final"):
        r.decider_for(4)
    assert r.next_phase(3) == 4
    with pytest.raises(r.RolloutError, match="final"):
        r.next_phase(4)
