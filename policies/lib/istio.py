"""VirtualService helpers shared by the routing, subset and rollout rules."""

from __future__ import annotations

from typing import Any

from .props import UNKNOWN, as_int, as_list, dig

VS_KINDS = ("VirtualService",)
ROUTE_SECTIONS = ("http", "tls", "tcp")


def routes(props: Any) -> list[tuple[str, int, Any]]:
    """(section, index, route) for every http/tls/tcp route of a VirtualService."""
    out: list[tuple[str, int, Any]] = []
    for section in ROUTE_SECTIONS:
        for i, route in enumerate(as_list(dig(props, "spec", section))):
            out.append((section, i, route))
    return out


def route_label(section: str, index: int, route: Any) -> str:
    name = dig(route, "name")
    return f"{section}[{index}]" + (f' ("{name}")' if isinstance(name, str) and name else "")


def canary_weight(props: Any, canary_subset: str) -> int | Any | None:
    """Weight of the canary subset in the first route that names it.

    None if no route sends to ``canary_subset``; UNKNOWN if it cannot be known.
    A single destination without a weight carries 100.
    """
    for _, _, route in routes(props):
        dests = dig(route, "route")
        if dests is UNKNOWN:
            return UNKNOWN
        dests = as_list(dests)
        for d in dests:
            if dig(d, "destination", "subset") == canary_subset:
                w = dig(d, "weight")
                if w is UNKNOWN:
                    return UNKNOWN
                if w is None:
                    return 100 if len(dests) == 1 else 0
                return as_int(w)
    return None


def fqdn(host: str, namespace: str) -> str:
    """Kubernetes short service names resolve in the resource's namespace."""
    if "*" in host:
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc.cluster.local"
    if len(parts) == 2:
        return f"{host}.svc.cluster.local"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host
