"""Data tier: CloudNativePG PostgreSQL 15 cluster + OT redis-operator RedisCluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.common import (
    POOL_LABEL,
    ZONE_LABEL,
    child,
    labels,
    meta,
    pool_toleration,
    secret_data,
)
from components.settings import DataSettings

PG_NAME = "claude-enhancer-pg"
REDIS_NAME = "claude-enhancer-redis"
REDIS_SECRET = "claude-enhancer-redis-auth"
PG_BACKUP_SECRET = "claude-enhancer-pg-backup-s3"


def postgres_spec(data: DataSettings, db_name: str, owner: str) -> dict[str, Any]:
    """Pure: CNPG Cluster spec (3 instances, sync replication, data pool, anti-affinity)."""
    pg = data.postgres
    return {
        "instances": pg.instances,
        "imageName": pg.image,
        "primaryUpdateStrategy": "unsupervised",
        "minSyncReplicas": pg.min_sync_replicas,
        "maxSyncReplicas": pg.max_sync_replicas,
        "enablePDB": True,
        "priorityClassName": "ce-data-critical",
        "inheritedMetadata": {"labels": labels(PG_NAME, "database")},
        "postgresql": {
            "parameters": {
                "max_connections": "500",
                "shared_buffers": "2GB",
                "wal_keep_size": "1GB",
                "log_min_duration_statement": "500",
            }
        },
        "bootstrap": {"initdb": {"database": db_name, "owner": owner}},
        "storage": {"size": f"{pg.storage_gi}Gi"},
        "resources": {
            "requests": {"cpu": "2", "memory": "8Gi"},
            "limits": {"cpu": "4", "memory": "12Gi"},
        },
        "affinity": {
            "enablePodAntiAffinity": True,
            "podAntiAffinityType": "required",
            "topologyKey": ZONE_LABEL,
            "nodeSelector": {POOL_LABEL: "data"},
            "tolerations": [pool_toleration("data")],
        },
        "monitoring": {"enablePodMonitor": True},
        "backup": {
            "retentionPolicy": pg.backup_retention,
            "barmanObjectStore": {
                "destinationPath": pg.backup_destination,
                "s3Credentials": {
                    "accessKeyId": {"name": PG_BACKUP_SECRET, "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": PG_BACKUP_SECRET, "key": "ACCESS_SECRET_KEY"},
                },
                "wal": {"compression": "gzip"},
                "data": {"compression": "gzip"},
            },
        },
    }


def redis_spec(data: DataSettings) -> dict[str, Any]:
    """Pure: RedisCluster spec (masters + replicas on the data pool)."""
    r = data.redis
    return {
        "clusterSize": r.masters,
        "clusterVersion": "v7",
        "persistenceEnabled": True,
        "podSecurityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000},
        "kubernetesConfig": {
            "image": r.image,
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "requests": {"cpu": "500m", "memory": "2Gi"},
                "limits": {"cpu": "1", "memory": "4Gi"},
            },
            "redisSecret": {"name": REDIS_SECRET, "key": "password"},
        },
        "redisLeader": _redis_role(r.masters, "leader"),
        "redisFollower": _redis_role(r.replicas, "follower"),
        "redisExporter": {"enabled": True, "image": "quay.io/opstree/redis-exporter:v1.44.0"},
        "storage": {
            "volumeClaimTemplate": {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{r.storage_gi}Gi"}},
                }
            }
        },
        "priorityClassName": "ce-data-critical",
    }


def _redis_role(replicas: int, role: str) -> dict[str, Any]:
    """Leader/follower placement: data pool only, one pod per node, spread over zones."""
    app = f"{REDIS_NAME}-{role}"
    return {
        "replicas": replicas,
        "nodeSelector": {POOL_LABEL: "data"},
        "tolerations": [pool_toleration("data")],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": app}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ],
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app": app}},
                            "topologyKey": ZONE_LABEL,
                        },
                    }
                ],
            }
        },
    }


@dataclass
class DataArgs:
    """Inputs of the Data component."""

    data: DataSettings
    """PostgreSQL and Redis figures."""
    namespace: str
    """Data namespace."""
    redis_password: pulumi.Input[str]
    """Secret Output with the Redis password (from RandomPassword)."""
    database: str = "claude_enhancer"
    """Application database name."""
    owner: str = "ce_app"
    """Application database owner (Vault rotates its password)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespace etc."""


class Data(pulumi.ComponentResource):
    """CNPG Cluster + ScheduledBackup, RedisCluster + auth Secret + PDBs."""

    def __init__(
        self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Data", name, None, opts)
        ns = args.namespace
        deps = list(args.depends_on or [])
        self.postgres = k8s.apiextensions.CustomResource(
            "postgres",
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=meta(PG_NAME, ns, labels=labels(PG_NAME, "database")),
            spec=postgres_spec(args.data, args.database, args.owner),
            opts=child(self, deps),
        )
        self.backup = k8s.apiextensions.CustomResource(
            "postgres-daily-backup",
            api_version="postgresql.cnpg.io/v1",
            kind="ScheduledBackup",
            metadata=meta(f"{PG_NAME}-daily", ns, labels=labels(PG_NAME, "backup")),
            spec={
                "schedule": args.data.postgres.backup_schedule,
                "backupOwnerReference": "self",
                "immediate": True,
                "cluster": {"name": PG_NAME},
            },
            opts=child(self, [self.postgres]),
        )
        self.redis_secret = k8s.core.v1.Secret(
            "redis-auth",
            metadata=meta(REDIS_SECRET, ns, labels=labels(REDIS_NAME, "cache")),
            type="Opaque",
            data=secret_data({"password": args.redis_password}),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=deps, additional_secret_outputs=["stringData", "data"]
            ),
        )
        self.redis = k8s.apiextensions.CustomResource(
            "redis",
            api_version="redis.redis.opstreelabs.in/v1beta2",
            kind="RedisCluster",
            metadata=meta(REDIS_NAME, ns, labels=labels(REDIS_NAME, "cache")),
            spec=redis_spec(args.data),
            opts=child(self, [*deps, self.redis_secret]),
        )
        self.pdbs = [
            k8s.policy.v1.PodDisruptionBudget(
                f"redis-{role}-pdb",
                metadata=meta(f"{REDIS_NAME}-{role}", ns, labels=labels(REDIS_NAME, "cache")),
                spec={
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": {"app": f"{REDIS_NAME}-{role}", "role": role}},
                },
                opts=child(self, deps),
            )
            for role in ("leader", "follower")
        ]
        self.register_outputs({"postgresCluster": PG_NAME, "redisCluster": REDIS_NAME})
