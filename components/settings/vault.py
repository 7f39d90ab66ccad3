"""``claude-enhancer:vault`` plus the Vault token and admin passwords (secrets): the
PostgreSQL and Redis credential rotation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.settings.model import (
    PG_PASSWORD_ENV,
    PG_PASSWORD_KEY,
    REDIS_PASSWORD_ENV,
    REDIS_PASSWORD_KEY,
    ROTATOR_INTERVAL_SECONDS,
    VAULT_PROVIDERS,
    VAULT_TOKEN_ENV,
    VAULT_TOKEN_KEY,
    SettingsError,
    VaultSettings,
)
from components.settings.read import DIGEST_RE, NAME_RE, optional_secret, secret, top
from contract.configreader import ConfigObject

#: roles CloudNativePG reserves for itself: it refuses to manage them and, with superuser access
#: off (its default), ``postgres`` has no password (docs/src/declarative_role_management.md).
PG_RESERVED_ROLES = ("postgres", "streaming_replica", "cnpg_pooler_pgbouncer")


def _vault_enabled(o: ConfigObject) -> bool:
    return o.get_bool("enabled", True)


def vault_enabled(raw: Mapping[str, Any]) -> bool:
    """Whether the stack registers the Vault component (read without needing its secrets)."""
    return _vault_enabled(top(raw, "vault"))


def parse_vault(raw: Mapping[str, Any], env: Mapping[str, str]) -> VaultSettings:
    o = top(raw, "vault")
    address = o.get_str("address")
    if not re.match(r"^https?://", address):
        raise SettingsError(f"{o.key_of('address')}: must be an http(s) URL, got {address!r}")
    ttl = o.get_int("tokenTtlSeconds", 900, lo=60)
    max_ttl = o.get_int("tokenMaxTtlSeconds", 3600, lo=60)
    if max_ttl < ttl:
        raise SettingsError(f"{o.key_of('tokenMaxTtlSeconds')}: must be >= tokenTtlSeconds")
    db = o.get_obj("postgres")
    rd = o.get_obj("redis", {})
    enabled = _vault_enabled(o)
    provider = o.get_str("provider", "pulumi-vault")
    if provider not in VAULT_PROVIDERS:
        raise SettingsError(
            f"{o.key_of('provider')}: must be one of {', '.join(VAULT_PROVIDERS)}, got {provider!r}"
        )
    vs = VaultSettings(
        enabled=enabled,
        address=address,
        token=None,
        kv_path=o.get_str("kvPath", "claude-enhancer", pattern=NAME_RE),
        kubernetes_host=o.get_str("kubernetesHost", "https://kubernetes.default.svc"),
        audit_path=o.get_str("auditPath", "stdout"),
        token_ttl=ttl,
        token_max_ttl=max_ttl,
        db_host=db.get_str("host"),
        db_port=db.get_int("port", 5432, lo=1, hi=65535),
        db_name=db.get_str("database", "claude_enhancer"),
        db_admin_user=db.get_str("adminUser", "vault"),
        db_admin_password=None,
        db_sslmode=db.get_str("sslmode", "disable"),
        db_static_user=db.get_str("staticUser", "ce_app"),
        rotation_period=db.get_int("rotationPeriodSeconds", 86400, lo=300),
        provider=provider,
        redis_host=rd.get_str("host", VaultSettings.redis_host),
        redis_port=rd.get_int("port", 6379, lo=1, hi=65535),
        redis_tls=rd.get_bool("tls", False),
        redis_admin_user=rd.get_str("adminUser", "default"),
        redis_static_user=rd.get_str("staticUser", "ce_app"),
        redis_rotation_period=rd.get_int("rotationPeriodSeconds", 86400, lo=300),
        redis_rotation_grace=rd.get_int("rotationGraceSeconds", 900, lo=30),
        agent_render_interval=o.get_int("agentRenderIntervalSeconds", 300, lo=10),
        redis_rotator_digest=(
            rd.get_str("rotatorImageDigest", pattern=DIGEST_RE)
            if "rotatorImageDigest" in rd.data
            else None
        ),
    )
    # clients re-read the published password within one render interval: the old one must
    # outlive that; and a rotation must end (the CronJob's next run) before the next is due
    if vs.redis_rotation_grace < vs.agent_render_interval + 30:
        raise SettingsError(
            f"{rd.key_of('rotationGraceSeconds')}: must be >= agentRenderIntervalSeconds + 30 "
            f"({vs.agent_render_interval + 30}): clients may hold the old password that long"
        )
    if vs.redis_rotation_period < vs.redis_rotation_grace + ROTATOR_INTERVAL_SECONDS:
        raise SettingsError(
            f"{rd.key_of('rotationPeriodSeconds')}: must be >= rotationGraceSeconds + "
            f"{ROTATOR_INTERVAL_SECONDS} (the rotator's schedule)"
        )
    if vs.db_admin_user in PG_RESERVED_ROLES:
        raise SettingsError(
            f"{db.key_of('adminUser')}: {vs.db_admin_user!r} is reserved by CloudNativePG (no "
            "password by default, never a managed role); use a role of its own, e.g. 'vault'"
        )
    db.done()
    rd.done()
    o.done()
    if not enabled:
        return vs
    token = secret(raw, env, VAULT_TOKEN_KEY, VAULT_TOKEN_ENV, "Vault token")
    pw = secret(raw, env, PG_PASSWORD_KEY, PG_PASSWORD_ENV, "PostgreSQL admin password")
    redis_pw = optional_secret(raw, env, REDIS_PASSWORD_KEY, REDIS_PASSWORD_ENV)
    return VaultSettings(
        **{
            **vs.__dict__,
            "token": token,
            "db_admin_password": pw,
            "redis_admin_password": redis_pw,
        }
    )
