"""Data tier: CNPG PostgreSQL 15 and Redis cluster."""

from __future__ import annotations

import base64

from tests.unit.conftest import is_secret, program_capture, unsecret


def b64(data: dict[str, str]) -> dict[str, str]:
    """Decode a Secret's base64 ``data``."""
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_cnpg_cluster() -> None:
    (pg,) = program_capture().crs("Cluster")
    assert pg.inputs["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = pg.inputs["spec"]
    assert spec["instances"] == 3
    assert spec["imageName"].split(":")[1].startswith("15")
    assert spec["minSyncReplicas"] >= 1 and spec["maxSyncReplicas"] >= spec["minSyncReplicas"]
    aff = spec["affinity"]
    assert aff["enablePodAntiAffinity"] is True
    assert aff["podAntiAffinityType"] == "required"
    assert aff["topologyKey"] == "topology.kubernetes.io/zone"
    assert aff["nodeSelector"] == {"node.claude-enhancer.io/pool": "data"}
    assert aff["tolerations"][0]["value"] == "data"
    assert spec["enablePDB"] is True
    assert pg.inputs["metadata"]["namespace"] == "claude-enhancer-data"


def test_scheduled_backup_daily() -> None:
    (b,) = program_capture().crs("ScheduledBackup")
    assert b.inputs["spec"]["cluster"] == {"name": "claude-enhancer-pg"}
    _sec, _minute, hour, dom, month, dow = b.inputs["spec"]["schedule"].split()
    assert (dom, month, dow) == ("*", "*", "*") and hour.isdigit()


def test_redis_cluster_3_plus_3_on_data_pool() -> None:
    (r,) = program_capture().crs("RedisCluster")
    assert r.inputs["apiVersion"] == "redis.redis.opstreelabs.in/v1beta2"
    spec = r.inputs["spec"]
    assert spec["clusterSize"] == 3
    assert spec["redisLeader"]["replicas"] == 3
    assert spec["redisFollower"]["replicas"] == 3
    for role in ("redisLeader", "redisFollower"):
        assert "nodeSelector" not in spec  # not in the RedisCluster v1beta2 schema
        assert spec[role]["nodeSelector"] == {"node.claude-enhancer.io/pool": "data"}
        assert spec[role]["tolerations"][0]["value"] == "data"
        anti = spec[role]["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
            "kubernetes.io/hostname"
        )
    assert spec["kubernetesConfig"]["redisSecret"] == {
        "name": "claude-enhancer-redis-auth",
        "key": "password",
    }
    assert spec["podSecurityContext"]["runAsNonRoot"] is True


def test_redis_pdbs_and_secret() -> None:
    cap = program_capture()
    # issue 23: the PDBs are the redis-operator's own (it deletes one of ours by that name);
    # both roles still get maxUnavailable 1
    (r,) = cap.crs("RedisCluster")
    for role in ("redisLeader", "redisFollower"):
        assert r.inputs["spec"][role]["pdb"] == {"enabled": True, "maxUnavailable": 1}
    (secret,) = [
        s
        for s in cap.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == "claude-enhancer-redis-auth"
    ]
    assert secret.inputs["metadata"]["namespace"] == "claude-enhancer-data"
    assert is_secret(secret.inputs["data"])
    assert len(b64(unsecret(secret.inputs["data"]))["password"]) == 32


def test_cr_resources_are_canonical_quantities() -> None:
    # found with the real redis-operator v0.16.0: it writes "4096Mi" back as "4Gi" and "1000m"
    # as "1", and every later apply of the RedisCluster then conflicted with it
    from components.data import k8s_resources
    from components.settings import ResourceSettings

    assert k8s_resources(ResourceSettings(500, 2048, 1000, 4096)) == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "4Gi"},
    }
    assert k8s_resources(ResourceSettings(1800, 2670, 1950, 3814)) == {
        "requests": {"cpu": "1800m", "memory": "2670Mi"},
        "limits": {"cpu": "1950m", "memory": "3814Mi"},
    }
