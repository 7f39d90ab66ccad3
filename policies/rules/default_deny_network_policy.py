"""Every workload namespace has a default-deny NetworkPolicy (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_list, dig, meta_namespace
from policies.lib.rule import Rule, StackResource, workload_namespaces

RULE = Rule(
    name="default-deny-networkpolicy",
    description="Every namespace that runs workloads must have a default-deny NetworkPolicy (podSelector {}, "
    "policyTypes Ingress and Egress, no rules).",
    severity="high",
    scope="stack",
    frameworks={
        "SOC2": ["CC6.6", "CC6.1"],
        "ISO27001": ["A.8.22", "A.8.20"],
        "CIS": ["K8s 5.3.2"],
        "OWASP": ["K8s Top 10 K07"],
        "GDPR": ["Art.32"],
    },
    remediation="Add a NetworkPolicy with spec.podSelector: {}, spec.policyTypes: [Ingress, Egress] and no "
    "ingress/egress rules to the namespace, then allow required flows with additional policies.",
    resource_types=("kubernetes:networking.k8s.io/v1:NetworkPolicy",),
    config_schema={
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kube-system", "kube-public", "kube-node-lease"],
            "description": "Namespaces not required to have the policy.",
        },
    },
    tags=("kubernetes", "network"),
)

NP_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def is_default_deny(props: Any) -> bool | None:
    """True/False, or None when unknown during preview."""
    spec = dig(props, "spec")
    if spec is UNKNOWN:
        return None
    selector = dig(spec, "podSelector")
    if selector is UNKNOWN:
        return None
    if selector is None or any(as_dict(selector).get(k) for k in ("matchLabels", "matchExpressions")):
        return False
    types = dig(spec, "policyTypes")
    if types is UNKNOWN:
        return None
    if not {"Ingress", "Egress"} <= {str(t) for t in as_list(types)}:
        return False
    for key in ("ingress", "egress"):
        rules = dig(spec, key)
        if rules is UNKNOWN:
            return None
        if as_list(rules):
            return False
    return True


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    namespaces, _ = workload_namespaces(resources, [str(n) for n in as_list(cfg.get("exemptNamespaces"))])
    covered: set[str] = set()
    for r in resources:
        if r.type != NP_TYPE:
            continue
        verdict = is_default_deny(r.props)
        ns = meta_namespace(r.props)
        if verdict is None or ns == "<unknown>":
            return []  # cannot be judged during preview; the update run will
        if verdict:
            covered.add(ns)
    return [f'namespace "{ns}" has workloads but no default-deny NetworkPolicy' for ns in sorted(namespaces - covered)]
