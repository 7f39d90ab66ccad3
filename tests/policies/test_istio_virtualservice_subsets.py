from __future__ import annotations

from policy_fixtures import UNKNOWN_ARRAY, UNKNOWN_STRING

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import istio_virtualservice_subsets as rule

VS = "kubernetes:networking.istio.io/v1:VirtualService"
DR = "kubernetes:networking.istio.io/v1:DestinationRule"


def vs(
    host: str = "app", subsets: tuple[str, ...] = ("stable", "canary"), ns: str = "claude-enhancer"
) -> StackResource:
    route = [
        {"destination": {"host": host, "subset": s}, "weight": 100 // len(subsets)} for s in subsets
    ]
    return StackResource(
        VS,
        "vs",
        plain(
            {
                "metadata": {"name": "app", "namespace": ns},
                "spec": {"hosts": ["app"], "http": [{"route": route}]},
            }
        ),
    )


def dr(
    host: object = "app", subsets: object = ("stable", "canary"), ns: str = "claude-enhancer"
) -> StackResource:
    subs = (
        [{"name": s, "labels": {"track": s}} for s in subsets]
        if isinstance(subsets, tuple)
        else subsets
    )
    return StackResource(
        DR,
        "dr",
        plain(
            {"metadata": {"name": "app", "namespace": ns}, "spec": {"host": host, "subsets": subs}}
        ),
    )


def test_compliant() -> None:
    assert rule.check([vs(), dr()], {}) == []
    # FQDN in the DestinationRule matches a short host in the VirtualService
    assert rule.check([vs(), dr(host="app.claude-enhancer.svc.cluster.local")], {}) == []


def test_missing_subset() -> None:
    assert rule.check([vs(), dr(subsets=("stable",))], {}) == [
        'VirtualService claude-enhancer/app http[0]: subset "canary" of host "app" is not defined by any '
        "DestinationRule"
    ]


def test_missing_destination_rule_and_other_namespace() -> None:
    expected = [
        'VirtualService claude-enhancer/app http[0]: subset "canary" of host "app" is not defined by any '
        "DestinationRule",
        'VirtualService claude-enhancer/app http[0]: subset "stable" of host "app" is not defined by any '
        "DestinationRule",
    ]
    assert rule.check([vs()], {}) == expected
    assert rule.check([vs(), dr(ns="other")], {}) == expected


def test_unknown_is_safe() -> None:
    assert rule.check([vs(), dr(host=UNKNOWN_STRING)], {}) == []
    assert rule.check([vs(), dr(subsets=UNKNOWN_ARRAY)], {}) == []
    assert rule.check([StackResource(VS, "vs", {})], {}) == []
    assert rule.check([], {}) == []
