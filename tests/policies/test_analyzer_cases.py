"""Adversarial cases through the analyzer service, the way the CLI runs the pack.

Every case is a small preview: Configure (schema defaults + the case's config),
Analyze for each resource, AnalyzeStack over all of them, with secrets in wire format
(see analyzer_service.py). Objects start from the program's own spec builders
(program_objects.py). Each class of gap has a compliant and a non-compliant case;
``expect`` lists every diagnostic of the rules under judgement (``rules``), as
(policy, message fragment) pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import program_objects as po
import pytest
from analyzer_service import Diagnostic, PackService, secret
from pulumi.runtime import proto

from policies.pack_config import build_config
from rollout.phases import MAX_PHASE, PHASE_WEIGHTS

ROLLOUT = "rollout-phase-step"
WEIGHTS = "istio-virtualservice-weights"
PSS = "pod-security-restricted"
AUTHZ = "authorizationpolicy-no-allow-all"
NETPOL = "networkpolicy-no-allow-all"
RBAC = "rbac-no-cluster-admin-serviceaccount"
VPOL = "vault-policy-least-privilege"
VAUDIT = "vault-audit-device"
VTTL = "vault-k8s-auth-ttl"
PG = "ha-postgres-instances"
REDIS = "ha-redis-cluster"
SECRETS = "no-plaintext-secrets"
GW = "istio-gateway-tls"
DRTLS = "istio-destinationrule-mtls"
AUTOMOUNT = "automount-serviceaccount-token"
IMAGES = "image-provenance"

CM = "kubernetes:core/v1:ConfigMap"
AUDIT = "vault:index/audit:Audit"
K8S_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
Resources = list[tuple[str, str, dict[str, Any]]]


@dataclass
class Case:
    id: str
    resources: Callable[[], Resources]
    expect: list[tuple[str, str]]
    rules: tuple[str, ...] = ()
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def judged(self) -> set[str]:
        return set(self.rules) | {p for p, _ in self.expect}


def one(rtype: str, props: dict[str, Any], name: str = "x") -> Callable[[], Resources]:
    return lambda: [(rtype, name, props)]


# --- builders for the mutations ------------------------------------------------


def vs_with_extra_split(phase: int, extra_canary: int) -> dict[str, Any]:
    """The program's VS plus a later header-matched split that carries another weight."""
    vs = po.virtual_service(phase)
    weighted = po.deep(vs["spec"]["http"][-1])
    weighted["name"] = "beta-testers"
    weighted["match"] = [{"headers": {"x-beta": {"exact": "1"}}}]
    weighted["route"][0]["weight"] = 100 - extra_canary
    weighted["route"][1]["weight"] = extra_canary
    vs["spec"]["http"].append(weighted)
    return vs


def vs_sticky_canary_at_zero() -> dict[str, Any]:
    """Phase 1's routes (sticky canary route included) but the split back at 0 %: a half rollback."""
    vs = po.virtual_service(1)
    vs["spec"]["http"][-1]["route"][0]["weight"] = 100
    vs["spec"]["http"][-1]["route"][1]["weight"] = 0
    return vs


def workload(mutate: Callable[[dict[str, Any]], None], kind: str = "Deployment") -> dict[str, Any]:
    d = po.deployment()
    mutate(d["spec"]["template"]["spec"])
    if kind == "ReplicationController":
        d["kind"] = kind
        d["apiVersion"] = "v1"
        d["spec"]["selector"] = d["spec"]["selector"]["matchLabels"]
    return d


def set_pod(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def m(spec: dict[str, Any]) -> None:
        spec["securityContext"][key] = value

    return m


def set_container(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def m(spec: dict[str, Any]) -> None:
        spec["containers"][0]["securityContext"][key] = value

    return m


def add_volume(volume: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def m(spec: dict[str, Any]) -> None:
        spec.setdefault("volumes", []).append(volume)

    return m


def ap(spec: dict[str, Any], namespace: str = "claude-enhancer") -> Callable[[], Resources]:
    props = {"metadata": {"name": "extra", "namespace": namespace}, "spec": spec}
    return lambda: [*po.authorization_policies(), (po.AP, "extra", props)]


def np(spec: dict[str, Any]) -> Callable[[], Resources]:
    props = {
        "metadata": {"name": "extra", "namespace": "claude-enhancer"},
        "spec": {"podSelector": {}, **spec},
    }
    return lambda: [*po.network_policies(), (po.NP, "extra", props)]


def binding(role: str, kind: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}],
    }


def vault_stack(*extra: tuple[str, str, dict[str, Any]]) -> Callable[[], Resources]:
    return lambda: [(po.VAULT_POLICY, "policy-api", po.vault_policy()), *extra]


def configmap(data: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "cfg", "namespace": "claude-enhancer"}, "data": data}


def env_deployment(name: str, value: Any) -> dict[str, Any]:
    def m(spec: dict[str, Any]) -> None:
        spec["containers"][0]["env"].append({"name": name, "value": value})

    return workload(m)


def gateway_with(server: dict[str, Any]) -> dict[str, Any]:
    g = po.gateway()
    g["spec"]["servers"].append(server)
    return g


def dr_external(mode: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "payments", "namespace": "claude-enhancer"},
        "spec": {
            "host": "api.payments.example.com",
            "trafficPolicy": {"tls": {"mode": mode, "sni": "api.payments.example.com"}},
        },
    }


def pg(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    c = po.postgres()
    mutate(c["spec"])
    return c


PEM_PUBLIC = (
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3n7Lk2H0c9gq1cT0xWc1xYxZs9q8\n"
    "Jm5yq2b0m3oVv1l9nEo9G0z2m6cXy3C0S1n1b9vJ2xK1dH6j9nW8m5p3Qg==\n-----END PUBLIC KEY-----\n"
)
PEM_PRIVATE = PEM_PUBLIC.replace("PUBLIC", "PRIVATE")

CASES: list[Case] = [
    # --- canary weight: every split counts, pinned routes must be consistent --------
    Case(
        "vs-later-split-carries-another-phase",
        one(po.VS, vs_with_extra_split(1, 100)),
        [
            (ROLLOUT, "rollout phase jumps from 0 (0%) to 4 (100%)"),
            (WEIGHTS, 'weighted routes disagree on the canary subset "canary" weight'),
        ],
        config={ROLLOUT: {"previousPhase": 0}},
    ),
    Case(
        "vs-later-split-same-phase",
        one(po.VS, vs_with_extra_split(2, 20)),
        [],
        (ROLLOUT, WEIGHTS),
        {ROLLOUT: {"previousPhase": 1}},
    ),
    Case(
        "vs-sticky-canary-while-split-is-0",
        one(po.VS, vs_sticky_canary_at_zero()),
        [
            (
                WEIGHTS,
                'http[0] ("sticky-canary") pins matching requests to subset "canary", which http[2] ("weighted") gives 0%',
            )
        ],
        (ROLLOUT,),
        {ROLLOUT: {"previousPhase": 1}},
    ),
    # --- Pod Security restricted: sysctls, SELinux, volume types ---------------------
    Case(
        "pss-safe-sysctl",
        one(
            po.DEPLOYMENT,
            workload(set_pod("sysctls", [{"name": "net.ipv4.tcp_syncookies", "value": "1"}])),
        ),
        [],
        (PSS,),
    ),
    Case(
        "pss-unsafe-sysctl",
        one(
            po.DEPLOYMENT,
            workload(set_pod("sysctls", [{"name": "kernel.msgmax", "value": "65536"}])),
        ),
        [(PSS, "pod securityContext.sysctls kernel.msgmax is not a safe sysctl")],
    ),
    Case(
        "pss-selinux-container-t",
        one(
            po.DEPLOYMENT,
            workload(set_container("seLinuxOptions", {"type": "container_t", "level": "s0:c1"})),
        ),
        [],
        (PSS,),
    ),
    Case(
        "pss-selinux-spc-t-and-user",
        one(
            po.DEPLOYMENT,
            workload(set_container("seLinuxOptions", {"type": "spc_t", "user": "system_u"})),
        ),
        [
            (PSS, "seLinuxOptions.type spc_t is not allowed"),
            (PSS, "seLinuxOptions.user must not be set"),
        ],
    ),
    Case(
        "pss-pod-selinux-role",
        one(po.DEPLOYMENT, workload(set_pod("seLinuxOptions", {"role": "sysadm_r"}))),
        [(PSS, "pod securityContext.seLinuxOptions.role must not be set")],
    ),
    Case(
        "pss-volume-csi-pvc",
        one(
            po.DEPLOYMENT,
            workload(add_volume({"name": "data", "persistentVolumeClaim": {"claimName": "d"}})),
        ),
        [],
        (PSS,),
    ),
    Case(
        "pss-volume-nfs",
        one(
            po.DEPLOYMENT,
            workload(
                add_volume({"name": "shared", "nfs": {"server": "10.0.0.5", "path": "/exports"}})
            ),
        ),
        [(PSS, 'volume "shared" uses nfs; restricted allows only')],
    ),
    Case(
        "pss-volume-iscsi",
        one(
            po.DEPLOYMENT,
            workload(
                add_volume(
                    {
                        "name": "blk",
                        "iscsi": {"targetPortal": "10.0.0.6:3260", "iqn": "x", "lun": 0},
                    }
                )
            ),
        ),
        [(PSS, 'volume "blk" uses iscsi')],
    ),
    # own: AppArmor and procMount (PSS baseline) ------------------------------------
    Case(
        "pss-apparmor-unconfined",
        one(po.DEPLOYMENT, workload(set_container("appArmorProfile", {"type": "Unconfined"}))),
        [(PSS, "appArmorProfile.type must be RuntimeDefault or Localhost")],
    ),
    Case(
        "pss-procmount-unmasked",
        one(po.DEPLOYMENT, workload(set_container("procMount", "Unmasked"))),
        [(PSS, "procMount must be Default")],
    ),
    # --- workload kinds outside the old scope ---------------------------------------
    Case(
        "rc-privileged",
        one(
            "kubernetes:core/v1:ReplicationController",
            workload(set_container("privileged", True), "ReplicationController"),
        ),
        [(PSS, "securityContext.privileged must not be true")],
    ),
    Case(
        "rc-compliant",
        one(
            "kubernetes:core/v1:ReplicationController",
            workload(lambda s: None, "ReplicationController"),
        ),
        [],
        (PSS, IMAGES, AUTOMOUNT, SECRETS),
    ),
    Case(
        "deployment-patch-privileged",
        one(
            "kubernetes:apps/v1:DeploymentPatch",
            {
                "metadata": {"name": "api-stable", "namespace": "claude-enhancer"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "api", "securityContext": {"privileged": True}}]
                        }
                    }
                },
            },
        ),
        [(PSS, "securityContext.privileged must not be true")],
    ),
    Case(
        "deployment-patch-replicas-only",
        one(
            "kubernetes:apps/v1:DeploymentPatch",
            {
                "metadata": {"name": "api-stable", "namespace": "claude-enhancer"},
                "spec": {"replicas": 4},
            },
        ),
        [],
        (PSS, IMAGES, AUTOMOUNT, "resource-budget"),
    ),
    Case(
        "statefulset-patch-hostpath",
        one(
            "kubernetes:apps/v1:StatefulSetPatch",
            {
                "metadata": {"name": "s"},
                "spec": {
                    "template": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}
                },
            },
        ),
        [(PSS, 'volume "h" must not use hostPath')],
    ),
    Case(
        "serviceaccount-patch-automount-true",
        one(
            "kubernetes:core/v1:ServiceAccountPatch",
            {
                "metadata": {"name": "default", "namespace": "x"},
                "automountServiceAccountToken": True,
            },
        ),
        [(AUTOMOUNT, "automountServiceAccountToken must be false")],
    ),
    Case(
        "serviceaccount-patch-automount-false",
        one(
            "kubernetes:core/v1:ServiceAccountPatch",
            {
                "metadata": {"name": "default", "namespace": "x"},
                "automountServiceAccountToken": False,
            },
        ),
        [],
        (AUTOMOUNT,),
    ),
    # own: an older API group still runs pods
    Case(
        "extensions-v1beta1-deployment-hostnetwork",
        one(
            "kubernetes:extensions/v1beta1:Deployment",
            workload(lambda s: s.update(hostNetwork=True)),
        ),
        [(PSS, "pod spec.hostNetwork must not be true")],
    ),
    # --- allow-everything beside the default deny ------------------------------------
    Case(
        "authz-program-policies",
        po.authorization_policies,
        [],
        (AUTHZ, "default-deny-authorizationpolicy"),
    ),
    Case(
        "authz-allow-empty-rule",
        ap({"action": "ALLOW", "rules": [{}]}),
        [(AUTHZ, "ALLOW rules[0] matches every request")],
    ),
    Case(
        "authz-allow-root-namespace",
        ap(
            {
                "rules": [
                    {
                        "from": [{"source": {"namespaces": ["istio-system"]}}],
                        "to": [{"operation": {"ports": ["8080"]}}],
                    }
                ]
            }
        ),
        [(AUTHZ, 'namespace "istio-system" admits every principal in the mesh root namespace')],
    ),
    Case(
        "authz-allow-root-principal-wildcard",
        ap(
            {
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"principals": ["cluster.local/ns/istio-system/sa/*"]}}]}
                ],
            }
        ),
        [
            (
                AUTHZ,
                'principal "cluster.local/ns/istio-system/sa/*" admits every principal in the mesh root namespace',
            )
        ],
    ),
    Case(
        "authz-allow-gateway-principal",
        ap(
            {
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [
                            {
                                "source": {
                                    "principals": [
                                        "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
                                    ]
                                }
                            }
                        ]
                    }
                ],
            }
        ),
        [],
        (AUTHZ,),
    ),
    # own: notPrincipals only, ports without a source, a policy in the root namespace
    Case(
        "authz-not-principals-only",
        ap(
            {
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"notPrincipals": ["cluster.local/ns/x/sa/evil"]}}]}
                ],
            }
        ),
        [(AUTHZ, "ALLOW rules[0].from[0] admits any source")],
    ),
    Case(
        "authz-ports-only",
        ap({"rules": [{"to": [{"operation": {"ports": ["8080"]}}]}]}),
        [(AUTHZ, "ALLOW rules[0] has no from: any source may call")],
    ),
    Case("authz-deny-broad-is-fine", ap({"action": "DENY", "rules": [{}]}), [], (AUTHZ,)),
    Case(
        "netpol-program-policies", po.network_policies, [], (NETPOL, "default-deny-networkpolicy")
    ),
    Case(
        "netpol-ingress-empty-rule",
        np({"policyTypes": ["Ingress"], "ingress": [{}]}),
        [(NETPOL, "spec.ingress[0] allows all sources on all ports")],
    ),
    Case(
        "netpol-egress-anywhere",
        np({"policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
        [(NETPOL, "spec.egress[0] allows all destinations on all ports")],
    ),
    Case(
        "netpol-all-namespaces",
        np({"policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
        [(NETPOL, "spec.ingress[0] allows all sources on all ports")],
    ),
    Case(
        "netpol-anywhere-but-one-port",
        np(
            {
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}],
            }
        ),
        [],
        (NETPOL,),
    ),
    # --- RBAC ------------------------------------------------------------------------
    Case(
        "rbac-cluster-admin-authenticated",
        one(
            "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
            binding("cluster-admin", "Group", "system:authenticated"),
        ),
        [(RBAC, "binds cluster-admin to Group system:authenticated")],
    ),
    Case(
        "rbac-cluster-admin-anonymous",
        one(
            "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
            binding("cluster-admin", "User", "system:anonymous"),
        ),
        [(RBAC, "binds cluster-admin to User system:anonymous")],
    ),
    Case(
        "rbac-cluster-admin-ns-serviceaccounts-patch",
        one(
            "kubernetes:rbac.authorization.k8s.io/v1:RoleBindingPatch",
            binding("cluster-admin", "Group", "system:serviceaccounts:claude-enhancer"),
        ),
        [(RBAC, "binds cluster-admin to Group system:serviceaccounts:claude-enhancer")],
    ),
    Case(
        "rbac-view-authenticated-is-fine",
        one(
            "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
            binding("view", "Group", "system:authenticated"),
        ),
        [],
        (RBAC,),
    ),
    # --- Vault -------------------------------------------------------------------------
    Case("vault-program-policy", one(po.VAULT_POLICY, po.vault_policy()), [], (VPOL,)),
    Case(
        "vault-legacy-sudo",
        one(
            po.VAULT_POLICY,
            {"name": "p", "policy": 'path "secret/data/app/*" {\n  policy = "sudo"\n}\n'},
        ),
        [(VPOL, 'path "secret/data/app/*" grants sudo')],
    ),
    Case(
        "vault-legacy-read",
        one(
            po.VAULT_POLICY, {"name": "p", "policy": 'path "secret/data/app/*" { policy = "read" }'}
        ),
        [],
        (VPOL,),
    ),
    Case(
        "vault-write-acl-policies",
        one(
            po.VAULT_POLICY,
            {
                "name": "p",
                "policy": 'path "sys/policies/acl/*" { capabilities = ["create", "update", "read"] }',
            },
        ),
        [(VPOL, 'path "sys/policies/acl/*" grants create, update on sys/policies/acl')],
    ),
    Case(
        "vault-read-acl-policies-is-fine",
        one(
            po.VAULT_POLICY,
            {"name": "p", "policy": 'path "sys/policies/acl/app" { capabilities = ["read"] }'},
        ),
        [],
        (VPOL,),
    ),
    # own: a glob that reaches sys/policy, and HCL-JSON with a legacy write level
    Case(
        "vault-glob-reaches-sys-policy",
        one(
            po.VAULT_POLICY,
            {"name": "p", "policy": 'path "sys/pol*" { capabilities = ["update"] }'},
        ),
        [(VPOL, 'path "sys/pol*" grants update on sys/policy')],
    ),
    Case(
        "vault-json-legacy-write-auth",
        one(
            po.VAULT_POLICY,
            {"name": "p", "policy": '{"path": [{"sys/auth/+": {"policy": "write"}}]}'},
        ),
        [(VPOL, 'path "sys/auth/+" grants create, delete, update on sys/auth')],
    ),
    Case(
        "vault-audit-discard",
        vault_stack((AUDIT, "audit", {"type": "file", "options": {"file_path": "discard"}})),
        [(VAUDIT, 'Vault audit device "audit" (file) writes to "discard", i.e. nowhere')],
    ),
    Case(
        "vault-audit-stdout",
        vault_stack((AUDIT, "audit", {"type": "file", "options": {"file_path": "stdout"}})),
        [],
        (VAUDIT,),
    ),
    Case(
        "vault-audit-socket-without-address",
        vault_stack((AUDIT, "audit", {"type": "socket", "options": {"socket_type": "tcp"}})),
        [(VAUDIT, 'Vault audit device "audit" (socket) has no options.address')],
    ),
    Case(
        "vault-token-period-beyond-ttl",
        one(
            K8S_ROLE,
            {"roleName": "api", "tokenTtl": 900, "tokenMaxTtl": 3600, "tokenPeriod": 86400},
        ),
        [(VTTL, "token_period is 86400s; periodic tokens must renew within 3600s")],
    ),
    Case(
        "vault-approle-token-period-beyond-ttl",
        one(
            "vault:appRole/authBackendRole:AuthBackendRole",
            {"roleName": "ci", "tokenPeriod": 7 * 86400},
        ),
        [(VTTL, "token_period is 604800s"), (VTTL, "secret_id_ttl is unset or 0")],
    ),
    Case(
        "vault-token-period-within-ttl",
        one(
            K8S_ROLE, {"roleName": "api", "tokenTtl": 900, "tokenMaxTtl": 3600, "tokenPeriod": 1800}
        ),
        [],
        (VTTL,),
    ),
    # --- HA ------------------------------------------------------------------------------
    Case("cnpg-program-cluster", one(po.CNPG, po.postgres()), [], (PG,)),
    Case(
        "cnpg-async",
        one(po.CNPG, pg(lambda s: [s.pop("minSyncReplicas"), s.pop("maxSyncReplicas")])),
        [(PG, "synchronous replication is off (spec.minSyncReplicas is unset")],
    ),
    Case(
        "cnpg-async-zero",
        one(po.CNPG, pg(lambda s: s.update(minSyncReplicas=0, maxSyncReplicas=0))),
        [(PG, "spec.minSyncReplicas is 0")],
    ),
    Case(
        "cnpg-synchronous-stanza",
        one(
            po.CNPG,
            pg(
                lambda s: [
                    s.pop("minSyncReplicas"),
                    s.pop("maxSyncReplicas"),
                    s["postgresql"].update(synchronous={"method": "any", "number": 1}),
                ]
            ),
        ),
        [],
        (PG,),
    ),
    Case(
        "cnpg-wire-float-message",
        one(po.CNPG, pg(lambda s: s.update(instances=2))),
        [(PG, "spec.instances is 2; must be at least 3")],
    ),
    Case("redis-program-cluster", one(po.REDIS_CLUSTER, po.redis_cluster()), [], (REDIS,)),
    Case(
        "redis-standalone",
        one(
            "kubernetes:redis.redis.opstreelabs.in/v1beta2:Redis",
            {
                "metadata": {"name": "r"},
                "spec": {"kubernetesConfig": {"image": "quay.io/opstree/redis:v7.0.15"}},
            },
        ),
        [(REDIS, "standalone Redis has no replica and no failover")],
    ),
    # --- plaintext credentials -----------------------------------------------------------
    Case(
        "cm-url-empty-user",
        one(CM, configmap({"REDIS_URL": "redis://:s3cr3tPass@redis:6379/0"})),
        [
            (
                SECRETS,
                'ConfigMap data key "REDIS_URL" has a high-entropy value that looks like a secret',
            )
        ],
    ),
    Case(
        "env-url-empty-user",
        one(po.DEPLOYMENT, env_deployment("CACHE_URL", "rediss://:hunter2hunter2@cache:6380")),
        [(SECRETS, 'env "CACHE_URL" has a high-entropy literal value that looks like a secret')],
    ),
    Case(
        "cm-url-without-credentials",
        one(CM, configmap({"REDIS_URL": "redis://redis:6379/0"})),
        [],
        (SECRETS,),
    ),
    Case(
        "cm-embedded-yaml",
        one(
            CM,
            configmap(
                {
                    "application.yaml": "server:\n  port: 8080\ndatasource:\n  url: jdbc:postgresql://db/app\n  password: hunter2hunter2\n"
                }
            ),
        ),
        [
            (
                SECRETS,
                'ConfigMap data key "application.yaml" embeds a credential in setting "password"',
            )
        ],
    ),
    Case(
        "cm-embedded-properties",
        one(
            CM,
            configmap(
                {
                    "app.properties": "spring.datasource.username=app\nspring.datasource.password=Tr0ub4dor\n"
                }
            ),
        ),
        [(SECRETS, 'embeds a credential in setting "spring.datasource.password"')],
    ),
    Case(
        "cm-embedded-yaml-reference",
        one(
            CM,
            configmap(
                {
                    "application.yaml": "datasource:\n  password: ${DB_PASSWORD}\n  password_file: /run/secrets/db\n"
                }
            ),
        ),
        [],
        (SECRETS,),
    ),
    # own: JSON config, a libpq DSN in env, a token in a URL query string, a private PEM under *_key
    Case(
        "cm-embedded-json",
        one(CM, configmap({"config.json": '{"db": {"host": "pg", "password": "hunter2"}}'})),
        [(SECRETS, 'setting "password"')],
    ),
    Case(
        "env-libpq-dsn",
        one(
            po.DEPLOYMENT,
            env_deployment(
                "DATABASE_DSN_OPTIONS", "host=pg user=app password=hunter2 sslmode=require"
            ),
        ),
        [(SECRETS, 'env "DATABASE_DSN_OPTIONS" embeds a credential in setting "password"')],
    ),
    Case(
        "cm-url-query-token",
        one(CM, configmap({"WEBHOOK": "https://hooks.example.com/x?access_token=abc"})),
        [
            (
                SECRETS,
                'ConfigMap data key "WEBHOOK" has a high-entropy value that looks like a secret',
            )
        ],
    ),
    Case(
        "cm-private-pem",
        one(CM, configmap({"signing_key": PEM_PRIVATE})),
        [(SECRETS, 'ConfigMap data key "signing_key" looks like a secret')],
    ),
    Case(
        "secret-wire-format",
        one(
            "kubernetes:core/v1:Secret",
            {"metadata": {"name": "s"}, "data": {"password": secret("aHVudGVyMg==")}},
        ),
        [],
        (SECRETS,),
    ),
    # --- false positives -------------------------------------------------------------------
    Case(
        "cm-password-reset-url",
        one(CM, configmap({"password_reset_url": "https://id.example.com/reset"})),
        [],
        (SECRETS,),
    ),
    Case(
        "cm-bypass-cache",
        one(CM, configmap({"bypass_cache": "on", "passthrough_mode": "tcp"})),
        [],
        (SECRETS,),
    ),
    Case(
        "cm-public-pem",
        one(
            CM,
            configmap(
                {
                    "jwt_public_key": PEM_PUBLIC,
                    "ssh_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG",
                }
            ),
        ),
        [],
        (SECRETS,),
    ),
    Case(
        "env-vault-path",
        one(po.DEPLOYMENT, env_deployment("DB_PASSWORD", "claude-enhancer/data/api/db#password")),
        [],
        (SECRETS,),
    ),
    Case(
        "env-vault-path-secret-name",
        one(po.DEPLOYMENT, env_deployment("VAULT_SECRET_PATH", "secret/data/claude-enhancer/db2")),
        [],
        (SECRETS,),
    ),
    Case("dr-program", one(po.DR, po.destination_rule()), [], (DRTLS,)),
    Case("dr-external-simple", one(po.DR, dr_external("SIMPLE")), [], (DRTLS,)),
    Case(
        "dr-external-disable",
        one(po.DR, dr_external("DISABLE")),
        [(DRTLS, "spec.trafficPolicy.tls.mode is DISABLE")],
    ),
    Case(
        "dr-in-cluster-simple",
        one(
            po.DR,
            {
                "metadata": {"name": "a"},
                "spec": {
                    "host": "api.claude-enhancer.svc.cluster.local",
                    "trafficPolicy": {"tls": {"mode": "SIMPLE"}},
                },
            },
        ),
        [(DRTLS, "spec.trafficPolicy.tls.mode is SIMPLE; must be ISTIO_MUTUAL")],
    ),
    # --- edge servers ------------------------------------------------------------------------
    Case("gateway-program", one(po.GATEWAY, po.gateway()), [], (GW,)),
    Case(
        "gateway-plaintext-grpc",
        one(
            po.GATEWAY,
            gateway_with(
                {"port": {"number": 9090, "name": "grpc", "protocol": "GRPC"}, "hosts": ["*"]}
            ),
        ),
        [(GW, 'server[2] ("grpc"): GRPC server accepts plaintext at the edge')],
    ),
    Case(
        "gateway-plaintext-tcp-with-tls-block",
        one(
            po.GATEWAY,
            gateway_with(
                {
                    "port": {"number": 5432, "name": "pg", "protocol": "TCP"},
                    "hosts": ["*"],
                    "tls": {"mode": "SIMPLE"},
                }
            ),
        ),
        [(GW, 'server[2] ("pg"): TCP server accepts plaintext at the edge')],
    ),
    Case(
        "gateway-tls-passthrough",
        one(
            po.GATEWAY,
            gateway_with(
                {
                    "port": {"number": 5433, "name": "pg-tls", "protocol": "TLS"},
                    "hosts": ["pg.example.com"],
                    "tls": {"mode": "PASSTHROUGH"},
                }
            ),
        ),
        [],
        (GW,),
    ),
    # --- production pins images by digest ------------------------------------------------------
    Case(
        "prod-tag-only-image",
        one(po.DEPLOYMENT, po.deployment()),
        [(IMAGES, "must be pinned by digest")],
        config=build_config(environment="prod"),
    ),
    Case(
        "prod-digest-image",
        one(
            po.DEPLOYMENT,
            workload(
                lambda s: s["containers"][0].update(
                    image="registry.local/claude-enhancer/api@sha256:" + "a" * 64
                )
            ),
        ),
        [],
        (IMAGES,),
        build_config(environment="prod"),
    ),
]


def _matches(diags: list[Diagnostic], expect: list[tuple[str, str]]) -> bool:
    if len(diags) != len(expect):
        return False
    remaining = list(diags)
    for policy, fragment in expect:
        hit = next((d for d in remaining if d.policy == policy and fragment in d.message), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_through_the_analyzer(pack_service: PackService, case: Case) -> None:
    diags = pack_service.preview(case.resources(), case.config)
    judged = [d for d in diags if d.policy in case.judged()]
    assert _matches(judged, case.expect), [(d.policy, d.message) for d in judged]
    assert all(d.level == proto.MANDATORY for d in judged)  # a violation blocks the deploy


def test_every_class_has_both_sides() -> None:
    """A rule judged here has a compliant and a non-compliant case."""
    failing = {p for c in CASES for p, _ in c.expect}
    passing = {r for c in CASES if not c.expect for r in c.rules}
    assert failing - passing == set(), failing - passing


@pytest.mark.parametrize("phase", range(MAX_PHASE + 1))
def test_program_virtual_service_at_every_step(pack_service: PackService, phase: int) -> None:
    """Issue 9 defect 4: the program's own VS passes every legal step with previousPhase set, as CI sets it."""
    legal = {
        phase,
        max(phase - 1, 0),
        MAX_PHASE if phase == 0 else phase,
    }  # advance by one, re-preview, 4 -> 0
    vs = po.virtual_service(phase)
    for previous in sorted(legal):
        diags = pack_service.preview([(po.VS, "vs", vs)], build_config(previous_phase=previous))
        assert [d for d in diags if d.policy in (ROLLOUT, WEIGHTS)] == [], (previous, phase)
    for previous in range(phase - 1):  # every skip is still blocked
        diags = pack_service.preview([(po.VS, "vs", vs)], build_config(previous_phase=previous))
        assert [(d.policy, d.message) for d in diags if d.policy == ROLLOUT] == [
            (
                ROLLOUT,
                f"rollout phase jumps from {previous} ({PHASE_WEIGHTS[previous]}%) to {phase} ({PHASE_WEIGHTS[phase]}%); "
                f"phases advance one step at a time (next allowed is {previous + 1}); set allowSkip to override",
            )
        ]
