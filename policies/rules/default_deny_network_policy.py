"""Every workload namespace has a default-deny NetworkPolicy (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_list, dig, meta_namespace
from policies.lib.rule import Rule, StackResource, base_type, workload_namespaces

RULE = Rule(
    name="default-deny-networkpolicy",
    description="Every namespace that runs workloads must deny ingress and egress by default: NetworkPolicies "
    "with podSelector {} and no rules for a direction listed in policyTypes (one policy or one per direction).",
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


def denied_directions(props: Any) -> set[str] | None:
    """Directions ("Ingress"/"Egress") this policy closes for every pod of its namespace; None if unknown.

    A policy selecting every pod (podSelector {}) that lists a direction in policyTypes and has no
    rule for it denies that direction by default; the Kubernetes docs write a default deny as one
    such policy or as two (one per direction), and both count.
    """
    spec = dig(props, "spec")
    if spec is UNKNOWN:
        return None
    selector = dig(spec, "podSelector")
    if selector is UNKNOWN:
        return None
    if selector is None or any(as_dict(selector).get(k) for k in ("matchLabels", "matchExpressions")):
        return set()
    types = dig(spec, "policyTypes")
    if types is UNKNOWN:
        return None
    out: set[str] = set()
    for direction in ("Ingress", "Egress"):
        rules = dig(spec, direction.lower())
        if rules is UNKNOWN:
            return None
        # policyTypes defaults to Ingress (plus Egress when egress rules exist)
        listed = {str(t) for t in as_list(types)} if types is not None else {"Ingress"}
        if direction in listed and not as_list(rules):
            out.add(direction)
    return out


def is_default_deny(props: Any) -> bool | None:
    """True when this one policy denies both directions; None when unknown during preview."""
    dirs = denied_directions(props)
    return None if dirs is None else dirs == {"Ingress", "Egress"}


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    namespaces, _ = workload_namespaces(resources, [str(n) for n in as_list(cfg.get("exemptNamespaces"))])
    covered: dict[str, set[str]] = {}
    for r in resources:
        if base_type(r.type) != NP_TYPE:
            continue
        dirs = denied_directions(r.props)
        ns = meta_namespace(r.props)
        if dirs is None or ns == "<unknown>":
            return []  # cannot be judged during preview; the update run will
        covered.setdefault(ns, set()).update(dirs)
    out = []
    for ns in sorted(namespaces):
        missing = {"Ingress", "Egress"} - covered.get(ns, set())
        if missing == {"Ingress", "Egress"}:
            out.append(f'namespace "{ns}" has workloads but no default-deny NetworkPolicy')
        elif missing:
            out.append(f'namespace "{ns}" has no default-deny NetworkPolicy for {", ".join(sorted(missing))}')
    return out
