from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_NUMBER

from policies.lib.props import plain
from policies.rules import rollout_phase_step as rule
from rollout.phases import PHASE_WEIGHTS

T = "kubernetes:networking.istio.io/v1:VirtualService"


def vs(canary: object) -> dict:
    stable = 100 - canary if isinstance(canary, int) else 0
    return plain(
        {
            "spec": {
                "http": [
                    {
                        "route": [
                            {"destination": {"host": "app", "subset": "stable"}, "weight": stable},
                            {"destination": {"host": "app", "subset": "canary"}, "weight": canary},
                        ]
                    }
                ]
            }
        }
    )


def test_shares_phase_model() -> None:
    assert rule.RULE.config_schema["phaseWeights"]["default"] == list(PHASE_WEIGHTS)


@pytest.mark.parametrize(
    ("prev", "new"), [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (3, 0), (2, 1), (4, 4)]
)
def test_allowed_transitions(prev: int, new: int) -> None:
    assert rule.check(T, vs(PHASE_WEIGHTS[new]), {"previousPhase": prev}) == []


@pytest.mark.parametrize(
    ("prev", "new", "expected"),
    [
        (
            0,
            2,
            "rollout phase jumps from 0 (0%) to 2 (20%); phases advance one step at a time (next allowed is 1); "
            "set allowSkip to override",
        ),
        (
            1,
            3,
            "rollout phase jumps from 1 (5%) to 3 (50%); phases advance one step at a time (next allowed is 2); "
            "set allowSkip to override",
        ),
        (
            0,
            4,
            "rollout phase jumps from 0 (0%) to 4 (100%); phases advance one step at a time (next allowed is 1); "
            "set allowSkip to override",
        ),
    ],
)
def test_skips_blocked(prev: int, new: int, expected: str) -> None:
    assert rule.check(T, vs(PHASE_WEIGHTS[new]), {"previousPhase": prev}) == [expected]
    assert rule.check(T, vs(PHASE_WEIGHTS[new]), {"previousPhase": prev, "allowSkip": True}) == []


def test_previous_phase_float_from_config_json() -> None:
    # MessageToDict turns JSON numbers into floats
    assert rule.check(T, vs(50), {"previousPhase": 1.0}) != []


def test_bad_previous_phase() -> None:
    assert rule.check(T, vs(50), {"previousPhase": 9}) == [
        "previousPhase 9 is not a rollout phase (0..4)"
    ]


def test_without_previous_phase_or_unknown() -> None:
    assert rule.check(T, vs(100), {}) == []
    assert rule.check(T, vs(100), {"previousPhase": None}) == []
    assert rule.check(T, vs(100), {"previousPhase": -1}) == []
    assert rule.check(T, vs(UNKNOWN_NUMBER), {"previousPhase": 0}) == []
    # a weight that maps to no phase is an error, never a pass (with or without a previous phase)
    unmappable = (
        "canary weight 10% is no phase of this stack (phaseWeights [0, 5, 20, 50, 100]); "
        "the rollout step cannot be judged"
    )
    assert rule.check(T, vs(10), {"previousPhase": 0}) == [unmappable]
    assert rule.check(T, vs(10), {}) == [unmappable]
    # ... unless the stack's own phaseWeights has it
    assert rule.check(T, vs(10), {"previousPhase": 0, "phaseWeights": [0, 10, 30, 60, 100]}) == []
    assert rule.check(T, {}, {"previousPhase": 0}) == []
