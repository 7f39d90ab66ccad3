"""No ServiceAccount is bound to cluster-admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import as_list, dig, meta_namespace
from policies.lib.rule import Rule, base_type

RULE = Rule(
    name="rbac-no-cluster-admin-serviceaccount",
    description="RoleBindings and ClusterRoleBindings must not grant cluster-admin, admin or edit to "
    "ServiceAccounts or to "
    "groups/users that stand for everyone (system:authenticated, system:unauthenticated, system:anonymous, "
    "system:serviceaccounts[:<ns>]).",
    severity="critical",
    frameworks={
        "SOC2": ["CC6.1", "CC6.3"],
        "ISO27001": ["A.8.2", "A.5.15"],
        "CIS": ["K8s 5.1.1", "K8s 5.1.5"],
        "OWASP": ["K8s Top 10 K03", "A01:2021"],
    },
    remediation="Bind the ServiceAccount to a namespaced Role with the verbs it needs instead of cluster-admin.",
    resource_types=(
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    ),
    config_schema={
        "forbiddenRoles": {
            "type": "array",
            "items": {"type": "string"},
            # admin and edit read every Secret of a namespace and run pods as any of its ServiceAccounts
            "default": ["cluster-admin", "admin", "edit"],
            "description": "ClusterRoles that must never be bound to ServiceAccounts or everyone-groups.",
        },
    },
    tags=("kubernetes", "rbac"),
)


#: Groups and users that stand for "everyone" (or every workload) to the API server.
BROAD_GROUPS = ("system:authenticated", "system:unauthenticated", "system:serviceaccounts")
BROAD_USERS = ("system:anonymous",)


def _broad(kind: Any, name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if kind == "Group":
        # system:serviceaccounts:<ns> is every ServiceAccount of a namespace
        return name in BROAD_GROUPS or name.startswith("system:serviceaccounts:")
    return kind == "User" and (name in BROAD_USERS or name.startswith("system:serviceaccount:"))


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if base_type(resource_type) not in RULE.resource_types:
        return []
    forbidden = {str(r) for r in as_list(RULE.resolve_config(config).get("forbiddenRoles"))}
    role = dig(props, "roleRef", "name")
    if dig(props, "roleRef", "kind") != "ClusterRole" or role not in forbidden:
        return []
    out: list[str] = []
    for s in as_list(dig(props, "subjects")):
        kind, name = dig(s, "kind"), dig(s, "name")
        if kind == "ServiceAccount":
            ns = dig(s, "namespace") or meta_namespace(props)
            out.append(f"binds {role} to ServiceAccount {ns}/{name}")
        elif _broad(kind, name):
            out.append(f"binds {role} to {kind} {name}")
    return out
