"""Data tier: CloudNativePG PostgreSQL 15 cluster + OT redis-operator RedisCluster."""

from __future__ import annotations

import json
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
from components.settings import DataSettings, ResourceSettings, Secret, VaultSettings
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
#: Istio sidecar annotations that keep a port out of the Envoy redirect (the CNI plugin reads
#: them from the pod; istio.io "Traffic management: sidecar annotations"). Traffic on an
#: excluded port is neither mTLS-wrapped nor checked by PeerAuthentication/AuthorizationPolicy:
#: a NetworkPolicy is its only guard.
EXCLUDE_INBOUND = "traffic.sidecar.istio.io/excludeInboundPorts"
EXCLUDE_OUTBOUND = "traffic.sidecar.istio.io/excludeOutboundPorts"
#: redis-operator v0.16.0 copies the RedisCluster's own metadata.annotations onto the
#: StatefulSets' pod templates (k8sutils/labels.go generateStatefulSetsAnots, used by
#: k8sutils/statefulset.go generateStatefulSetsDef and k8sutils/redis-cluster.go:270); the spec
#: has no pod-annotation field. The cluster bus (port + 10000, k8sutils/redis-cluster.go:355)
#: runs pod IP to pod IP and no Service carries it, so through the sidecar it would leave as
#: passthrough plaintext that the peer's STRICT inbound resets, and CLUSTER MEET would record
#: the sidecar's 127.0.0.6 (OT-CONTAINER-KIT/redis-operator#1039, #501, #1056): both
#: directions of the bus are kept out of the sidecar, as upstream recommends.
REDIS_SIDECAR_ANNOTATIONS = {EXCLUDE_INBOUND: "16379", EXCLUDE_OUTBOUND: "16379"}
#: CloudNativePG 1.27.1: the operator calls https://<pod IP>:8000/pg/status with no Service in
#: front (pkg/management/postgres/webserver/client/remote/instance.go:303), so through a
#: sidecar it is passthrough plaintext that STRICT rejects: 8000 is excluded inbound (it is
#: TLS of its own). 9187 (metrics) too: Prometheus scrapes it by pod IP with no Service
#: (the PodMonitor CNPG's docs/src/monitoring.md recommends). Set through
#: spec.inheritedMetadata, which the operator copies onto every instance pod when it creates
#: it (internal/controller/cluster_create.go:1371 InheritAnnotations).
PG_SIDECAR_ANNOTATIONS = {EXCLUDE_INBOUND: "8000,9187"}
#: pulumi-kubernetes (provider/pkg/metadata/overrides.go): wait until the Cluster reports
#: condition Ready (CNPG api/v1/cluster_types.go:1055 ConditionClusterReady) before anything
#: that depends on it is created; a JSON list of expressions waits for all of them.
WAIT_FOR = "pulumi.com/waitFor"
PG_READY = "condition=Ready"


def pg_wait_for(role: str | None) -> str:
    """Pure: the Cluster's waitFor: Ready, and the managed role reconciled (CNPG reports it in
    status.managedRolesStatus.byStatus.reconciled, api/v1/cluster_types.go:729,752; Ready alone
    may come before the instance manager has created the role)."""
    if role is None:
        return PG_READY
    return json.dumps(
        [PG_READY, f"jsonpath={{.status.managedRolesStatus.byStatus.reconciled[0]}}={role}"]
    )


#: the Secret CNPG reads the Vault role's password from (spec.managed.roles[].passwordSecret:
#: kubernetes.io/basic-auth; cnpg.io/reload makes the instance manager re-read it on change,
#: CNPG docs/src/declarative_role_management.md "Password management").
PG_VAULT_ROLE_SECRET = "claude-enhancer-pg-vault"
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


def vault_targets_cluster(v: VaultSettings, namespace: str) -> bool:
    """Pure: whether Vault's database connection goes to this component's CNPG Cluster (its
    ``-rw`` Service), not to a PostgreSQL of its own (the local platform's)."""
    rw = f"{PG_NAME}-rw"
    names = (
        rw,
        f"{rw}.{namespace}",
        f"{rw}.{namespace}.svc",
        f"{rw}.{namespace}.svc.cluster.local",
    )
    return v.db_host.rstrip(".") in names


def vault_managed_role(user: str) -> dict[str, Any]:
    """Pure: the role Vault's database engine logs in as (CNPG spec.managed.roles).

    CNPG 1.27 leaves the ``postgres`` superuser without a password (enableSuperuserAccess is
    false by default, docs/src/security.md) and recommends declarative roles instead of
    superuser access. Vault's PostgreSQL plugin only runs our rotation statement (ALTER USER
    on the application owner), which CREATEROLE allows on PostgreSQL 15 for any non-superuser
    role; it needs no superuser.
    """
    return {
        "name": user,
        "ensure": "present",
        "comment": "Vault database secrets engine (rotates the application owner's password)",
        "login": True,
        "superuser": False,
        "createrole": True,
        "createdb": False,
        "replication": False,
        "inherit": True,
        "connectionLimit": 10,
        "passwordSecret": {"name": PG_VAULT_ROLE_SECRET},
    }


def postgres_spec(
    data: DataSettings, db_name: str, owner: str, vault_user: str | None = None
) -> dict[str, Any]:
    """Pure: CNPG Cluster spec (3 instances, sync replication, data pool, anti-affinity);
    ``vault_user``: the managed role Vault's database engine logs in as (stacks with Vault)."""
    pg = data.postgres
    managed = {"managed": {"roles": [vault_managed_role(vault_user)]}} if vault_user else {}
    return {
        "instances": pg.instances,
        "imageName": pg.image,
        "primaryUpdateStrategy": "unsupervised",
        "minSyncReplicas": pg.min_sync_replicas,
        "maxSyncReplicas": pg.max_sync_replicas,
        "enablePDB": True,
        "priorityClassName": "ce-data-critical",
        "inheritedMetadata": {
            "labels": labels(PG_NAME, "database"),
            "annotations": dict(PG_SIDECAR_ANNOTATIONS),
        },
        "postgresql": {
            "parameters": {
                "max_connections": "500",
                "shared_buffers": "2GB",
                "wal_keep_size": "1GB",
                "log_min_duration_statement": "500",
            }
        },
        "bootstrap": {"initdb": {"database": db_name, "owner": owner}},
        "storage": {
            "size": f"{pg.storage_gi}Gi",
            **({"storageClass": data.storage_class} if data.storage_class else {}),
        },
        "resources": k8s_resources(pg.resources),
        "affinity": {
            "enablePodAntiAffinity": True,
            "podAntiAffinityType": "required",
            "topologyKey": ZONE_LABEL,
            "nodeSelector": {POOL_LABEL: "data"},
            "tolerations": [pool_toleration("data")],
        },
        # no enablePodMonitor: deprecated in 1.27 (api/v1/cluster_types.go:2155); the
        # Monitoring component declares the PodMonitor itself, as docs/src/monitoring.md says
        "backup": {
            "retentionPolicy": pg.backup_retention,
            "barmanObjectStore": {
                "destinationPath": pg.backup_destination,
                "s3Credentials": s3_credentials(data),
                "wal": {"compression": "gzip"},
                "data": {"compression": "gzip"},
            },
        },
        **managed,
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
                    **({"storageClassName": data.storage_class} if data.storage_class else {}),
                }
            }
        },
        "priorityClassName": "ce-data-critical",
        **extra,
    }


#: The operator's own PodDisruptionBudget (redisLeader/redisFollower.pdb). redis-operator
#: v0.16.0 reconciles the PDB named ``<cluster>-<role>`` on every pass and DELETES it when
#: ``pdb.enabled`` is unset (k8sutils/poddisruption.go ReconcileRedisPodDisruptionBudget), so a
#: PDB of our own under that name is deleted behind our back: the operator must own it. It
#: builds both roles' PDBs from the LEADER's settings (the same file, generatePodDisruptionBudgetDef
#: is passed cr.Spec.RedisLeader.PodDisruptionBudget), so both roles carry the same values.
REDIS_PDB = {"enabled": True, "maxUnavailable": 1}


def _redis_role(replicas: int, role: str) -> dict[str, Any]:
    """Leader/follower placement: data pool only, one pod per node, spread over zones."""
    app = f"{REDIS_NAME}-{role}"
    return {
        "replicas": replicas,
        "pdb": dict(REDIS_PDB),
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
    vault_user: str | None = None
    """The PostgreSQL role Vault's database engine logs in as (a CNPG managed role); None:
    no Vault."""
    vault_password: pulumi.Input[str] | None = None
    """Its password (secret config ``postgresAdminPassword``)."""
    wait_ready: bool = False
    """Wait for the Cluster's Ready condition (something connects to it right after)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespace etc."""


class Data(pulumi.ComponentResource):
    """CNPG Cluster (+ Vault's managed role) + ScheduledBackup, RedisCluster + auth Secret."""

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
        pg_deps = deps + ([self.backup_secret] if self.backup_secret else [])
        self.vault_role_secret: k8s.core.v1.Secret | None = None
        if args.vault_user is not None:
            if args.vault_password is None:
                raise ValueError(f"{PG_VAULT_ROLE_SECRET}: no password for {args.vault_user}")
            self.vault_role_secret = k8s.core.v1.Secret(
                "postgres-vault-role",
                metadata=meta(
                    PG_VAULT_ROLE_SECRET,
                    ns,
                    labels={**labels(PG_NAME, "credentials"), "cnpg.io/reload": "true"},
                ),
                type="kubernetes.io/basic-auth",
                data=secret_data(
                    {
                        "username": args.vault_user,
                        "password": pulumi.Output.secret(args.vault_password),
                    }
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=deps, additional_secret_outputs=["stringData", "data"]
                ),
            )
            pg_deps.append(self.vault_role_secret)
        self.postgres = k8s.apiextensions.CustomResource(
            "postgres",
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=meta(
                PG_NAME,
                ns,
                labels=labels(PG_NAME, "database"),
                annotations={WAIT_FOR: pg_wait_for(args.vault_user)} if args.wait_ready else None,
            ),
            spec=postgres_spec(args.data, args.database, args.owner, args.vault_user),
            opts=child(self, pg_deps),
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
            metadata=meta(
                REDIS_NAME,
                ns,
                labels=labels(REDIS_NAME, "cache"),
                annotations=dict(REDIS_SIDECAR_ANNOTATIONS),
            ),
            spec=redis_spec(args.data, acl=self.redis_acl is not None),
            opts=child(self, redis_deps),
        )
        # the Redis PodDisruptionBudgets are the operator's (REDIS_PDB): see _redis_role
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
