"""rbac-no-wildcards and rbac-no-cluster-admin-serviceaccount."""

from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_ARRAY, UNKNOWN_STRING

from policies.lib.props import plain
from policies.rules import rbac_no_cluster_admin_sa as binding
from policies.rules import rbac_no_wildcards as wildcards

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
RB = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CRB = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


def role(*rules: dict) -> dict:
    return plain({"metadata": {"name": "r", "namespace": "claude-enhancer"}, "rules": list(rules)})


def test_roles_compliant() -> None:
    good = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    assert wildcards.check(ROLE, role(good), {}) == []
    assert wildcards.check(CROLE, role(good), {}) == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
            ['rules[0].apiGroups must not contain "*"'],
        ),
        (
            {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
            ['rules[0].resources must not contain "*"'],
        ),
        (
            {"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]},
            ['rules[0].resources must not contain "*"'],
        ),
        (
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
            ['rules[0].verbs must not contain "*"'],
        ),
        (
            {"nonResourceURLs": ["*"], "verbs": ["get"]},
            ['rules[0].nonResourceURLs must not contain "*"'],
        ),
        (
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            [
                'rules[0].apiGroups must not contain "*"',
                'rules[0].resources must not contain "*"',
                'rules[0].verbs must not contain "*"',
            ],
        ),
    ],
)
def test_wildcards(rule: dict, expected: list[str]) -> None:
    assert wildcards.check(CROLE, role(rule), {}) == expected


def test_wildcards_unknown_safe() -> None:
    assert wildcards.check(ROLE, plain({"rules": UNKNOWN_ARRAY}), {}) == []
    assert (
        wildcards.check(
            ROLE, plain({"rules": [{"verbs": UNKNOWN_ARRAY, "resources": [UNKNOWN_STRING]}]}), {}
        )
        == []
    )
    assert wildcards.check(ROLE, {}, {}) == []


def rb(role_name: str, *subjects: dict, kind: str = "ClusterRole") -> dict:
    return plain(
        {
            "metadata": {"name": "b", "namespace": "claude-enhancer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": list(subjects),
        }
    )


SA = {"kind": "ServiceAccount", "name": "app", "namespace": "claude-enhancer"}


def test_bindings_compliant() -> None:
    assert binding.check(CRB, rb("view", SA), {}) == []
    assert (
        binding.check(RB, rb("cluster-admin", SA, kind="Role"), {}) == []
    )  # a Role that happens to share the name
    assert (
        binding.check(CRB, rb("cluster-admin", {"kind": "Group", "name": "platform-admins"}), {})
        == []
    )


@pytest.mark.parametrize("t", [RB, CRB])
def test_cluster_admin_to_service_account(t: str) -> None:
    assert binding.check(t, rb("cluster-admin", SA), {}) == [
        "binds cluster-admin to ServiceAccount claude-enhancer/app"
    ]


def test_sa_without_namespace_and_groups() -> None:
    assert binding.check(RB, rb("cluster-admin", {"kind": "ServiceAccount", "name": "x"}), {}) == [
        "binds cluster-admin to ServiceAccount claude-enhancer/x"
    ]
    assert binding.check(
        CRB, rb("cluster-admin", {"kind": "Group", "name": "system:serviceaccounts"}), {}
    ) == ["binds cluster-admin to Group system:serviceaccounts"]
    assert binding.check(
        CRB, rb("cluster-admin", {"kind": "User", "name": "system:serviceaccount:a:b"}), {}
    ) == ["binds cluster-admin to User system:serviceaccount:a:b"]
    assert binding.check(CRB, rb("admin", SA), {"forbiddenRoles": ["admin"]}) == [
        "binds admin to ServiceAccount claude-enhancer/app"
    ]


def test_bindings_unknown_safe() -> None:
    assert (
        binding.check(
            CRB,
            plain({"roleRef": {"kind": "ClusterRole", "name": UNKNOWN_STRING}, "subjects": [SA]}),
            {},
        )
        == []
    )
    assert (
        binding.check(
            CRB,
            plain(
                {
                    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": UNKNOWN_ARRAY,
                }
            ),
            {},
        )
        == []
    )
    assert binding.check(CRB, {}, {}) == []
