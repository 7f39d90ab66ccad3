from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_OBJECT, UNKNOWN_STRING

from policies.lib.props import plain
from policies.rules import istio_peer_authentication as rule

T = "kubernetes:security.istio.io/v1:PeerAuthentication"


def pa(spec: object) -> dict:
    return plain(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": spec,
        }
    )


@pytest.mark.parametrize("t", [T, "kubernetes:security.istio.io/v1beta1:PeerAuthentication"])
def test_compliant(t: str) -> None:
    assert rule.check(t, pa({"mtls": {"mode": "STRICT"}}), {}) == []
    assert (
        rule.check(
            t, pa({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "STRICT"}}}), {}
        )
        == []
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"mtls": {"mode": "PERMISSIVE"}}, ["spec.mtls.mode is PERMISSIVE; must be STRICT"]),
        ({"mtls": {"mode": "DISABLE"}}, ["spec.mtls.mode is DISABLE; must be STRICT"]),
        ({}, ["spec.mtls.mode is unset; must be STRICT"]),
        (
            {
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}, "15020": {"mode": "DISABLE"}},
            },
            [
                "spec.portLevelMtls[15020].mode is DISABLE; must be STRICT",
                "spec.portLevelMtls[9090].mode is PERMISSIVE; must be STRICT",
            ],
        ),
    ],
)
def test_violations(spec: dict, expected: list[str]) -> None:
    assert rule.check(T, pa(spec), {}) == expected


def test_unknown_and_missing() -> None:
    assert rule.check(T, pa({"mtls": {"mode": UNKNOWN_STRING}}), {}) == []
    assert rule.check(T, pa(UNKNOWN_OBJECT), {}) == []
    assert (
        rule.check(T, pa({"mtls": {"mode": "STRICT"}, "portLevelMtls": UNKNOWN_OBJECT}), {}) == []
    )
    assert rule.check(T, {}, {}) == ["spec.mtls.mode is unset; must be STRICT"]
    assert rule.check("kubernetes:networking.istio.io/v1:DestinationRule", pa({}), {}) == []
