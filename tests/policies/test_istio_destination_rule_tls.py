from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_OBJECT, UNKNOWN_STRING

from policies.lib.props import plain
from policies.rules import istio_destination_rule_tls as rule

T = "kubernetes:networking.istio.io/v1:DestinationRule"


def dr(spec: object) -> dict:
    return plain({"metadata": {"name": "app", "namespace": "claude-enhancer"}, "spec": spec})


GOOD = {
    "host": "app",
    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
    "subsets": [
        {"name": "stable", "labels": {"track": "stable"}},
        {"name": "canary", "labels": {"track": "canary"}},
    ],
}


@pytest.mark.parametrize(
    "t",
    [
        T,
        "kubernetes:networking.istio.io/v1beta1:DestinationRule",
        "kubernetes:networking.istio.io/v1alpha3:DestinationRule",
    ],
)
def test_compliant(t: str) -> None:
    assert rule.check(t, dr(GOOD), {}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"host": "app"}, ["spec.trafficPolicy.tls.mode is unset; must be ISTIO_MUTUAL"]),
        (
            {"host": "app", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
            ["spec.trafficPolicy.tls.mode is DISABLE; must be ISTIO_MUTUAL"],
        ),
        (
            {"host": "app", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}},
            ["spec.trafficPolicy.tls.mode is SIMPLE; must be ISTIO_MUTUAL"],
        ),
        (
            {
                "host": "app",
                "trafficPolicy": {
                    "tls": {"mode": "ISTIO_MUTUAL"},
                    "portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "DISABLE"}}],
                },
            },
            ["spec.trafficPolicy.portLevelSettings[0].tls.mode is DISABLE; must be ISTIO_MUTUAL"],
        ),
        (
            {
                "host": "app",
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                "subsets": [{"name": "canary", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}],
            },
            ['subset "canary" trafficPolicy.tls.mode is DISABLE; must be ISTIO_MUTUAL'],
        ),
    ],
)
def test_violations(spec: dict, expected: list[str]) -> None:
    assert rule.check(T, dr(spec), {}) == expected


def test_config_allowed_modes() -> None:
    spec = {"host": "api.example.com", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}
    assert rule.check(T, dr(spec), {"allowedModes": ["ISTIO_MUTUAL", "SIMPLE"]}) == []


def test_unknown_and_missing() -> None:
    assert rule.check(T, dr(UNKNOWN_OBJECT), {}) == []
    assert (
        rule.check(T, dr({"host": "a", "trafficPolicy": {"tls": {"mode": UNKNOWN_STRING}}}), {})
        == []
    )
    assert rule.check(T, dr({"host": "a", "trafficPolicy": UNKNOWN_OBJECT}), {}) == []
    assert rule.check(T, {}, {}) == ["spec.trafficPolicy.tls.mode is unset; must be ISTIO_MUTUAL"]
