"""Vault: KV v2, Kubernetes auth with short-lived tokens (TokenReview through a reviewer
ServiceAccount bound to ``system:auth-delegator``), least-privilege policies, a database secrets
engine whose static role rotates the PostgreSQL password, a file audit device, the generated
passwords stored as secrets, and the policy and role of the Redis rotator (the Redis password is a
KV v2 secret the rotator writes: components/redis_rotation.py).

The objects come from the pure builders in components/vault_spec.py; ``vault.provider`` picks
who writes them: the pulumi-vault resource plugin, or our hvac dynamic provider
(components/vault_hvac.py). Both register the same objects.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import vault_hvac
from components.common import labels, meta
from components.passwords import PASSWORDS, group_by_path
from components.settings import SERVICES, Secret, VaultSettings
from components.vault_spec import (
    AUDIT,
    AUTH_BACKEND,
    DB_MOUNT,
    DB_MOUNT_KIND,
    K8S_AUTH_CONFIG,
    K8S_ROLE,
    KV_SECRET,
    MOUNT,
    POLICY,
    REVIEWER_SA,
    STATIC_ROLE,
    STATIC_ROLE_KIND,
    VaultInputs,
    VaultObject,
    connection_url,
    policy_document,
    role_name,
    vault_objects,
)

__all__ = [
    "DB_MOUNT",
    "PASSWORDS",
    "STATIC_ROLE",
    "Vault",
    "VaultArgs",
    "connection_url",
    "policy_document",
]

#: extra outputs pulumi-vault reports in plaintext unless told otherwise.
_SDK_SECRET_OUTPUTS: dict[str, tuple[str, ...]] = {KV_SECRET: ("data",)}


@dataclass
class VaultArgs:
    """Inputs of the Vault component."""

    vault: VaultSettings
    """Address, token, TTLs, database and Redis connections, the back-end."""
    app_namespace: str
    """Namespace of the service accounts allowed to log in (and of the reviewer account)."""
    data_namespace: str
    """Namespace of the Redis rotator's ServiceAccount (it logs in too)."""
    passwords: dict[str, pulumi.Output[str]]
    """Generated passwords (components.passwords.Passwords), stored in KV v2."""
    depends_on: list[pulumi.Resource] | None = None
    """The app namespace (the reviewer ServiceAccount lives there)."""
    database_depends_on: list[pulumi.Resource] | None = None
    """What the database mount's connection needs first (the CNPG Cluster): the mount verifies
    its connection when created, so on a first ``up`` it must not race the Cluster."""


def _reveal(s: Secret | None, what: str) -> str:
    if s is None:
        raise ValueError(f"Vault is enabled but the {what} is missing")
    return s.reveal()


def _snake(key: str) -> str:
    return vault_hvac.snake(key)


def _sdk_class(kind: str) -> Any:
    import pulumi_vault as vault  # only this path needs the pulumi-vault SDK (and its plugin)

    return {
        AUDIT: vault.Audit,
        MOUNT: vault.Mount,
        AUTH_BACKEND: vault.AuthBackend,
        K8S_AUTH_CONFIG: vault.kubernetes.AuthBackendConfig,
        POLICY: vault.Policy,
        K8S_ROLE: vault.kubernetes.AuthBackendRole,
        DB_MOUNT_KIND: vault.database.SecretsMount,
        STATIC_ROLE_KIND: vault.database.SecretBackendStaticRole,
        KV_SECRET: vault.kv.SecretV2,
    }[kind]


def _decoded(data: pulumi.Output[Any], key: str) -> pulumi.Output[str]:
    return data.apply(lambda d: base64.b64decode((d or {}).get(key, "")).decode())


class Vault(pulumi.ComponentResource):
    """All Vault configuration of the platform, through an explicit connection."""

    passwords: dict[str, pulumi.Output[str]]
    resources: dict[str, pulumi.CustomResource]
    """Vault objects by resource name (``policy-api``, ``kv-api-config``, ...)."""

    def __init__(
        self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Vault", name, None, opts)
        v = args.vault
        ns = args.app_namespace
        token = pulumi.Output.secret(_reveal(v.token, "Vault token"))
        k8s_deps = list(args.depends_on or [])

        # Vault calls TokenReview with this account's token (system:auth-delegator may review
        # tokens, nothing else); the logging-in pods need no RBAC at all.
        self.reviewer = k8s.core.v1.ServiceAccount(
            "vault-token-reviewer",
            metadata=meta(REVIEWER_SA, ns, labels=labels(REVIEWER_SA, "identity")),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=k8s_deps),
        )
        self.reviewer_binding = k8s.rbac.v1.ClusterRoleBinding(
            "vault-token-reviewer-auth-delegator",
            metadata=meta(f"claude-enhancer-{REVIEWER_SA}", labels=labels(REVIEWER_SA, "identity")),
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            subjects=[{"kind": "ServiceAccount", "name": REVIEWER_SA, "namespace": ns}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.reviewer]),
        )
        # Vault runs outside the cluster: it needs a long-lived reviewer token and the API CA
        # (the token controller fills both in; pulumi-kubernetes waits for it).
        self.reviewer_token = k8s.core.v1.Secret(
            "vault-token-reviewer-token",
            metadata=meta(
                f"{REVIEWER_SA}-token",
                ns,
                labels=labels(REVIEWER_SA, "identity"),
                annotations={"kubernetes.io/service-account.name": REVIEWER_SA},
            ),
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.reviewer],
                additional_secret_outputs=["data", "stringData"],
            ),
        )
        data = self.reviewer_token.data
        db_pw = pulumi.Output.secret(_reveal(v.db_admin_password, "PostgreSQL admin password"))
        self.passwords = dict(args.passwords)
        kv_data: dict[str, pulumi.Output[str]] = {
            path: pulumi.Output.secret(cast(Any, pulumi.Output.json_dumps(values)))
            for path, values in group_by_path(self.passwords).items()
        }
        inputs = VaultInputs(
            app_namespace=ns,
            db_admin_password=db_pw,
            data_namespace=args.data_namespace,
            reviewer_jwt=pulumi.Output.secret(_decoded(data, "token")),
            kubernetes_ca_cert=pulumi.Output.unsecret(_decoded(data, "ca.crt")),
            kv_data=kv_data,
        )

        provider: pulumi.ProviderResource | None = None
        if v.provider == "pulumi-vault":
            import pulumi_vault as vault

            provider = vault.Provider(
                "vault",
                address=v.address,
                token=token,
                skip_child_token=False,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["token"]),
            )
        self.provider = provider

        self.resources = {}
        for obj in vault_objects(v, inputs):
            deps = [self.resources[d] for d in obj.depends_on]
            deps_k8s: list[pulumi.Resource] = []
            if obj.kind == K8S_AUTH_CONFIG:
                deps_k8s = [self.reviewer_token, self.reviewer_binding]
            elif obj.kind == DB_MOUNT_KIND:
                deps_k8s = list(args.database_depends_on or [])
            o = pulumi.ResourceOptions(parent=self, depends_on=[*deps, *deps_k8s])
            if provider is None:
                self.resources[obj.name] = vault_hvac.register(obj, v.address, token, o)
            else:
                self.resources[obj.name] = self._sdk_register(obj, provider, o)
        self.register_outputs(
            {
                "kvPath": v.kv_path,
                "databaseMount": DB_MOUNT,
                "roles": [role_name(s) for s in SERVICES],
            }
        )

    @staticmethod
    def _sdk_register(
        obj: VaultObject, provider: pulumi.ProviderResource, opts: pulumi.ResourceOptions
    ) -> pulumi.CustomResource:
        kwargs = {
            _snake(k): (pulumi.Output.secret(val) if k in obj.secrets else val)
            for k, val in obj.props.items()
        }
        secret_outs = [*obj.secrets, *_SDK_SECRET_OUTPUTS.get(obj.kind, ())]
        extra = pulumi.ResourceOptions(provider=provider, additional_secret_outputs=secret_outs)
        res: pulumi.CustomResource = _sdk_class(obj.kind)(
            obj.name, **kwargs, opts=pulumi.ResourceOptions.merge(opts, extra)
        )
        return res
