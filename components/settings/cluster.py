"""``claude-enhancer:cluster``: mode, zones, node size, pools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import POOLS, ClusterSettings, PoolSettings, SettingsError
from components.settings.read import top

DEFAULT_POOLS = {"system": 3, "app": 9, "data": 3}


def parse_cluster(raw: Mapping[str, Any]) -> ClusterSettings:
    o = top(raw, "cluster")
    mode = o.get_str("mode")
    if mode not in ("kwok", "existing"):
        raise SettingsError(f"{o.key_of('mode')}: must be 'kwok' or 'existing', got {mode!r}")
    zones_raw = o.get_list("zones", ["zone-a", "zone-b", "zone-c"])
    if not zones_raw or not all(isinstance(z, str) and z for z in zones_raw):
        raise SettingsError(f"{o.key_of('zones')}: must be a non-empty list of zone names")
    if len(set(zones_raw)) != len(zones_raw):
        raise SettingsError(f"{o.key_of('zones')}: zone names must be unique")
    node_cpu = o.get_int("nodeCpu", 16, lo=1)
    node_mem = o.get_int("nodeMemoryGi", 64, lo=1)
    pools_o = o.get_obj("pools", dict(DEFAULT_POOLS))
    if "existingNodes" in o.data:
        raise SettingsError(
            f"{o.key_of('existingNodes')}: no longer used: on an existing cluster the node groups own "
            "the nodes' pool labels and taints, which the preflight checks (docs/real-cluster.md, "
            "'Node groups'); remove it"
        )
    pools: list[PoolSettings] = []
    for name in POOLS:
        n = pools_o.get_int(name, DEFAULT_POOLS[name], lo=0)
        pools.append(PoolSettings(name, n, tainted=(name == "data")))
    pools_o.done()
    preflight = o.get_bool("preflight", True)
    o.done()
    if pools[1].nodes < 1:
        raise SettingsError(f"{pools_o.key_of('app')}: the app pool needs at least one node")
    return ClusterSettings(mode, tuple(zones_raw), node_cpu, node_mem, tuple(pools), preflight)


def cluster_mode(raw: Mapping[str, Any]) -> str:
    """``cluster.mode`` (kwok | existing), read without validating the rest of the stack."""
    return top(raw, "cluster").get_str("mode")
