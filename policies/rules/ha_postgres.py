"""CloudNativePG clusters run at least 3 instances (primary + 2 streaming replicas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, dig
from policies.lib.rule import Rule, crd_kind, is_patch

RULE = Rule(
    name="ha-postgres-instances",
    description="CloudNativePG Cluster must run at least 3 instances (primary + 2 replicas) with synchronous "
    "replication to at least one standby, so a failover loses no committed data.",
    severity="high",
    frameworks={
        "SOC2": ["A1.2", "A1.3"],
        "ISO27001": ["A.8.14", "A.5.30"],
    },
    remediation="Set spec.instances: 3 (or more) and spec.minSyncReplicas/maxSyncReplicas >= 1 (or "
    "spec.postgresql.synchronous: {method: any, number: 1}) on the postgresql.cnpg.io Cluster.",
    resource_types=("kubernetes:postgresql.cnpg.io/v1:Cluster",),
    config_schema={
        "minInstances": {"type": "integer", "default": 3, "description": "Minimum PostgreSQL instances."},
        "minSyncReplicas": {
            "type": "integer",
            "default": 1,
            "description": "Minimum synchronous standbys (0 accepts asynchronous replication).",
        },
    },
    tags=("ha", "postgres"),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "postgresql.cnpg.io", ["Cluster"]) is None:
        return []
    judge_missing = not is_patch(resource_type)
    cfg = RULE.resolve_config(config)
    minimum = as_int(cfg.get("minInstances")) or 3
    min_sync = as_int(cfg.get("minSyncReplicas"))
    min_sync = 1 if min_sync is None else min_sync
    out: list[str] = []
    raw = dig(props, "spec", "instances")
    if raw is not UNKNOWN and (judge_missing or raw is not None):
        n = as_int(raw) if raw is not None else 1  # CNPG default is 1
        if n is None or n < minimum:
            shown = raw if raw is not None else "unset (defaults to 1)"
            out.append(f"spec.instances is {shown}; must be at least {minimum}")
    # Synchronous replication: the legacy min/maxSyncReplicas pair or spec.postgresql.synchronous (CNPG 1.24+).
    legacy_min, legacy_max = dig(props, "spec", "minSyncReplicas"), dig(props, "spec", "maxSyncReplicas")
    sync = dig(props, "spec", "postgresql", "synchronous")
    if UNKNOWN in (legacy_min, legacy_max, sync) or (not judge_missing and legacy_min is legacy_max is sync is None):
        return out
    number = as_int(dig(sync, "number")) if isinstance(sync, dict) else None
    effective = max(as_int(legacy_min) or 0, number or 0)
    if effective < min_sync:
        shown_min = legacy_min if legacy_min is not None else "unset"
        shown_number = number if number is not None else "unset"
        out.append(
            f"synchronous replication is off (spec.minSyncReplicas is {shown_min}, "
            f"spec.postgresql.synchronous.number is {shown_number}); need at least "
            f"{min_sync} synchronous standby so a failover loses no committed transaction"
        )
    elif sync is None and (as_int(legacy_max) or 0) < effective:
        out.append(f"spec.maxSyncReplicas is {legacy_max}; must be at least spec.minSyncReplicas ({legacy_min})")
    durability = dig(sync, "dataDurability") if isinstance(sync, dict) else None
    if isinstance(durability, str) and durability.lower() == "preferred":
        # CNPG: "preferred" drops standbys from synchronous_standby_names when they are not streaming,
        # so commits silently continue asynchronously (CNPG docs, "Synchronous Replication")
        out.append(
            "spec.postgresql.synchronous.dataDurability is preferred: replication falls back to asynchronous "
            "when standbys are gone; use required (the default)"
        )
    instances = as_int(raw) if raw is not None else None
    if instances is not None and effective >= instances:
        out.append(
            f"{effective} synchronous standbys need more than {instances} instances: writes stop when one "
            "instance is down"
        )
    return out
