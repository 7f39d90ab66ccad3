"""Vault: KV v2, Kubernetes auth with short-lived tokens, least-privilege
policies, a database secrets engine with a rotating static role, a file
audit device and generated passwords stored as secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_vault as vault

from components.passwords import PASSWORDS, group_by_path
from components.settings import SERVICES, Secret, VaultSettings

DB_MOUNT = "claude-enhancer-db"
DB_CONNECTION = "claude-enhancer-pg"
STATIC_ROLE = "ce-app"
K8S_AUTH_PATH = "kubernetes"
__all__ = ["PASSWORDS", "Vault", "VaultArgs", "connection_url", "policy_document"]


def policy_document(kv_path: str, service: str) -> str:
    """Pure: exact-path, read-only HCL policy for one service (no globs, no sudo)."""
    paths = [
        f"{kv_path}/data/{service}/config",
        f"{kv_path}/data/shared/redis",
        f"{DB_MOUNT}/static-creds/{STATIC_ROLE}",
    ]
    return "\n".join(f'path "{p}" {{\n  capabilities = ["read"]\n}}\n' for p in paths)


def connection_url(v: VaultSettings) -> str:
    """Pure: templated PostgreSQL URL (Vault fills username/password)."""
    return f"postgresql://{{{{username}}}}:{{{{password}}}}@{v.db_host}:{v.db_port}/{v.db_name}?sslmode={v.db_sslmode}"


@dataclass
class VaultArgs:
    """Inputs of the Vault component."""

    vault: VaultSettings
    """Address, token, TTLs and database connection."""
    app_namespace: str
    """Namespace of the service accounts allowed to log in."""
    passwords: dict[str, pulumi.Output[str]]
    """Generated passwords (components.passwords.Passwords), stored in KV v2."""


def _reveal(s: Secret | None, what: str) -> str:
    if s is None:
        raise ValueError(f"Vault is enabled but the {what} is missing")
    return s.reveal()


class Vault(pulumi.ComponentResource):
    """All Vault configuration of the platform, through an explicit provider."""

    passwords: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Vault", name, None, opts)
        v = args.vault
        self.provider = vault.Provider(
            "vault",
            address=v.address,
            token=pulumi.Output.secret(_reveal(v.token, "Vault token")),
            skip_child_token=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["token"]),
        )

        def o(*deps: pulumi.Resource, secret: list[str] | None = None) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self,
                provider=self.provider,
                depends_on=list(deps),
                additional_secret_outputs=secret or [],
            )

        self.audit = vault.Audit(
            "audit-file",
            type="file",
            path="claude-enhancer-file",
            description="SOC2 audit trail of every Vault request",
            options={"file_path": v.audit_path, "log_raw": "false"},
            opts=o(),
        )
        self.kv = vault.Mount(
            "kv",
            path=v.kv_path,
            type="kv",
            options={"version": "2"},
            description="Claude Enhancer application secrets (KV v2)",
            opts=o(),
        )
        self.k8s_auth = vault.AuthBackend(
            "kubernetes-auth",
            type="kubernetes",
            path=K8S_AUTH_PATH,
            description="Kubernetes service-account login",
            opts=o(),
        )
        self.k8s_auth_config = vault.kubernetes.AuthBackendConfig(
            "kubernetes-auth-config",
            backend=self.k8s_auth.path,
            kubernetes_host=v.kubernetes_host,
            disable_local_ca_jwt=True,
            opts=o(self.k8s_auth),
        )
        self.policies: list[vault.Policy] = []
        self.roles: list[vault.kubernetes.AuthBackendRole] = []
        for svc in SERVICES:
            pol = vault.Policy(
                f"policy-{svc}",
                name=f"claude-enhancer-{svc}",
                policy=policy_document(v.kv_path, svc),
                opts=o(),
            )
            self.policies.append(pol)
            self.roles.append(
                vault.kubernetes.AuthBackendRole(
                    f"role-{svc}",
                    backend=self.k8s_auth.path,
                    role_name=f"claude-enhancer-{svc}",
                    bound_service_account_names=[svc],
                    bound_service_account_namespaces=[args.app_namespace],
                    audience="vault",
                    token_ttl=v.token_ttl,
                    token_max_ttl=v.token_max_ttl,
                    token_policies=[pol.name],
                    token_no_default_policy=True,
                    opts=o(self.k8s_auth_config),
                )
            )

        self.database = vault.database.SecretsMount(
            "database",
            path=DB_MOUNT,
            description="Dynamic/rotated PostgreSQL credentials",
            postgresqls=[
                {
                    "name": DB_CONNECTION,
                    "connection_url": connection_url(v),
                    "username": v.db_admin_user,
                    "password": pulumi.Output.secret(
                        _reveal(v.db_admin_password, "PostgreSQL admin password")
                    ),
                    "allowed_roles": [STATIC_ROLE],
                    "verify_connection": True,
                    "max_open_connections": 10,
                }
            ],
            opts=o(secret=["postgresqls"]),
        )
        self.static_role = vault.database.SecretBackendStaticRole(
            "static-role",
            backend=self.database.path,
            name=STATIC_ROLE,
            db_name=DB_CONNECTION,
            username=v.db_static_user,
            rotation_period=v.rotation_period,
            rotation_statements=[
                "ALTER USER \"{{name}}\" WITH PASSWORD '{{password}}';",
            ],
            opts=o(self.database),
        )

        self.passwords = dict(args.passwords)
        grouped = group_by_path(self.passwords)
        self.kv_secrets = [
            vault.kv.SecretV2(
                f"kv-{kv_name.replace('/', '-')}",
                mount=self.kv.path,
                name=kv_name,
                data_json=pulumi.Output.secret(cast(Any, pulumi.Output.json_dumps(values))),
                opts=o(self.kv, secret=["dataJson", "data"]),
            )
            for kv_name, values in grouped.items()
        ]
        self.register_outputs(
            {
                "kvPath": self.kv.path,
                "databaseMount": self.database.path,
                "roles": [f"claude-enhancer-{s}" for s in SERVICES],
            }
        )
