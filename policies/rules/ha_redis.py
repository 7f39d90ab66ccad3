"""Redis (OT operator) clusters run 3+ masters with at least one replica each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, dig
from policies.lib.rule import Rule, crd_kind, is_patch

RULE = Rule(
    name="ha-redis-cluster",
    description="Redis must be a RedisCluster with clusterSize >= 3 leaders and at least one follower per leader "
    "(3 masters + 3 replicas); a standalone Redis has no failover.",
    severity="high",
    frameworks={
        "SOC2": ["A1.2"],
        "ISO27001": ["A.8.14"],
    },
    remediation="Set spec.clusterSize: 3 and leave redisLeader/redisFollower.replicas unset or >= clusterSize.",
    resource_types=(
        "kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisCluster",
        "kubernetes:redis.redis.opstreelabs.in/v1beta2:Redis",
        "kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisReplication",
        "kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisSentinel",
    ),
    config_schema={
        "minLeaders": {"type": "integer", "default": 3, "description": "Minimum Redis masters."},
        "minFollowersPerLeader": {"type": "integer", "default": 1, "description": "Replicas per master."},
    },
    tags=("ha", "redis"),
)


#: the operator's other kinds, sized by spec.clusterSize: minimum and why
SIZED_KINDS: dict[str, tuple[int, str]] = {
    "RedisReplication": (3, "need a primary and at least 2 replicas so one can be promoted while another serves"),
    "RedisSentinel": (3, "need at least 3 sentinels for a failover quorum"),
}


def _check_patch(props: Any, config: Mapping[str, Any]) -> list[str]:
    """A patch is judged only on the sizes it sets."""
    cfg = RULE.resolve_config(config)
    min_leaders = as_int(cfg.get("minLeaders")) or 3
    out: list[str] = []
    for path in (("spec", "clusterSize"), ("spec", "redisLeader", "replicas")):
        n = as_int(dig(props, *path))
        if n is not None and n < min_leaders:
            out.append(f"{'.'.join(path)} is {n}; must be at least {min_leaders} leaders")
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    kind = crd_kind(resource_type, "redis.redis.opstreelabs.in", ["RedisCluster", "Redis", *SIZED_KINDS])
    if kind is None:
        return []
    if kind == "Redis":
        return ["standalone Redis has no replica and no failover; use a RedisCluster (3 masters + 3 replicas)"]
    if kind in SIZED_KINDS:
        raw = dig(props, "spec", "clusterSize")
        if raw is UNKNOWN or (raw is None and is_patch(resource_type)):
            return []
        n = as_int(raw)
        if n is None or n < SIZED_KINDS[kind][0]:
            return [f"{kind} spec.clusterSize is {raw if raw is not None else 'unset'}; {SIZED_KINDS[kind][1]}"]
        return []
    if is_patch(resource_type):
        return _check_patch(props, config)
    cfg = RULE.resolve_config(config)
    min_leaders = as_int(cfg.get("minLeaders")) or 3
    per_leader = as_int(cfg.get("minFollowersPerLeader"))
    per_leader = 1 if per_leader is None else per_leader
    raw_size = dig(props, "spec", "clusterSize")
    raw_leaders = dig(props, "spec", "redisLeader", "replicas")
    raw_followers = dig(props, "spec", "redisFollower", "replicas")
    if UNKNOWN in (raw_size, raw_leaders, raw_followers):
        return []
    size = as_int(raw_size)
    if size is None:
        return [f"spec.clusterSize is {raw_size if raw_size is not None else 'unset'}; must be at least {min_leaders}"]
    leaders = as_int(raw_leaders) if raw_leaders is not None else size
    followers = as_int(raw_followers) if raw_followers is not None else size
    out: list[str] = []
    if leaders is None or leaders < min_leaders:
        field = "spec.redisLeader.replicas" if raw_leaders is not None else "spec.clusterSize"
        out.append(f"{field} is {leaders}; must be at least {min_leaders} leaders")
    if leaders is not None and (followers is None or followers < leaders * per_leader):
        out.append(f"{followers} followers for {leaders} leaders; need at least {per_leader} per leader")
    return out
