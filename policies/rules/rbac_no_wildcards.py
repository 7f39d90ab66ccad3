"""Roles and ClusterRoles must not use wildcards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import as_list, dig
from policies.lib.rule import Rule

RULE = Rule(
    name="rbac-no-wildcards",
    description="Role and ClusterRole rules must not use '*' in apiGroups, resources, verbs or nonResourceURLs.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.3"],
        "ISO27001": ["A.5.15", "A.5.18", "A.8.2"],
        "CIS": ["K8s 5.1.3"],
        "OWASP": ["K8s Top 10 K03", "A01:2021"],
    },
    remediation="List the exact apiGroups, resources and verbs the subject needs (least privilege).",
    resource_types=(
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    ),
    tags=("kubernetes", "rbac"),
)

_FIELDS = ("apiGroups", "resources", "verbs", "nonResourceURLs")


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if resource_type not in RULE.resource_types:
        return []
    out: list[str] = []
    for i, rule in enumerate(as_list(dig(props, "rules"))):
        for field in _FIELDS:
            values = [v for v in as_list(dig(rule, field)) if isinstance(v, str)]
            if any(v == "*" or v.endswith("/*") for v in values):
                out.append(f'rules[{i}].{field} must not contain "*"')
    return out
