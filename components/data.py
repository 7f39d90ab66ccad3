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
from components.settings import DataSettings, ResourceSettings, Secret
from rotator.redis_acl import initial_acl_text, sha

PG_NAME = "claude-enhancer-pg"
REDIS_NAME = "claude-enhancer-redis"
REDIS_SECRET = "claude-enhancer-redis-auth"
#: the durable ACL every Redis node loads at start (redis-operator spec.acl: key user.acl);
#: the Redis rotator (components/redis_rotation.py) keeps it in step with the live nodes.
REDIS_ACL_SECRET = "claude-enhancer-redis-acl"
PG_BACKUP_SECRET = "claude-enhancer-pg-backup-s3"
#: cloudnative-pg v1.27.1 ports (pkg/management/url): instance manager status, metrics.
CNPG_STATUS_PORT = 8000
CNPG_METRICS_PORT = 9187
#: redis-operator v0.16.0: redis, cluster bus (port + 10000), exporter sidecar.
REDIS_PORT, REDIS_BUS_PORT, REDIS_EXPORTER_PORT = 6379, 16379, 9121
PG_PORT = 5432
#: Istio ambient: ztunnel carries mesh traffic as HBONE to this port on the destination pod.
HBONE_PORT = 15008
PG_PODS = {"cnpg.io/cluster": PG_NAME}
REDIS_PODS = {"redis_setup_type": "cluster"}
#: Kubernetes ServiceAccount of the CNPG instance pods (the operator names it after the Cluster).
PG_SERVICE_ACCOUNT = PG_NAME

#: keys of the backup Secret, as the Cluster's s3Credentials reference them.
PG_BACKUP_KEYS = ("ACCESS_KEY_ID", "ACCESS_SECRET_KEY")
#: redis-operator v0.16.0 renders its exporter sidecar without any securityContext
#: (k8sutils/statefulset.go enableRedisMonitoring), so Pod Security "restricted" rejects every
#: Redis pod that has it: the exporter stays off until an operator version can harden it.
REDIS_EXPORTER_ENABLED = False
#: the exporter's resources (redisExporter.resources), counted only when it is enabled.
REDIS_EXPORTER_RESOURCES = ResourceSettings(50, 64, 200, 256)
#: what "restricted" requires of every container the redis-operator renders from our spec.
REDIS_CONTAINER_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def cpu_quantity(millis: int) -> str:
    """Canonical Kubernetes quantity for CPU millicores: ``1000`` -> ``"1"``, ``500`` -> ``"500m"``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(mebibytes: int) -> str:
    """Canonical Kubernetes quantity for MiB: ``4096`` -> ``"4Gi"``, ``3814`` -> ``"3814Mi"``."""
    return f"{mebibytes // 1024}Gi" if mebibytes % 1024 == 0 else f"{mebibytes}Mi"


def k8s_resources(r: ResourceSettings) -> dict[str, dict[str, str]]:
    """Pure: a container ``resources`` block, in canonical quantities.

    Operators write the quantities of our CRs back in canonical form (the redis-operator
    rewrites "4096Mi" as "4Gi"); any other spelling then conflicts with them on every apply.
    """
    return {
        "requests": {
            "cpu": cpu_quantity(r.request_cpu_m),
            "memory": memory_quantity(r.request_memory_mi),
        },
        "limits": {
            "cpu": cpu_quantity(r.limit_cpu_m),
            "memory": memory_quantity(r.limit_memory_mi),
        },
    }


def data_containers(data: DataSettings) -> list[ResourceSettings]:
    """Pure: the resources of every container the data tier's operators create from our CRs
    (CNPG: each instance container gets spec.resources; redis-operator: redis + exporter)."""
    exporter = [REDIS_EXPORTER_RESOURCES] if REDIS_EXPORTER_ENABLED else []
    return [data.postgres.resources, data.redis.resources, *exporter]


def s3_credentials(data: DataSettings) -> dict[str, Any]:
    """Pure: the Cluster's ``s3Credentials`` (a Secret this component creates, or IAM)."""
    if data.postgres.backup_credentials == "iamRole":
        return {"inheritFromIAMRole": True}
    key_id, secret_key = PG_BACKUP_KEYS
    return {
        "accessKeyId": {"name": PG_BACKUP_SECRET, "key": key_id},
        "secretAccessKey": {"name": PG_BACKUP_SECRET, "key": secret_key},
    }


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
        "resources": k8s_resources(pg.resources),
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
                "s3Credentials": s3_credentials(data),
                "wal": {"compression": "gzip"},
                "data": {"compression": "gzip"},
            },
        },
    }


def redis_spec(data: DataSettings, acl: bool = False) -> dict[str, Any]:
    """Pure: RedisCluster spec (masters + replicas on the data pool); ``acl``: the nodes load
    their users from the rotator's ACL Secret (stacks with Vault)."""
    r = data.redis
    extra: dict[str, Any] = {"acl": {"secret": {"secretName": REDIS_ACL_SECRET}}} if acl else {}
    return {
        "clusterSize": r.masters,
        "clusterVersion": "v7",
        "persistenceEnabled": True,
        "podSecurityContext": {
            "runAsUser": 1000,
            "runAsNonRoot": True,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # its own identity: the data tier's AuthorizationPolicy admits Redis peers by it
        "serviceAccountName": REDIS_NAME,
        "kubernetesConfig": {
            "image": r.image,
            "imagePullPolicy": "IfNotPresent",
            "resources": k8s_resources(r.resources),
            "redisSecret": {"name": REDIS_SECRET, "key": "password"},
        },
        "redisLeader": _redis_role(r.masters, "leader"),
        "redisFollower": _redis_role(r.replicas, "follower"),
        "redisExporter": {
            "enabled": REDIS_EXPORTER_ENABLED,
            "image": "quay.io/opstree/redis-exporter:v1.44.0",
            "resources": k8s_resources(REDIS_EXPORTER_RESOURCES),
        },
        "storage": {
            "volumeClaimTemplate": {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{r.storage_gi}Gi"}},
                }
            }
        },
        "priorityClassName": "ce-data-critical",
        **extra,
    }


def _redis_role(replicas: int, role: str) -> dict[str, Any]:
    """Leader/follower placement: data pool only, one pod per node, spread over zones."""
    app = f"{REDIS_NAME}-{role}"
    return {
        "replicas": replicas,
        "securityContext": dict(REDIS_CONTAINER_SECURITY),
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
    redis_app_user: str | None = None
    """The Redis application user the rotator rotates (stacks with Vault); None: no ACL."""
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
        pg = args.data.postgres
        self.backup_secret: k8s.core.v1.Secret | None = None
        if pg.backup_credentials == "secret":
            self.backup_secret = _secret_resource(
                self,
                "postgres-backup-s3",
                meta(PG_BACKUP_SECRET, ns, labels=labels(PG_NAME, "backup")),
                dict(zip(PG_BACKUP_KEYS, (pg.backup_access_key_id, pg.backup_secret_access_key))),
                deps,
            )
        self.postgres = k8s.apiextensions.CustomResource(
            "postgres",
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=meta(PG_NAME, ns, labels=labels(PG_NAME, "database")),
            spec=postgres_spec(args.data, args.database, args.owner),
            opts=child(self, deps + ([self.backup_secret] if self.backup_secret else [])),
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
        self.redis_service_account = k8s.core.v1.ServiceAccount(
            "redis-sa",
            metadata=meta(REDIS_NAME, ns, labels=labels(REDIS_NAME, "cache")),
            automount_service_account_token=False,
            opts=child(self, deps),
        )
        redis_deps: list[pulumi.Resource] = [*deps, self.redis_secret, self.redis_service_account]
        self.redis_acl: k8s.core.v1.Secret | None = None
        if args.redis_app_user:
            # created once: from then on the rotator owns its content (hashes only)
            user = args.redis_app_user
            acl = pulumi.Output.secret(args.redis_password).apply(
                lambda pw: initial_acl_text(sha(pw), user)
            )
            self.redis_acl = k8s.core.v1.Secret(
                "redis-acl",
                metadata=meta(REDIS_ACL_SECRET, ns, labels=labels(REDIS_NAME, "cache")),
                type="Opaque",
                data=secret_data({"user.acl": acl}),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=deps,
                    additional_secret_outputs=["stringData", "data"],
                    ignore_changes=["data", "stringData"],
                ),
            )
            redis_deps.append(self.redis_acl)
        self.redis = k8s.apiextensions.CustomResource(
            "redis",
            api_version="redis.redis.opstreelabs.in/v1beta2",
            kind="RedisCluster",
            metadata=meta(REDIS_NAME, ns, labels=labels(REDIS_NAME, "cache")),
            spec=redis_spec(args.data, acl=self.redis_acl is not None),
            opts=child(self, redis_deps),
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


def _secret_resource(
    parent: pulumi.Resource,
    name: str,
    metadata: dict[str, Any],
    values: dict[str, Secret | None],
    deps: list[pulumi.Resource],
) -> k8s.core.v1.Secret:
    """An Opaque Secret from secret settings: the values only ever exist as secret Outputs."""
    missing = sorted(k for k, v in values.items() if v is None)
    if missing:
        raise ValueError(f"{metadata['name']}: no value for {missing}")
    return k8s.core.v1.Secret(
        name,
        metadata=metadata,
        type="Opaque",
        data=secret_data(
            {k: pulumi.Output.secret(v.reveal()) for k, v in values.items() if v is not None}
        ),
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=deps, additional_secret_outputs=["stringData", "data"]
        ),
    )
