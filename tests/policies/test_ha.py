"""ha-postgres-instances, ha-redis-cluster, prod-min-replicas."""

from __future__ import annotations

import pytest
from policy_fixtures import DEPLOYMENT, UNKNOWN_NUMBER, deployment

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import ha_postgres, ha_redis, prod_replicas

PG = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RC = "kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisCluster"


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        (3, []),
        (5, []),
        (2, ["spec.instances is 2; must be at least 3"]),
        (None, ["spec.instances is unset (defaults to 1); must be at least 3"]),
        (UNKNOWN_NUMBER, []),
    ],
)
def test_postgres(instances: object, expected: list[str]) -> None:
    spec: dict = {"storage": {"size": "100Gi"}, "minSyncReplicas": 1, "maxSyncReplicas": 1}
    if instances is not None:
        spec["instances"] = instances
    assert ha_postgres.check(PG, plain({"spec": spec}), {}) == expected


def test_postgres_config_and_missing() -> None:
    sync = {"minSyncReplicas": 1, "maxSyncReplicas": 1}
    assert ha_postgres.check(
        PG, plain({"spec": {"instances": 3, **sync}}), {"minInstances": 5}
    ) == ["spec.instances is 3; must be at least 5"]
    assert ha_postgres.check(PG, {}, {}) == [
        "spec.instances is unset (defaults to 1); must be at least 3",
        "synchronous replication is off (spec.minSyncReplicas is unset, spec.postgresql.synchronous.number is "
        "unset); need at least 1 synchronous standby so a failover loses no committed transaction",
    ]
    assert ha_postgres.check("kubernetes:apps/v1:Deployment", {}, {}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"clusterSize": 3}, []),
        ({"clusterSize": 3, "redisFollower": {"replicas": 3}}, []),
        ({"clusterSize": 2}, ["spec.clusterSize is 2; must be at least 3 leaders"]),
        (
            {"clusterSize": 3, "redisFollower": {"replicas": 0}},
            ["0 followers for 3 leaders; need at least 1 per leader"],
        ),
        (
            {"clusterSize": 3, "redisLeader": {"replicas": 1}},
            ["spec.redisLeader.replicas is 1; must be at least 3 leaders"],
        ),
        ({}, ["spec.clusterSize is unset; must be at least 3"]),
        ({"clusterSize": UNKNOWN_NUMBER}, []),
        ({"clusterSize": 3, "redisFollower": {"replicas": UNKNOWN_NUMBER}}, []),
    ],
)
def test_redis(spec: dict, expected: list[str]) -> None:
    assert ha_redis.check(RC, plain({"spec": spec}), {}) == expected


def test_redis_config() -> None:
    assert ha_redis.check(
        RC, plain({"spec": {"clusterSize": 3}}), {"minFollowersPerLeader": 2}
    ) == ["3 followers for 3 leaders; need at least 2 per leader"]


PROD = {"environment": "prod"}
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def dep(replicas: object = 3, **kw: object) -> StackResource:
    d = deployment(**kw)  # type: ignore[arg-type]
    if replicas is None:
        del d["spec"]["replicas"]
    else:
        d["spec"]["replicas"] = replicas
    return StackResource(DEPLOYMENT, "d", plain(d))


def hpa(min_replicas: object, target: str = "app", ns: str = "claude-enhancer") -> StackResource:
    spec: dict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "maxReplicas": 6,
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return StackResource(
        HPA, "h", plain({"metadata": {"name": "h", "namespace": ns}, "spec": spec})
    )


def test_prod_replicas() -> None:
    assert prod_replicas.check([dep(3)], PROD) == []
    assert prod_replicas.check([dep(1)], PROD) == [
        "Deployment claude-enhancer/app runs 1 replica(s) per spec.replicas; production needs at least 2"
    ]
    assert prod_replicas.check([dep(1)], {"environment": "dev"}) == []
    assert prod_replicas.check([dep(1)], {}) == []
    assert prod_replicas.check([dep(None)], PROD) == [
        "Deployment claude-enhancer/app runs 1 replica(s) per spec.replicas (unset, defaults to 1); "
        "production needs at least 2"
    ]
    ss = StackResource(
        "kubernetes:apps/v1:StatefulSet", "s", plain(deployment(name="db", replicas=1))
    )
    assert prod_replicas.check([ss], {"environment": "production"}) == [
        "StatefulSet claude-enhancer/db runs 1 replica(s) per spec.replicas; production needs at least 2"
    ]


def test_prod_replicas_hpa() -> None:
    assert prod_replicas.check([dep(None), hpa(3)], PROD) == []
    assert prod_replicas.check([dep(None), hpa(1)], PROD) == [
        "Deployment claude-enhancer/app runs 1 replica(s) per HPA minReplicas; production needs at least 2"
    ]
    assert prod_replicas.check([dep(None), hpa(None)], PROD) == [
        "Deployment claude-enhancer/app runs 1 replica(s) per HPA minReplicas; production needs at least 2"
    ]
    assert prod_replicas.check([dep(None), hpa(3, ns="other")], PROD) != []


def test_prod_replicas_exempt_and_unknown() -> None:
    assert prod_replicas.check([dep(0)], PROD) == []  # scaled to zero
    canary = dep(1, labels={"app": "claude-enhancer", "track": "canary"})
    assert prod_replicas.check([canary], PROD) == []
    assert prod_replicas.check([canary], {**PROD, "exemptLabels": {}}) != []
    assert prod_replicas.check([dep(UNKNOWN_NUMBER)], PROD) == []
    assert prod_replicas.check([dep(None), hpa(UNKNOWN_NUMBER)], PROD) == []
    assert prod_replicas.check([StackResource(DEPLOYMENT, "d", {})], PROD) == [
        "Deployment default/<unnamed> runs 1 replica(s) per spec.replicas (unset, defaults to 1); "
        "production needs at least 2"
    ]
