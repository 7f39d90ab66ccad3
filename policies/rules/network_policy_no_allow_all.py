"""A NetworkPolicy rule must not allow every peer on every port (it would void the default deny)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_list, dig
from policies.lib.rule import Rule, base_type

NP_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

RULE = Rule(
    name="networkpolicy-no-allow-all",
    description="NetworkPolicy ingress/egress rules must restrict peers or ports: a rule with no peers (or a "
    "peer matching every pod or address) and no ports allows everything.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.6", "CC6.1"],
        "ISO27001": ["A.8.22", "A.8.20"],
        "CIS": ["K8s 5.3.2"],
        "OWASP": ["K8s Top 10 K07"],
        "GDPR": ["Art.32"],
    },
    remediation="Name the peers (namespaceSelector/podSelector labels, a bounded ipBlock) and the ports of each "
    "flow; keep one default-deny policy per namespace and add one narrow policy per flow.",
    resource_types=(NP_TYPE,),
    tags=("kubernetes", "network"),
)

_ANY_CIDR = ("0.0.0.0/0", "::/0")


def _selects_all(selector: Any) -> bool:
    return isinstance(selector, dict) and not any(as_dict(selector).get(k) for k in ("matchLabels", "matchExpressions"))


def _peer_is_everything(peer: Any) -> bool | None:
    if peer is UNKNOWN:
        return None
    ns_sel, pod_sel, ip = dig(peer, "namespaceSelector"), dig(peer, "podSelector"), dig(peer, "ipBlock")
    if UNKNOWN in (ns_sel, pod_sel, ip):
        return None
    if ip is not None:
        return dig(ip, "cidr") in _ANY_CIDR and not as_list(dig(ip, "except"))
    # namespaceSelector {} (with no or an empty podSelector) selects every pod of every namespace
    return _selects_all(ns_sel) and (pod_sel is None or _selects_all(pod_sel))


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if base_type(resource_type) != NP_TYPE:
        return []
    out: list[str] = []
    for direction, peers_key, who in (("ingress", "from", "sources"), ("egress", "to", "destinations")):
        rules = dig(props, "spec", direction)
        if rules is UNKNOWN:
            continue
        for i, rule in enumerate(as_list(rules)):
            peers, ports = dig(rule, peers_key), dig(rule, "ports")
            if rule is UNKNOWN or UNKNOWN in (peers, ports):
                continue
            verdicts = [_peer_is_everything(p) for p in as_list(peers)]
            if None in verdicts:
                continue
            if (not verdicts or any(verdicts)) and not as_list(ports):
                out.append(f"spec.{direction}[{i}] allows all {who} on all ports")
    return out
