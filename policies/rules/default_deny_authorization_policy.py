"""Every workload namespace has a default-deny Istio AuthorizationPolicy (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_list, dig, meta_namespace
from policies.lib.rule import Rule, StackResource, crd_kind, workload_namespaces

RULE = Rule(
    name="default-deny-authorizationpolicy",
    description="Every namespace that runs workloads must have a default-deny Istio AuthorizationPolicy (spec: {}).",
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
    spec = dig(props, "spec")
    if spec is UNKNOWN:
        return None
    spec = as_dict(spec)
    for key, value in spec.items():
        if value is UNKNOWN:
            return None
        if key == "action" and value in ("ALLOW", None):
            continue
        if value in (None, {}, []):
            continue
        return False
    return True


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    namespaces, _ = workload_namespaces(resources, [str(n) for n in as_list(cfg.get("exemptNamespaces"))])
    covered: set[str] = set()
    for r in resources:
        if crd_kind(r.type, "security.istio.io", ["AuthorizationPolicy"]) is None:
            continue
        verdict = is_deny_all(r.props)
        ns = meta_namespace(r.props)
        if verdict is None or ns == "<unknown>":
            return []
        if verdict:
            covered.add(ns)
    return [
        f'namespace "{ns}" has workloads but no default-deny AuthorizationPolicy' for ns in sorted(namespaces - covered)
    ]
