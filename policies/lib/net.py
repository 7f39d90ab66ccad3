"""Address and selector arithmetic shared by the NetworkPolicy and AuthorizationPolicy rules.

"Everything" is judged by what a set of peers covers together, not by its spelling:
``0.0.0.0/0 except 169.254.169.254/32``, ``0.0.0.0/1 + 128.0.0.0/1`` and ``0.0.0.0/0`` all
reach (nearly) every address; a namespace selector with no positive condition matches every
namespace however it is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from .props import as_dict, as_list, dig

#: a set of blocks covering more than this share of an address family is "any address"
BROAD_SHARE = 0.5
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: Any) -> Network | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def covered_share(blocks: Iterable[tuple[Any, Iterable[Any]]]) -> float:
    """Largest share of an address family (IPv4 or IPv6) that ``(cidr, except list)`` blocks cover together."""
    nets: list[Network] = []
    for cidr, excepts in blocks:
        net = _net(cidr)
        if net is None:
            continue
        parts: list[Network] = [net]
        for ex in excepts:
            hole = _net(ex)
            if hole is None or hole.version != net.version:
                continue
            nxt: list[Network] = []
            for p in parts:
                if hole.subnet_of(p):  # type: ignore[arg-type]
                    nxt.extend(p.address_exclude(hole))  # type: ignore[arg-type]
                elif not p.subnet_of(hole):  # type: ignore[arg-type]
                    nxt.append(p)
            parts = nxt
        nets += parts
    best = 0.0
    for version, bits in ((4, 32), (6, 128)):
        same = [n for n in nets if n.version == version]
        total = 0
        for merged in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
            total += merged.num_addresses
        best = max(best, total / 2**bits)
    return best


def is_broad_share(share: float) -> bool:
    return share > BROAD_SHARE


#: a label every namespace carries (Kubernetes >= 1.21 sets it on every namespace)
NAME_LABEL = "kubernetes.io/metadata.name"


def selects_nearly_all(selector: Any) -> bool:
    """A LabelSelector with no positive condition: {} , only NotIn/DoesNotExist, or Exists on the name label."""
    if not isinstance(selector, dict):
        return False
    if as_dict(dig(selector, "matchLabels")):
        return False
    for expr in as_list(dig(selector, "matchExpressions")):
        op, key = dig(expr, "operator"), dig(expr, "key")
        if op in ("NotIn", "DoesNotExist"):
            continue
        if op == "Exists" and key == NAME_LABEL:
            continue
        return False
    return True
