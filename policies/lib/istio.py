"""VirtualService helpers shared by the routing, subset and rollout rules.

How a VirtualService carries a rollout phase (Istio semantics: the first route
whose match fits a request takes it):

* a *split* route sends traffic by weight: it has several destinations, or it
  is a catch-all (no ``match``) with one destination, which then takes 100 %;
  the canary weight of the phase is the canary subset's share of a split;
* a *pinned* route has a ``match`` (that not every request satisfies: ``prefix: /`` is
  a catch-all, i.e. a split of 100 %) and a single destination: every matching
  request goes to that subset (the program's cookie-sticky routes). It carries
  no weight of its own; it is only consistent while the split still sends
  traffic to the subset it pins to (a sticky route to canary at 0 % would keep
  users on a rolled-back version).

Every split route that reaches the canary's host must carry the same canary
weight; a later route cannot quietly carry another phase.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Route:
    """One route as the rollout rules see it."""

    label: str
    #: (host, subset, weight) per destination; weight None when unset.
    destinations: tuple[tuple[Any, Any, int | None], ...]
    pinned: bool

    def share(self, host: Any, subset: str) -> int:
        """Percent of this route's traffic that goes to ``host``/``subset``."""
        if len(self.destinations) == 1:
            h, s, w = self.destinations[0]
            return (100 if w is None else w) if (h, s) == (host, subset) else 0
        return sum(w or 0 for h, s, w in self.destinations if (h, s) == (host, subset))

    def hosts(self) -> set[Any]:
        return {h for h, _, _ in self.destinations}


def parse_routes(props: Any) -> list[Route] | Any:
    """Every route with its destinations, or UNKNOWN when any part is unknown."""
    out: list[Route] = []
    for section, i, route in routes(props):
        dests = dig(route, "route")
        match = dig(route, "match")
        if dests is UNKNOWN or match is UNKNOWN:
            return UNKNOWN
        parsed = []
        for d in as_list(dests):
            host, subset, weight = dig(d, "destination", "host"), dig(d, "destination", "subset"), dig(d, "weight")
            if UNKNOWN in (host, subset, weight):
                return UNKNOWN
            parsed.append((host, subset, as_int(weight)))
        if not parsed:
            continue  # redirects, direct responses, delegates: no traffic split
        # a match that every request satisfies pins nothing: the route takes all the traffic
        pinned = len(parsed) == 1 and bool(as_list(match)) and not matches_everything(match)
        out.append(Route(route_label(section, i, route), tuple(parsed), pinned))
    return out


#: StringMatch values every URI satisfies
_ANY_URI = {("prefix", "/"), ("prefix", ""), ("regex", ".*"), ("regex", "^.*$"), ("regex", "/.*"), ("regex", "^/.*")}
#: HTTPMatchRequest keys that do not narrow which requests match
_NEUTRAL = {"name", "ignoreUriCase"}


def matches_everything(match: Any) -> bool:
    """An http/tls/tcp ``match`` list that every request satisfies (entries are ORed)."""
    for entry in as_list(match):
        if not isinstance(entry, dict):
            continue
        keys = {k for k, v in entry.items() if v not in (None, {}, [])} - _NEUTRAL
        uri = entry.get("uri")
        if keys <= {"uri"} and (
            "uri" not in keys or (isinstance(uri, dict) and all((k, v) in _ANY_URI for k, v in uri.items()))
        ):
            return True
    return False


def host_splits(props: Any) -> list[tuple[str, list[Any]]]:
    """Weighted routes whose destinations are different hosts (label, hosts): a split the phase
    rules cannot read, since a rollout splits one host's stable/canary subsets."""
    parsed = parse_routes(props)
    if parsed is UNKNOWN:
        return []
    return [(r.label, sorted(r.hosts(), key=str)) for r in parsed if len(r.destinations) > 1 and len(r.hosts()) > 1]


def canary_hosts(parsed: list[Route], canary_subset: str) -> set[Any]:
    return {h for r in parsed for h, s, _ in r.destinations if s == canary_subset}


def canary_weights(props: Any, canary_subset: str) -> dict[str, int] | Any | None:
    """Canary share of every split route that reaches the canary's host (route label -> percent).

    None if no route names ``canary_subset`` (or none splits its host);
    UNKNOWN if it cannot be known during preview.
    """
    parsed = parse_routes(props)
    if parsed is UNKNOWN:
        return UNKNOWN
    hosts = canary_hosts(parsed, canary_subset)
    if not hosts:
        return None
    out = {r.label: sum(r.share(h, canary_subset) for h in hosts) for r in parsed if not r.pinned and r.hosts() & hosts}
    return out or None


def pinned_conflicts(props: Any, canary_subset: str) -> list[str]:
    """Pinned routes to a subset of the canary's host that a split route gives 0 %."""
    parsed = parse_routes(props)
    if parsed is UNKNOWN:
        return []
    hosts = canary_hosts(parsed, canary_subset)
    splits = [r for r in parsed if not r.pinned and r.hosts() & hosts]
    out: list[str] = []
    for r in parsed:
        if not r.pinned:
            continue
        host, subset, _ = r.destinations[0]
        if host not in hosts or not isinstance(subset, str):
            continue
        relevant = [split for split in splits if host in split.hosts()]
        # Splits that disagree with each other are reported on their own; here the subset
        # must be dead in every split for the pin to contradict the phase.
        if relevant and all(split.share(host, subset) == 0 for split in relevant):
            names = ", ".join(split.label for split in relevant)
            out.append(
                f'{r.label} pins matching requests to subset "{subset}", which {names} gives 0%; '
                "a pinned (sticky) route may only keep users on a subset that still takes traffic"
            )
    return out


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


def is_cluster_local(host: str) -> bool:
    """A Kubernetes service host as Istio reads it: a short name, or a name under the cluster domain.

    Istio expands only dot-free short names; any other name is taken as a fully qualified
    host, i.e. a ServiceEntry's (external) host unless it ends in the cluster domain.
    """
    return "." not in host or host.endswith((".cluster.local", ".svc"))
