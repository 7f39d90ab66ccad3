"""A NetworkPolicy rule must not allow every peer on every port (it would void the default deny)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.net import covered_share, is_broad_share, selects_nearly_all
from policies.lib.props import UNKNOWN, as_int, as_list, contains_unknown, dig
from policies.lib.rule import Rule, base_type

NP_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

RULE = Rule(
    name="networkpolicy-no-allow-all",
    description="NetworkPolicy ingress/egress rules must restrict peers or ports: a rule whose peers reach "
    "every pod or (nearly) every address, together, on every port allows everything.",
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


def _all_ports(ports: Any) -> bool:
    """No ports, an entry with only a protocol (every port of it), or a range over every port."""
    entries = as_list(ports)
    if not entries:
        return True
    for entry in entries:
        port, end = dig(entry, "port"), as_int(dig(entry, "endPort"))
        if port is None:
            return True
        if as_int(port) is not None and as_int(port) <= 1 and end is not None and end >= 65535:  # type: ignore[operator]
            return True
    return False


def _peers_are_everything(peers: list[Any]) -> bool:
    """No peers, a peer matching every pod of every namespace, or ipBlocks covering most addresses together."""
    if not peers:
        return True
    blocks = []
    for peer in peers:
        ns_sel, pod_sel, ip = dig(peer, "namespaceSelector"), dig(peer, "podSelector"), dig(peer, "ipBlock")
        if ip is not None:
            blocks.append((dig(ip, "cidr"), as_list(dig(ip, "except"))))
        elif ns_sel is not None and selects_nearly_all(ns_sel) and (pod_sel is None or selects_nearly_all(pod_sel)):
            return True
    return is_broad_share(covered_share(blocks))


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if base_type(resource_type) != NP_TYPE:
        return []
    out: list[str] = []
    for direction, peers_key, who in (("ingress", "from", "sources"), ("egress", "to", "destinations")):
        rules = dig(props, "spec", direction)
        if rules is UNKNOWN:
            continue
        for i, rule in enumerate(as_list(rules)):
            if rule is UNKNOWN or contains_unknown(rule):
                continue
            if _peers_are_everything(as_list(dig(rule, peers_key))) and _all_ports(dig(rule, "ports")):
                out.append(f"spec.{direction}[{i}] allows all {who} on all ports")
    return out
