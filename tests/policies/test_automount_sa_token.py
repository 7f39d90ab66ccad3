from __future__ import annotations

from policy_fixtures import DEPLOYMENT, UNKNOWN_BOOL, deployment

from policies.lib.props import plain
from policies.rules import automount_sa_token as rule

SA = "kubernetes:core/v1:ServiceAccount"


def sa(automount: object = False, annotations: dict | None = None) -> dict:
    meta: dict = {"name": "app", "namespace": "claude-enhancer"}
    if annotations:
        meta["annotations"] = annotations
    props: dict = {"metadata": meta}
    if automount is not None:
        props["automountServiceAccountToken"] = automount
    return plain(props)


def test_service_account() -> None:
    assert rule.check(SA, sa(False), {}) == []
    assert rule.check(SA, sa(True), {}) == ["automountServiceAccountToken must be false"]
    assert rule.check(SA, sa(None), {}) == ["automountServiceAccountToken must be false"]
    assert rule.check(SA, sa(True, {rule.ANNOTATION: "true"}), {}) == []
    assert rule.check(SA, sa(True), {"allowedServiceAccounts": ["claude-enhancer/app"]}) == []
    assert rule.check(SA, sa(UNKNOWN_BOOL), {}) == []


def test_workload() -> None:
    d = deployment()
    assert rule.check(DEPLOYMENT, plain(d), {}) == []
    d["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    assert rule.check(DEPLOYMENT, plain(d), {}) == [
        "pod spec.automountServiceAccountToken must be false"
    ]
    del d["spec"]["template"]["spec"]["automountServiceAccountToken"]
    assert rule.check(DEPLOYMENT, plain(d), {}) == [
        "pod spec.automountServiceAccountToken must be false"
    ]
    assert (
        rule.check(
            DEPLOYMENT, plain(d), {"allowedServiceAccounts": ["claude-enhancer/claude-enhancer"]}
        )
        == []
    )
    d["spec"]["template"]["metadata"]["annotations"] = {rule.ANNOTATION: "true"}
    assert rule.check(DEPLOYMENT, plain(d), {}) == []


def test_unknown_and_missing() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["automountServiceAccountToken"] = UNKNOWN_BOOL
    assert rule.check(DEPLOYMENT, plain(d), {}) == []
    assert rule.check(DEPLOYMENT, {}, {}) == []
    assert rule.check("kubernetes:core/v1:ConfigMap", {}, {}) == []
