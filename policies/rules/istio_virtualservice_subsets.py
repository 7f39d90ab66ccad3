"""Every subset a VirtualService routes to is defined by a DestinationRule for that host (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.istio import fqdn, route_label, routes
from policies.lib.props import UNKNOWN, as_list, dig, meta_name, meta_namespace
from policies.lib.rule import Rule, StackResource, crd_kind

RULE = Rule(
    name="istio-virtualservice-subsets",
    description="Every subset referenced by a VirtualService route must be defined in a DestinationRule for "
    "the same host.",
    severity="high",
    scope="stack",
    frameworks={
        "SOC2": ["A1.2", "CC8.1"],
        "ISO27001": ["A.8.32"],
        "OWASP": ["A04:2021"],
    },
    remediation="Add the subset (name + labels) to the DestinationRule whose spec.host is the destination "
    "host, or fix the subset name in the VirtualService route.",
    resource_types=(
        "kubernetes:networking.istio.io/v1:VirtualService",
        "kubernetes:networking.istio.io/v1:DestinationRule",
    ),
    tags=("istio", "rollout"),
)


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    defined: dict[str, set[str]] = {}
    uncertain = False  # a DestinationRule whose host/subsets are unknown could define anything
    for r in resources:
        if crd_kind(r.type, "networking.istio.io", ["DestinationRule"]) is None:
            continue
        host = dig(r.props, "spec", "host")
        ns = meta_namespace(r.props)
        subsets = dig(r.props, "spec", "subsets")
        if host is UNKNOWN or subsets is UNKNOWN or ns == "<unknown>" or not isinstance(host, str):
            uncertain = True
            continue
        names = defined.setdefault(fqdn(host, ns), set())
        for s in as_list(subsets):
            n = dig(s, "name")
            if n is UNKNOWN:
                uncertain = True
            elif isinstance(n, str):
                names.add(n)
    if uncertain:
        return []
    out: list[str] = []
    for r in resources:
        if crd_kind(r.type, "networking.istio.io", ["VirtualService"]) is None:
            continue
        ns = meta_namespace(r.props)
        vs = f"{ns}/{meta_name(r.props)}"
        for section, i, route in routes(r.props):
            for d in as_list(dig(route, "route")):
                subset = dig(d, "destination", "subset")
                host = dig(d, "destination", "host")
                if not isinstance(subset, str) or not isinstance(host, str) or ns == "<unknown>":
                    continue
                if subset not in defined.get(fqdn(host, ns), set()):
                    out.append(
                        f'VirtualService {vs} {route_label(section, i, route)}: subset "{subset}" of host '
                        f'"{host}" is not defined by any DestinationRule'
                    )
    return sorted(out)
