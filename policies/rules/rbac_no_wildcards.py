"""Roles and ClusterRoles must not use wildcards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.net import selects_nearly_all
from policies.lib.props import as_dict, as_list, dig
from policies.lib.rule import Rule, base_type

RULE = Rule(
    name="rbac-no-wildcards",
    description="Role and ClusterRole rules must not use '*' anywhere in apiGroups, resources (sub-resources "
    "too), verbs or nonResourceURLs, grant escalate/bind/impersonate, or aggregate the built-in admin roles.",
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
#: verbs that hand out more than the rule names (API server RBAC docs, "Privilege escalation prevention")
ESCALATING_VERBS = ("escalate", "bind", "impersonate")
#: labels that feed the built-in admin/edit/cluster-admin roles: selecting them aggregates their rules
ADMIN_LABELS = (
    "rbac.authorization.k8s.io/aggregate-to-admin",
    "rbac.authorization.k8s.io/aggregate-to-edit",
    "rbac.authorization.k8s.io/aggregate-to-cluster-admin",
    "kubernetes.io/bootstrapping",
)


def _aggregation_issues(props: Any) -> list[str]:
    out: list[str] = []
    for i, sel in enumerate(as_list(dig(props, "aggregationRule", "clusterRoleSelectors"))):
        if not isinstance(sel, dict):
            continue
        labels = as_dict(dig(sel, "matchLabels"))
        keys = set(labels) | {str(dig(e, "key")) for e in as_list(dig(sel, "matchExpressions"))}
        if selects_nearly_all(sel):
            out.append(f"aggregationRule.clusterRoleSelectors[{i}] selects every ClusterRole (cluster-admin included)")
        for key in sorted(keys & set(ADMIN_LABELS)):
            out.append(f"aggregationRule.clusterRoleSelectors[{i}] pulls in the built-in admin roles' rules ({key})")
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if base_type(resource_type) not in RULE.resource_types:
        return []
    out: list[str] = []
    for i, rule in enumerate(as_list(dig(props, "rules"))):
        for field in _FIELDS:
            values = [v for v in as_list(dig(rule, field)) if isinstance(v, str)]
            if any("*" in v for v in values):  # "*", "pods/*", "*/exec", "/api/*"
                out.append(f'rules[{i}].{field} must not contain "*"')
        verbs = {str(v).lower() for v in as_list(dig(rule, "verbs"))}
        for verb in ESCALATING_VERBS:
            if verb in verbs:
                out.append(f'rules[{i}].verbs grants "{verb}": the subject can gain permissions it does not hold')
    return out + _aggregation_issues(props)
