"""``claude-enhancer:data``: the PostgreSQL and Redis clusters, their clients, the
StorageClass, and the backup credentials (secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import (
    BACKUP_ID_ENV,
    BACKUP_ID_KEY,
    BACKUP_SECRET_ENV,
    BACKUP_SECRET_KEY,
    DataClients,
    DataSettings,
    Peer,
    PostgresSettings,
    RedisSettings,
    ResourceSettings,
    SettingsError,
)
from components.settings.read import NAME_RE, resources, secret, top
from contract.configreader import ConfigObject

PG_RESOURCES = ResourceSettings(2000, 8192, 4000, 12288)
REDIS_RESOURCES = ResourceSettings(500, 2048, 1000, 4096)


def parse_data(raw: Mapping[str, Any], env: Mapping[str, str]) -> DataSettings:
    o = top(raw, "data", required=False)
    p = o.get_obj("postgres", {})
    instances = p.get_int("instances", 3, lo=1)
    min_sync = p.get_int("minSyncReplicas", 1, lo=0)
    max_sync = p.get_int("maxSyncReplicas", 1, lo=0)
    if max_sync < min_sync:
        raise SettingsError(f"{p.key_of('maxSyncReplicas')}: must be >= minSyncReplicas")
    if max_sync > instances - 1:
        raise SettingsError(
            f"{p.key_of('maxSyncReplicas')}: must be <= instances - 1 ({instances - 1}), got {max_sync}"
        )
    creds = p.get_str("backupCredentials", "secret")
    if creds not in ("secret", "iamRole"):
        raise SettingsError(
            f"{p.key_of('backupCredentials')}: must be 'secret' or 'iamRole', got {creds!r}"
        )
    pg = PostgresSettings(
        instances=instances,
        image=p.get_str("image", "ghcr.io/cloudnative-pg/postgresql:15.8"),
        storage_gi=p.get_int("storageGi", 100, lo=1),
        min_sync_replicas=min_sync,
        max_sync_replicas=max_sync,
        backup_schedule=p.get_str("backupSchedule", "0 0 2 * * *"),
        backup_destination=p.get_str("backupDestination", "s3://claude-enhancer-backups/pg"),
        backup_retention=p.get_str("backupRetention", "30d"),
        resources=resources(p.get_obj("resources", {}), PG_RESOURCES),
        backup_credentials=creds,
    )
    if not pg.image.split(":")[-1].startswith("15"):
        raise SettingsError(f"{p.key_of('image')}: must be a PostgreSQL 15 image, got {pg.image!r}")
    p.done()
    r = o.get_obj("redis", {})
    rd = RedisSettings(
        masters=r.get_int("masters", 3, lo=3),
        replicas=r.get_int("replicas", 3, lo=0),
        image=r.get_str("image", "quay.io/opstree/redis:v7.0.15"),
        storage_gi=r.get_int("storageGi", 10, lo=1),
        resources=resources(r.get_obj("resources", {}), REDIS_RESOURCES),
    )
    r.done()
    c = o.get_obj("clients", {})
    d = DataClients()
    clients = DataClients(
        cnpg_operator=parse_peer(c, "cnpgOperator", d.cnpg_operator),
        redis_operator=parse_peer(c, "redisOperator", d.redis_operator),
        vault=parse_peer(c, "vault", d.vault),
    )
    c.done()
    storage_class = o.get_str("storageClass", pattern=NAME_RE) if "storageClass" in o.data else None
    o.done()
    if creds == "secret":
        what = f"S3 credentials for {p.key_of('backupDestination')}"
        pg = PostgresSettings(
            **{
                **pg.__dict__,
                "backup_access_key_id": secret(raw, env, BACKUP_ID_KEY, BACKUP_ID_ENV, what),
                "backup_secret_access_key": secret(
                    raw, env, BACKUP_SECRET_KEY, BACKUP_SECRET_ENV, what
                ),
            }
        )
    return DataSettings(pg, rd, clients, storage_class)


def parse_peer(o: ConfigObject, name: str, default: Peer) -> Peer:
    v = o.get_str(name, f"{default.namespace}/{default.service_account}")
    ns, _, sa = v.partition("/")
    if not (NAME_RE.fullmatch(ns) and NAME_RE.fullmatch(sa)):
        raise SettingsError(f"{o.key_of(name)}: must be <namespace>/<serviceAccount>, got {v!r}")
    return Peer(ns, sa)
