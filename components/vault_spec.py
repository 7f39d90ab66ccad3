"""Pure spec builders of every Vault object the platform registers.

Both Vault back-ends (``claude-enhancer:vault.provider``) register exactly these objects:
``pulumi-vault`` through the pulumi-vault SDK classes, ``hvac`` through our dynamic provider
(components/vault_hvac.py). Props use the engine's (camelCase) input names of pulumi-vault, so
what lands in the state and what the policy pack reads is the same for both paths
(tests/unit/test_vault_parity.py compares them).

No Pulumi here: values that are secret at run time (passwords, the reviewer JWT) are passed in
and only placed; ``VaultObject.secrets`` names the props to keep secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from components.settings import SERVICES, VaultSettings

DB_MOUNT = "claude-enhancer-db"
DB_CONNECTION = "claude-enhancer-pg"
STATIC_ROLE = "ce-app"
#: KV v2 paths of the Redis application credential (what pods read) and of its rotation state;
#: the Redis rotator (rotator/, run by the CronJob of components/redis_rotation.py) writes both.
#: Not a database static role: Vault's Redis plugin cannot rotate a Redis Cluster's per-node
#: ACLs without a refusal window (docs/vault.md).
REDIS_APP_PATH = "shared/redis-app"
REDIS_STATE_PATH = "ops/redis-rotation"
#: the rotator's ServiceAccount (data namespace) and Vault role/policy.
ROTATOR_SA = "redis-rotator"
K8S_AUTH_PATH = "kubernetes"
#: the ServiceAccount whose token Vault uses for TokenReview (bound to system:auth-delegator).
REVIEWER_SA = "vault-token-reviewer"
AUDIT_DEVICE_PATH = "claude-enhancer-file"

AUDIT = "vault:index/audit:Audit"
MOUNT = "vault:index/mount:Mount"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
K8S_AUTH_CONFIG = "vault:kubernetes/authBackendConfig:AuthBackendConfig"
POLICY = "vault:index/policy:Policy"
K8S_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
DB_MOUNT_KIND = "vault:database/secretsMount:SecretsMount"
STATIC_ROLE_KIND = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
KV_SECRET = "vault:kv/secretV2:SecretV2"
#: every kind, in registration order.
KINDS: tuple[str, ...] = (
    AUDIT,
    MOUNT,
    AUTH_BACKEND,
    K8S_AUTH_CONFIG,
    POLICY,
    K8S_ROLE,
    DB_MOUNT_KIND,
    STATIC_ROLE_KIND,
    KV_SECRET,
)


@dataclass(frozen=True)
class VaultObject:
    """One Vault object: a pulumi-vault type token, a resource name and its inputs."""

    kind: str
    """pulumi-vault type token, e.g. ``vault:index/policy:Policy``."""
    name: str
    """Pulumi resource name (unique within the Vault component)."""
    props: Mapping[str, Any]
    """Inputs under pulumi-vault's engine names (camelCase)."""
    secrets: tuple[str, ...] = ()
    """Props that carry secrets (kept secret in inputs, outputs and state)."""
    depends_on: tuple[str, ...] = ()
    """Names of the objects that must exist first."""


@dataclass(frozen=True)
class VaultInputs:
    """Run-time values the specs place (Outputs in the program, plain values in tests)."""

    app_namespace: str
    """Namespace of the service accounts allowed to log in."""
    db_admin_password: Any
    """PostgreSQL admin password (secret)."""
    reviewer_jwt: Any
    """Token of the reviewer ServiceAccount (secret)."""
    kubernetes_ca_cert: Any
    """PEM of the kube-apiserver CA."""
    kv_data: Mapping[str, Any] = field(default_factory=dict)
    """KV path -> JSON document of that path's secrets (secret)."""
    data_namespace: str = "claude-enhancer-data"
    """Namespace of the Redis rotator's ServiceAccount."""


def role_name(service: str) -> str:
    """Vault role (and policy) name of one service."""
    return f"claude-enhancer-{service}"


def service_paths(kv_path: str, service: str) -> list[str]:
    """Pure: every Vault path ``service`` may read (and nothing else)."""
    return [
        f"{kv_path}/data/{service}/config",
        f"{DB_MOUNT}/static-creds/{STATIC_ROLE}",
        f"{kv_path}/data/{REDIS_APP_PATH}",
    ]


def _hcl(paths: list[str], capabilities: tuple[str, ...]) -> str:
    caps = ", ".join(f'"{c}"' for c in capabilities)
    return "\n".join(f'path "{p}" {{\n  capabilities = [{caps}]\n}}\n' for p in paths)


def policy_document(kv_path: str, service: str) -> str:
    """Pure: exact-path, read-only HCL policy for one service (no globs, no sudo)."""
    return _hcl(service_paths(kv_path, service), ("read",))


def rotator_paths(kv_path: str) -> list[str]:
    """Pure: the two KV v2 data paths the Redis rotator reads and writes (and nothing else)."""
    return [f"{kv_path}/data/{REDIS_APP_PATH}", f"{kv_path}/data/{REDIS_STATE_PATH}"]


def rotator_policy_document(kv_path: str) -> str:
    """Pure: the rotator's policy: exact paths; create/update for its check-and-set writes."""
    return _hcl(rotator_paths(kv_path), ("create", "read", "update"))


def rotator_settings_args(v: VaultSettings) -> list[str]:
    """Pure: the rotator's flags that come from the stack's Vault settings, wherever it runs
    (the CronJob of components/redis_rotation.py, ``./ce redis-rotate`` on the local platform)."""
    return [
        "--user", v.redis_static_user,
        "--vault-addr", v.address,
        "--kv-mount", v.kv_path,
        "--app-path", REDIS_APP_PATH,
        "--state-path", REDIS_STATE_PATH,
        "--period-seconds", str(v.redis_rotation_period),
        "--grace-seconds", str(v.redis_rotation_grace),
    ]  # fmt: skip


def connection_url(v: VaultSettings) -> str:
    """Pure: templated PostgreSQL URL (Vault fills username/password)."""
    return (
        f"postgresql://{{{{username}}}}:{{{{password}}}}@{v.db_host}:{v.db_port}/{v.db_name}"
        f"?sslmode={v.db_sslmode}"
    )


#: how the PostgreSQL static role sets its new password.
PG_ROTATION_STATEMENTS = ("ALTER USER \"{{name}}\" WITH PASSWORD '{{password}}';",)


def injector_annotations(v: VaultSettings, service: str) -> dict[str, str]:
    """Pure: Vault Agent injector annotations of one service's pods.

    The agent logs in with the pod's projected ``vault``-audience token (the pods do not
    automount the API token) and renders each secret into a memory volume; the app never sees
    a Kubernetes Secret. Rotated credentials are re-rendered as Vault rotates them; the Redis
    credential is a KV v2 secret (no lease), re-read every ``agent_render_interval`` seconds,
    which the rotator's grace period exceeds.
    """
    pre = "vault.hashicorp.com"
    out = {
        f"{pre}/agent-inject": "true",
        f"{pre}/role": role_name(service),
        f"{pre}/auth-path": f"auth/{K8S_AUTH_PATH}",
        f"{pre}/agent-service-account-token-volume-name": "vault-token",
        f"{pre}/agent-pre-populate-only": "false",
        f"{pre}/agent-run-as-user": "10001",
        f"{pre}/agent-run-as-group": "10001",
        f"{pre}/template-static-secret-render-interval": f"{v.agent_render_interval}s",
    }
    files = {
        "config": f"{v.kv_path}/data/{service}/config",
        "database": f"{DB_MOUNT}/static-creds/{STATIC_ROLE}",
        "redis": f"{v.kv_path}/data/{REDIS_APP_PATH}",
    }
    for fname, path in files.items():
        out[f"{pre}/agent-inject-secret-{fname}"] = path
    # the same {username, password} JSON a database static role's file has
    out[f"{pre}/agent-inject-template-redis"] = (
        f'{{{{- with secret "{files["redis"]}" -}}}}'
        '{"username":"{{ .Data.data.username }}","password":"{{ .Data.data.password }}"}'
        "{{- end }}"
    )
    return out


def vault_objects(v: VaultSettings, x: VaultInputs) -> list[VaultObject]:
    """Pure: every Vault object of the platform, in dependency order."""
    objs: list[VaultObject] = [
        VaultObject(
            AUDIT,
            "audit-file",
            {
                "type": "file",
                "path": AUDIT_DEVICE_PATH,
                "description": "SOC2 audit trail of every Vault request",
                "options": {"file_path": v.audit_path, "log_raw": "false"},
            },
        ),
        VaultObject(
            MOUNT,
            "kv",
            {
                "path": v.kv_path,
                "type": "kv",
                "options": {"version": "2"},
                "description": "Claude Enhancer application secrets (KV v2)",
            },
        ),
        VaultObject(
            AUTH_BACKEND,
            "kubernetes-auth",
            {
                "type": "kubernetes",
                "path": K8S_AUTH_PATH,
                "description": "Kubernetes service-account login",
            },
        ),
        VaultObject(
            K8S_AUTH_CONFIG,
            "kubernetes-auth-config",
            {
                "backend": K8S_AUTH_PATH,
                "kubernetesHost": v.kubernetes_host,
                "kubernetesCaCert": x.kubernetes_ca_cert,
                # TokenReview runs with the reviewer SA's token, not the logging-in pod's
                "tokenReviewerJwt": x.reviewer_jwt,
                "disableLocalCaJwt": True,
            },
            secrets=("tokenReviewerJwt",),
            depends_on=("kubernetes-auth",),
        ),
    ]
    # who logs in: each service (its app-namespace ServiceAccount) and the Redis rotator
    identities = [(svc, x.app_namespace, policy_document(v.kv_path, svc)) for svc in SERVICES]
    identities.append((ROTATOR_SA, x.data_namespace, rotator_policy_document(v.kv_path)))
    for sa, _ns, policy in identities:
        objs.append(VaultObject(POLICY, f"policy-{sa}", {"name": role_name(sa), "policy": policy}))
    for sa, ns, _policy in identities:
        objs.append(
            VaultObject(
                K8S_ROLE,
                f"role-{sa}",
                {
                    "backend": K8S_AUTH_PATH,
                    "roleName": role_name(sa),
                    "boundServiceAccountNames": [sa],
                    "boundServiceAccountNamespaces": [ns],
                    "audience": "vault",
                    "tokenTtl": v.token_ttl,
                    "tokenMaxTtl": v.token_max_ttl,
                    "tokenPolicies": [role_name(sa)],
                    "tokenNoDefaultPolicy": True,
                },
                depends_on=("kubernetes-auth-config", f"policy-{sa}"),
            )
        )
    objs.append(
        VaultObject(
            DB_MOUNT_KIND,
            "database",
            {
                "path": DB_MOUNT,
                "description": "Rotated PostgreSQL credentials",
                "postgresqls": [
                    {
                        "name": DB_CONNECTION,
                        "connectionUrl": connection_url(v),
                        "username": v.db_admin_user,
                        "password": x.db_admin_password,
                        "allowedRoles": [STATIC_ROLE],
                        "verifyConnection": True,
                        "maxOpenConnections": 10,
                    }
                ],
            },
            secrets=("postgresqls",),
        )
    )
    objs.append(
        VaultObject(
            STATIC_ROLE_KIND,
            "static-role",
            {
                "backend": DB_MOUNT,
                "name": STATIC_ROLE,
                "dbName": DB_CONNECTION,
                "username": v.db_static_user,
                "rotationPeriod": v.rotation_period,
                "rotationStatements": list(PG_ROTATION_STATEMENTS),
            },
            depends_on=("database",),
        )
    )
    for kv_name, doc in x.kv_data.items():
        objs.append(
            VaultObject(
                KV_SECRET,
                f"kv-{kv_name.replace('/', '-')}",
                {"mount": v.kv_path, "name": kv_name, "dataJson": doc},
                secrets=("dataJson",),
                depends_on=("kv",),
            )
        )
    # Everything after the audit device: every request is audited (SOC2), and Vault fails closed
    # (500) on requests while a just-enabled device is still setting up its salt.
    audit = objs[0].name
    return [
        o
        if o.kind == AUDIT
        else replace(o, depends_on=tuple(dict.fromkeys((audit, *o.depends_on))))
        for o in objs
    ]
