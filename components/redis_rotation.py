"""The Redis rotator in the cluster (issue 12): a CronJob running ``python -m rotator`` every
few minutes, with its own ServiceAccount.

Why a rotator and not Vault's Redis plugin: docs/vault.md. The CronJob reaches every node's pod
IP (which ``CLUSTER SHARDS`` returns), logs in to Vault with a short-lived projected token of
its own ServiceAccount (policy: the two KV paths of rotator.redis_acl), and keeps the operator's
``spec.acl`` Secret in step through the API server; its Role may read and patch that one
Secret only. Rotation period and grace come from stack config (``vault.redis``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.common import POOL_LABEL, child, labels, meta, pool_toleration
from components.data import REDIS_ACL_SECRET, REDIS_SECRET, k8s_resources
from components.settings import (
    ROTATOR_SCHEDULE,
    DataSettings,
    ResourceSettings,
    VaultSettings,
)
from components.vault_spec import (
    K8S_AUTH_PATH,
    ROTATOR_SA,
    role_name,
    rotator_settings_args,
)

ROTATOR_NAME = "claude-enhancer-redis-rotator"
#: the rotator image's release (its code is rotator/ of this repository).
ROTATOR_VERSION = "1.0.0"
ROTATOR_RESOURCES = ResourceSettings(50, 64, 200, 128)
ROTATOR_PODS = {"app.kubernetes.io/name": ROTATOR_SA}
VAULT_TOKEN_DIR = "/var/run/secrets/vault"
KUBE_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: a run that cannot finish in this long gives way to the next one (both passwords stay valid).
RUN_DEADLINE_SECONDS = 240


def rotator_image(registry: str, digest: str | None) -> str:
    """Pure: the rotator's image, pinned by tag and, when configured, by digest."""
    return f"{registry}/redis-rotator:{ROTATOR_VERSION}" + (f"@{digest}" if digest else "")


def rotator_args(v: VaultSettings, data: DataSettings, namespace: str) -> list[str]:
    """Pure: the CronJob's command line (no secret: those come from env and token files)."""
    return [
        "python", "-m", "rotator",
        "--seed", f"{v.redis_host}:{v.redis_port}",
        "--nodes", str(data.redis.masters + data.redis.replicas),
        "--admin-user", v.redis_admin_user,
        *(["--tls"] if v.redis_tls else []),
        "--vault-role", role_name(ROTATOR_SA),
        "--vault-auth-path", K8S_AUTH_PATH,
        "--vault-jwt-file", f"{VAULT_TOKEN_DIR}/token",
        "--acl-secret", f"{namespace}/{REDIS_ACL_SECRET}",
        "--kube-token-dir", KUBE_TOKEN_DIR,
        *rotator_settings_args(v),
    ]  # fmt: skip


def cronjob_spec(
    v: VaultSettings, data: DataSettings, namespace: str, image: str
) -> dict[str, Any]:
    """Pure: the CronJob: one run at a time, each bounded, restricted pod on the data pool."""
    pod_labels = {**labels(ROTATOR_SA, "credential-rotation"), **ROTATOR_PODS}
    tokens = [
        # Vault's Kubernetes auth (role audience "vault"), and the API server (the Secret)
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "token"}},
    ]
    kube = [
        {"serviceAccountToken": {"expirationSeconds": 600, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]
    pod = {
        "metadata": {"labels": pod_labels},
        "spec": {
            "serviceAccountName": ROTATOR_SA,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "nodeSelector": {POOL_LABEL: "data"},
            "tolerations": [pool_toleration("data")],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "rotator",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": rotator_args(v, data, namespace),
                    "env": [
                        {
                            "name": "REDIS_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": REDIS_SECRET, "key": "password"}
                            },
                        }
                    ],
                    "resources": k8s_resources(ROTATOR_RESOURCES),
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [
                        {"name": "vault-token", "mountPath": VAULT_TOKEN_DIR, "readOnly": True},
                        {"name": "kube-api", "mountPath": KUBE_TOKEN_DIR, "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "vault-token", "projected": {"sources": tokens}},
                {"name": "kube-api", "projected": {"sources": kube}},
            ],
        },
    }
    return {
        "schedule": ROTATOR_SCHEDULE,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": RUN_DEADLINE_SECONDS,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": RUN_DEADLINE_SECONDS,
                "template": pod,
            }
        },
    }


@dataclass
class RedisRotationArgs:
    """Inputs of the RedisRotation component."""

    vault: VaultSettings
    """Vault address, KV mount, the Redis seed, user, rotation period and grace."""
    data: DataSettings
    """Redis topology (the node count every run checks)."""
    namespace: str
    """Data namespace (the Redis cluster, its Secrets, the rotator)."""
    image: str
    """The rotator's image."""
    depends_on: list[pulumi.Resource] | None = None
    """The data tier (its ACL Secret and password Secret)."""


class RedisRotation(pulumi.ComponentResource):
    """ServiceAccount, a Role on the ACL Secret only, its binding, and the CronJob."""

    def __init__(
        self, name: str, args: RedisRotationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:RedisRotation", name, None, opts)
        ns, deps = args.namespace, list(args.depends_on or [])
        lbl = labels(ROTATOR_SA, "credential-rotation")
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta(ROTATOR_SA, ns, labels=lbl),
            automount_service_account_token=False,
            opts=child(self, deps),
        )
        self.role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=meta(ROTATOR_SA, ns, labels=lbl),
            rules=[
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [REDIS_ACL_SECRET],
                    "verbs": ["get", "patch"],
                }
            ],
            opts=child(self, deps),
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-rolebinding",
            metadata=meta(ROTATOR_SA, ns, labels=lbl),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROTATOR_SA},
            subjects=[{"kind": "ServiceAccount", "name": ROTATOR_SA, "namespace": ns}],
            opts=child(self, [self.role, self.service_account]),
        )
        self.cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=meta(ROTATOR_NAME, ns, labels=lbl),
            spec=cronjob_spec(args.vault, args.data, ns, args.image),
            opts=child(self, [*deps, self.role_binding]),
        )
        self.register_outputs({"cronJob": ROTATOR_NAME, "schedule": ROTATOR_SCHEDULE})
