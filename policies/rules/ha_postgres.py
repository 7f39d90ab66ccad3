"""CloudNativePG clusters run at least 3 instances (primary + 2 streaming replicas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, dig
from policies.lib.rule import Rule, crd_kind

RULE = Rule(
    name="ha-postgres-instances",
    description="CloudNativePG Cluster must run at least 3 instances (primary + 2 replicas) for failover.",
    severity="high",
    frameworks={
        "SOC2": ["A1.2", "A1.3"],
        "ISO27001": ["A.8.14", "A.5.30"],
    },
    remediation="Set spec.instances: 3 (or more) on the postgresql.cnpg.io Cluster.",
    resource_types=("kubernetes:postgresql.cnpg.io/v1:Cluster",),
    config_schema={
        "minInstances": {"type": "integer", "default": 3, "description": "Minimum PostgreSQL instances."},
    },
    tags=("ha", "postgres"),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "postgresql.cnpg.io", ["Cluster"]) is None:
        return []
    minimum = as_int(RULE.resolve_config(config).get("minInstances")) or 3
    raw = dig(props, "spec", "instances")
    if raw is UNKNOWN:
        return []
    n = as_int(raw) if raw is not None else 1  # CNPG default is 1
    if n is None or n < minimum:
        shown = raw if raw is not None else "unset (defaults to 1)"
        return [f"spec.instances is {shown}; must be at least {minimum}"]
    return []
