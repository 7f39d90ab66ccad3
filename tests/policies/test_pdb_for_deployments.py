from __future__ import annotations

from policy_fixtures import DEPLOYMENT, UNKNOWN_OBJECT, UNKNOWN_STRING, deployment

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import pdb_for_deployments as rule

PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def dep(**kw: object) -> StackResource:
    return StackResource(DEPLOYMENT, "d", plain(deployment(**kw)))  # type: ignore[arg-type]


def pdb(selector: object, ns: str = "claude-enhancer") -> StackResource:
    return StackResource(
        PDB,
        "p",
        plain(
            {
                "metadata": {"name": "p", "namespace": ns},
                "spec": {"minAvailable": 1, "selector": selector},
            }
        ),
    )


def test_compliant() -> None:
    assert rule.check([dep(), pdb({"matchLabels": {"app": "claude-enhancer"}})], {}) == []
    assert (
        rule.check(
            [
                dep(),
                pdb(
                    {
                        "matchExpressions": [
                            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                            {"key": "legacy", "operator": "DoesNotExist"},
                        ]
                    }
                ),
            ],
            {},
        )
        == []
    )


def test_missing_or_not_matching() -> None:
    msg = ["Deployment claude-enhancer/app has no PodDisruptionBudget"]
    assert rule.check([dep()], {}) == msg
    assert rule.check([dep(), pdb({"matchLabels": {"app": "other"}})], {}) == msg
    assert (
        rule.check([dep(), pdb({"matchLabels": {"app": "claude-enhancer"}}, ns="other")], {}) == msg
    )
    assert (
        rule.check(
            [
                dep(),
                pdb(
                    {
                        "matchExpressions": [
                            {"key": "track", "operator": "NotIn", "values": ["stable"]}
                        ]
                    }
                ),
            ],
            {},
        )
        == msg
    )
    assert (
        rule.check([dep(), pdb({"matchExpressions": [{"key": "zone", "operator": "Exists"}]})], {})
        == msg
    )


def test_statefulset_via_config() -> None:
    ss = StackResource("kubernetes:apps/v1:StatefulSet", "s", plain(deployment(name="db")))
    assert rule.check([ss], {}) == []
    assert rule.check([ss], {"kinds": ["kubernetes:apps/v1:StatefulSet"]}) == [
        "StatefulSet claude-enhancer/db has no PodDisruptionBudget"
    ]


def test_unknown_is_safe() -> None:
    assert rule.check([dep(), pdb(UNKNOWN_OBJECT)], {}) == []
    assert rule.check([dep(), pdb({"matchLabels": {"app": UNKNOWN_STRING}})], {}) == []
    assert rule.check([dep(), pdb({"matchLabels": {"app": "x"}}, ns=UNKNOWN_STRING)], {}) == []
    assert rule.check([StackResource(DEPLOYMENT, "d", {})], {}) == [
        "Deployment default/<unnamed> has no PodDisruptionBudget"
    ]
