"""An ALLOW AuthorizationPolicy must not re-open what the namespace's default deny closes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.net import covered_share, is_broad_share
from policies.lib.props import UNKNOWN, as_list, dig
from policies.lib.rule import Rule, crd_kind

RULE = Rule(
    name="authorizationpolicy-no-allow-all",
    description="ALLOW AuthorizationPolicies must name who may call: no rule that matches every request, no "
    "source that admits anyone (no from, '*', only notPrincipals/notNamespaces) and no source that admits every "
    "workload of the mesh root namespace.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.3"],
        "ISO27001": ["A.5.15", "A.8.3"],
        "CIS": ["Istio: least-privilege authorization"],
        "OWASP": ["A01:2021"],
        "GDPR": ["Art.25"],
    },
    remediation="Give every ALLOW rule a from.source.principals list of the exact service accounts "
    "(cluster.local/ns/<ns>/sa/<sa>) that call the workload, plus the ports/paths they use; allow the ingress "
    "gateway by its own service account, never by the root namespace.",
    resource_types=tuple(f"kubernetes:security.istio.io/{v}:AuthorizationPolicy" for v in ("v1", "v1beta1")),
    config_schema={
        "meshRootNamespace": {
            "type": "string",
            "default": "istio-system",
            "description": "Istio's root namespace (gateways and control plane).",
        },
    },
    tags=("istio", "authorization"),
)

_RESTRICTING = ("principals", "requestPrincipals", "namespaces", "ipBlocks", "remoteIpBlocks")


def _broad_principal(p: str, root: str) -> str | None:
    if p == "*":
        return "any authenticated principal"
    if p.startswith("*"):
        # A leading '*' leaves only a suffix: narrow only when that suffix still names one
        # namespace and one service account ("*/ns/<ns>/sa/<sa>": any trust-domain alias).
        _, has_ns, after = p[1:].partition("/ns/")
        ns, has_sa, sa = after.partition("/sa/")
        if not (has_ns and ns and has_sa and sa) or "*" in after or not p[1:].startswith("/ns/"):
            return f'every principal matching "{p}"'
        return None
    # Istio matches one leading or trailing '*'; a trailing one that stops short of a service
    # account name admits a whole namespace, or more.
    if not p.endswith("*") or p[:-1].partition("/sa/")[2]:
        return None
    fixed = p[:-1]
    _, has_ns, after = fixed.partition("/ns/")
    if not has_ns or "/" not in after:
        return f'every principal matching "{p}"'  # the namespace itself is open
    if after.split("/", 1)[0] == root:
        return f'every principal in the mesh root namespace "{root}"'
    return None  # one namespace's workloads: not judged here


def _source_issues(where: str, source: Any, root: str) -> list[str]:
    if not isinstance(source, dict) or not any(as_list(dig(source, k)) for k in _RESTRICTING):
        return [f"{where} admits any source"]
    out: list[str] = []
    for p in as_list(dig(source, "principals")):
        broad = _broad_principal(str(p), root) if isinstance(p, str) else None
        if broad:
            out.append(f'{where} principal "{p}" admits {broad}')
    for key in ("ipBlocks", "remoteIpBlocks"):
        blocks: list[tuple[Any, list[Any]]] = [(b, []) for b in as_list(dig(source, key)) if isinstance(b, str)]
        if blocks and is_broad_share(covered_share(blocks)):
            out.append(f"{where} {key} {', '.join(b for b, _ in blocks)} admit (nearly) any address")
    for n in as_list(dig(source, "namespaces")):
        if n == "*":
            out.append(f'{where} namespace "*" admits any namespace')
        elif isinstance(n, str) and n.startswith("*"):
            out.append(f'{where} namespace "{n}" admits every namespace ending in "{n[1:]}"')
        elif n == root:
            out.append(f'{where} namespace "{root}" admits every principal in the mesh root namespace')
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "security.istio.io", ["AuthorizationPolicy"]) is None:
        return []
    root = str(RULE.resolve_config(config).get("meshRootNamespace") or "istio-system")
    spec = dig(props, "spec")
    if spec is UNKNOWN or not isinstance(spec, dict):
        return []
    action = dig(spec, "action")
    if action is UNKNOWN or (action is not None and action != "ALLOW"):
        return []  # DENY/AUDIT/CUSTOM cannot widen access
    rules = dig(spec, "rules")
    if rules is UNKNOWN:
        return []
    out: list[str] = []
    # An ALLOW policy without rules matches nothing (that is the default deny itself).
    for i, rule in enumerate(as_list(rules)):
        if rule is UNKNOWN or dig(rule, "from") is UNKNOWN:
            continue
        sources = as_list(dig(rule, "from"))
        if not sources and not as_list(dig(rule, "to")) and not as_list(dig(rule, "when")):
            out.append(f"ALLOW rules[{i}] matches every request")
            continue
        if not sources:
            out.append(f"ALLOW rules[{i}] has no from: any source may call")
            continue
        for j, entry in enumerate(sources):
            source = dig(entry, "source")
            if source is UNKNOWN:
                continue
            out += _source_issues(f"ALLOW rules[{i}].from[{j}]", source, root)
    return out
