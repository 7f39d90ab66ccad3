"""Every workload namespace has a default-deny Istio AuthorizationPolicy (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_list, dig, meta_namespace
from policies.lib.rule import Rule, StackResource, crd_kind, workload_namespaces

RULE = Rule(
    name="default-deny-authorizationpolicy",
    description="Every namespace that runs workloads must have a default-deny Istio AuthorizationPolicy (spec: {} "
    "or DENY with a rule matching everything), or the mesh root namespace one that covers them all.",
    severity="high",
    scope="stack",
    frameworks={
        "SOC2": ["CC6.1", "CC6.3"],
        "ISO27001": ["A.5.15", "A.8.3"],
        "CIS": ["Istio: default deny"],
        "OWASP": ["A01:2021"],
        "GDPR": ["Art.25", "Art.32"],
    },
    remediation="Add an AuthorizationPolicy with an empty spec ({}) to the namespace (deny all), then allow "
    "required callers with ALLOW policies that name principals.",
    resource_types=(
        "kubernetes:security.istio.io/v1:AuthorizationPolicy",
        "kubernetes:security.istio.io/v1beta1:AuthorizationPolicy",
    ),
    config_schema={
        "meshRootNamespace": {
            "type": "string",
            "default": "istio-system",
            "description": "Istio's root namespace: a default deny there covers the whole mesh.",
        },
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kube-system", "kube-public", "kube-node-lease"],
            "description": "Namespaces not required to have the policy.",
        },
    },
    tags=("istio", "authorization"),
)


def is_deny_all(props: Any) -> bool | None:
    """An allow-nothing policy (``spec: {}`` / ALLOW without rules) or a DENY with a rule that matches
    everything (``action: DENY, rules: [{}]``, Istio's "deny-all"); None when unknown."""
    spec = dig(props, "spec")
    if spec is UNKNOWN:
        return None
    spec = as_dict(spec)
    if any(v is UNKNOWN for v in spec.values()):
        return None
    action = spec.get("action") or "ALLOW"
    rules = as_list(spec.get("rules"))
    selector = spec.get("selector") or spec.get("targetRef") or spec.get("targetRefs")
    if selector not in (None, {}, []):
        return False  # applies to some workloads only
    if action == "ALLOW":
        return not rules
    if action == "DENY":
        return any(isinstance(r, dict) and all(v in (None, {}, []) for v in r.values()) for r in rules)
    return False


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    root = str(cfg.get("meshRootNamespace") or "istio-system")
    namespaces, _ = workload_namespaces(resources, [str(n) for n in as_list(cfg.get("exemptNamespaces"))])
    covered: set[str] = set()
    for r in resources:
        if crd_kind(r.type, "security.istio.io", ["AuthorizationPolicy"]) is None:
            continue
        verdict = is_deny_all(r.props)
        ns = meta_namespace(r.props)
        if verdict is None or ns == "<unknown>":
            return []
        if verdict and ns == root:
            return []  # a policy in the mesh root namespace applies to every namespace (Istio docs)
        if verdict:
            covered.add(ns)
    return [
        f'namespace "{ns}" has workloads but no default-deny AuthorizationPolicy' for ns in sorted(namespaces - covered)
    ]
