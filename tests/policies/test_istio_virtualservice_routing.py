from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_NUMBER, UNKNOWN_OBJECT

from policies.lib.props import plain
from policies.rules import istio_virtualservice_routing as rule

T = "kubernetes:networking.istio.io/v1:VirtualService"


def vs(stable: object, canary: object) -> dict:
    return plain(
        {
            "metadata": {"name": "app", "namespace": "claude-enhancer"},
            "spec": {
                "hosts": ["app"],
                "http": [
                    {
                        "name": "primary",
                        "route": [
                            {"destination": {"host": "app", "subset": "stable"}, "weight": stable},
                            {"destination": {"host": "app", "subset": "canary"}, "weight": canary},
                        ],
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(("stable", "canary"), [(100, 0), (95, 5), (80, 20), (50, 50), (0, 100)])
def test_compliant_phase_weights(stable: int, canary: int) -> None:
    assert rule.check(T, vs(stable, canary), {}) == []


def test_single_destination() -> None:
    one = plain({"spec": {"http": [{"route": [{"destination": {"host": "app"}}]}]}})
    assert rule.check(T, one, {}) == []
    bad = plain({"spec": {"http": [{"route": [{"destination": {"host": "app"}, "weight": 60}]}]}})
    assert rule.check(T, bad, {}) == ["http[0]: route weights sum to 60; must be 100"]


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        (90, 5, ['http[0] ("primary"): route weights sum to 95; must be 100']),
        (
            90,
            10,
            [
                'http[0] ("primary"): canary subset "canary" weight 10 is not a rollout phase weight (0, 5, 20, 50, 100)'
            ],
        ),
        (None, 20, ['http[0] ("primary"): route weights sum to 20; must be 100']),
    ],
)
def test_violations(stable: object, canary: object, expected: list[str]) -> None:
    assert rule.check(T, vs(stable, canary), {}) == expected


def test_tcp_routes_and_config() -> None:
    props = plain(
        {
            "spec": {
                "tcp": [
                    {
                        "route": [
                            {"destination": {"host": "a"}, "weight": 30},
                            {"destination": {"host": "b"}, "weight": 30},
                        ]
                    }
                ]
            }
        }
    )
    assert rule.check(T, props, {}) == [
        "tcp[0]: route weights sum to 60; must be 100",
        "tcp[0]: splits traffic by weight between hosts a, b; a canary split must be between subsets of one "
        'host (stable / "canary") so the rollout rules can read its phase',
    ]
    assert rule.check(T, vs(90, 10), {"phaseWeights": [0, 10, 30, 60, 100]}) == []
    assert rule.check(T, vs(90, 10), {"canarySubset": "green"}) == []


def test_unknown_and_missing() -> None:
    assert rule.check(T, vs(UNKNOWN_NUMBER, UNKNOWN_NUMBER), {}) == []
    assert rule.check(T, plain({"spec": {"http": [{"route": UNKNOWN_OBJECT}]}}), {}) == []
    assert rule.check(T, plain({"spec": UNKNOWN_OBJECT}), {}) == []
    assert rule.check(T, {}, {}) == []
