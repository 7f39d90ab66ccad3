"""Red-team corpus of our own: adversarial resource sets, each with the verdict it must get.

Written from the Kubernetes, Istio, Vault and CloudNativePG documentation and from known
misconfigurations/CVEs, without reading the rules: every case is one object (or a small
stack) plus ``block`` (a mandatory violation must be reported) or ``allow`` (no mandatory
violation), and a one-line why. Each risky case has compliant look-alikes, so a rule that
blocks everything of a kind does not score.

The corpus runs in process (``policies.engine.evaluate``: the same rule code the analyzer
runs) so it stays fast:

    python -m tests.policies.redteam              # score, and the cases it gets wrong
    python -m tests.policies.redteam --base REV   # the same corpus against the rules of commit REV
"""

from __future__ import annotations

import base64
import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
for _p in (_ROOT, _ROOT / "tests" / "policies"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import policy_fixtures as pf  # noqa: E402

from policies.engine import evaluate  # noqa: E402

Resource = tuple[str, str, dict[str, Any]]
NS = "claude-enhancer"
K = "kubernetes:"
NP = f"{K}networking.k8s.io/v1:NetworkPolicy"
AP = f"{K}security.istio.io/v1:AuthorizationPolicy"
VS = f"{K}networking.istio.io/v1:VirtualService"
DR = f"{K}networking.istio.io/v1:DestinationRule"
ROLE = f"{K}rbac.authorization.k8s.io/v1:Role"
CROLE = f"{K}rbac.authorization.k8s.io/v1:ClusterRole"
RB = f"{K}rbac.authorization.k8s.io/v1:RoleBinding"
CRB = f"{K}rbac.authorization.k8s.io/v1:ClusterRoleBinding"
CM = f"{K}core/v1:ConfigMap"
SECRET = f"{K}core/v1:Secret"
PDB = f"{K}policy/v1:PodDisruptionBudget"
DEPLOY = f"{K}apps/v1:Deployment"
STS = f"{K}apps/v1:StatefulSet"
CNPG = f"{K}postgresql.cnpg.io/v1:Cluster"
REDIS_GROUP = f"{K}redis.redis.opstreelabs.in/v1beta2"
VPOLICY = "vault:index/policy:Policy"
VENDPOINT = "vault:generic/endpoint:Endpoint"
VK8SROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
VAPPROLE = "vault:appRole/authBackendRole:AuthBackendRole"
VTOKEN = "vault:index/token:Token"
VAUDIT = "vault:index/audit:Audit"


@dataclass(frozen=True)
class Case:
    id: str
    verdict: str  # "block" | "allow"
    why: str
    resources: Callable[[], list[Resource]]
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack: bool = False  # also run the stack rules (the case carries its whole namespace)


def one(rtype: str, props: dict[str, Any]) -> Callable[[], list[Resource]]:
    return lambda: [(rtype, "x", copy.deepcopy(props))]


def meta(name: str = "x", namespace: str = NS, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, **extra}


# --- pods ------------------------------------------------------------------------


def pod_spec(**changes: Any) -> dict[str, Any]:
    spec = pf.pod_spec()
    spec.update(changes)
    return spec


def with_container(**changes: Any) -> dict[str, Any]:
    return pod_spec(containers=[pf.container(**changes)])


def privileged_spec() -> dict[str, Any]:
    c = pf.container()
    c["securityContext"]["privileged"] = True
    c["securityContext"]["allowPrivilegeEscalation"] = True
    return pod_spec(containers=[c])


def host_path_spec() -> dict[str, Any]:
    return pod_spec(volumes=[{"name": "root", "hostPath": {"path": "/"}}])


def pod_template(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": meta("tpl"),
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": spec},
    }


def argo_rollout(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": meta("api"),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": spec},
            "strategy": {"canary": {"steps": [{"setWeight": 5}]}},
        },
    }


def keda_scaled_job(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": meta("worker"),
        "spec": {
            "jobTargetRef": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": spec}}
        },
    }


def deploy_with(spec: dict[str, Any]) -> dict[str, Any]:
    d = pf.deployment()
    d["spec"]["template"]["spec"] = spec
    return d


def annotated_deployment(
    annotations: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    d = pf.deployment(labels=labels)
    d["spec"]["template"]["metadata"]["annotations"] = annotations
    return d


# --- network ---------------------------------------------------------------------


def netpol(spec: dict[str, Any], name: str = "extra") -> dict[str, Any]:
    return {"metadata": meta(name), "spec": {"podSelector": {}, **spec}}


def ingress_from(
    peer: dict[str, Any] | list[dict[str, Any]], ports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": peer if isinstance(peer, list) else [peer]}
    if ports is not None:
        rule["ports"] = ports
    return netpol({"policyTypes": ["Ingress"], "ingress": [rule]})


def egress_to(
    peer: dict[str, Any] | list[dict[str, Any]], ports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": peer if isinstance(peer, list) else [peer]}
    if ports is not None:
        rule["ports"] = ports
    return netpol({"policyTypes": ["Egress"], "egress": [rule]})


PORT_443 = [{"protocol": "TCP", "port": 443}]


def authz(spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {"metadata": meta("extra", namespace), "spec": spec}


def allow_from(source: dict[str, Any]) -> dict[str, Any]:
    return authz(
        {
            "action": "ALLOW",
            "rules": [{"from": [{"source": source}], "to": [{"operation": {"ports": ["8080"]}}]}],
        }
    )


def namespace_stack(
    *,
    netpols: list[dict[str, Any]] | None = None,
    authzs: list[Resource] | None = None,
    workload: Resource | None = None,
    pdb_spec: dict[str, Any] | None = None,
) -> list[Resource]:
    """A namespace that runs one Deployment (with its PDB) and the given default-deny objects."""
    out: list[Resource] = [workload or (DEPLOY, "app", spread_deployment(True))]
    out.append((PDB, "app", pdb(pdb_spec or {"maxUnavailable": 1})))
    for i, spec in enumerate(
        netpols
        if netpols is not None
        else [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]
    ):
        out.append((NP, f"np{i}", {"metadata": meta(f"np{i}"), "spec": spec}))
    out += authzs if authzs is not None else [(AP, "deny", authz({}))]
    return out


# --- istio ------------------------------------------------------------------------

HOST = "api.claude-enhancer.svc.cluster.local"


def split(canary: int, host: str = HOST) -> dict[str, Any]:
    return {
        "name": "split",
        "route": [
            {"destination": {"host": host, "subset": "stable"}, "weight": 100 - canary},
            {"destination": {"host": host, "subset": "canary"}, "weight": canary},
        ],
    }


def vs(*http: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": meta("api"), "spec": {"hosts": ["api"], "http": list(http)}}


def dr(tls: dict[str, Any], host: str = HOST) -> dict[str, Any]:
    return {"metadata": meta("api"), "spec": {"host": host, "trafficPolicy": {"tls": tls}}}


# --- rbac -------------------------------------------------------------------------


def role(rtype: str, rules: list[dict[str, Any]], **extra: Any) -> Resource:
    return (
        rtype,
        "r",
        {"metadata": meta("r") if rtype == ROLE else {"name": "r"}, "rules": rules, **extra},
    )


def binding(
    role_kind: str, role_name: str, subject: dict[str, Any], rtype: str = RB
) -> dict[str, Any]:
    return {
        "metadata": meta("b")
        if rtype == RB or rtype.endswith("RoleBindingPatch")
        else {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [subject],
    }


SA_SUBJECT = {"kind": "ServiceAccount", "name": "api", "namespace": NS}

# --- data -------------------------------------------------------------------------


def cnpg(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"instances": 3, "minSyncReplicas": 1, "maxSyncReplicas": 2}
    base.update(spec)
    return {
        "metadata": meta("pg", "claude-enhancer-data"),
        "spec": {k: v for k, v in base.items() if v is not None},
    }


# --- vault ------------------------------------------------------------------------


def vault_policy(text: str) -> dict[str, Any]:
    return {"name": "app", "policy": text}


APP_POLICY = 'path "secret/data/claude-enhancer/api/*" {\n  capabilities = ["read"]\n}\n'


def k8s_role(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "backend": "kubernetes",
        "roleName": "api",
        "boundServiceAccountNames": ["api"],
        "boundServiceAccountNamespaces": [NS],
        "tokenTtl": 3600,
        "tokenMaxTtl": 14400,
        "tokenPolicies": ["claude-enhancer-api"],
    }
    props.update(changes)
    return props


def approle(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "backend": "approle",
        "roleName": "ci",
        "tokenTtl": 1800,
        "tokenMaxTtl": 3600,
        "secretIdTtl": 600,
        "tokenPolicies": ["ci"],
    }
    props.update(changes)
    return props


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PROD = {"prod-min-replicas": {"environment": "prod"}}


def spread_deployment(spread: bool) -> dict[str, Any]:
    d = pf.deployment()
    d["spec"]["template"]["spec"].pop("topologySpreadConstraints", None)
    if spread:
        d["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "claude-enhancer"}},
            }
        ]
    return d


def pdb(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": meta("app"),
        "spec": {"selector": {"matchLabels": {"app": "claude-enhancer"}}, **spec},
    }


CASES: tuple[Case, ...] = (
    # ---- pod templates outside the workload kinds ----
    Case(
        "podtemplate-privileged",
        "block",
        "a PodTemplate is a pod spec that controllers/jobs copy verbatim",
        one(f"{K}core/v1:PodTemplate", pod_template(privileged_spec())),
    ),
    Case(
        "podtemplate-compliant",
        "allow",
        "a restricted PodTemplate is fine",
        one(f"{K}core/v1:PodTemplate", pod_template(pod_spec())),
    ),
    Case(
        "argo-rollout-hostpath",
        "block",
        "an Argo Rollout runs its spec.template like a Deployment; hostPath / is node takeover",
        one(f"{K}argoproj.io/v1alpha1:Rollout", argo_rollout(host_path_spec())),
    ),
    Case(
        "argo-rollout-compliant",
        "allow",
        "the same Rollout with a restricted pod spec",
        one(f"{K}argoproj.io/v1alpha1:Rollout", argo_rollout(pod_spec())),
    ),
    Case(
        "keda-scaledjob-hostnetwork",
        "block",
        "KEDA ScaledJob's jobTargetRef.template runs pods; hostNetwork sees the node's traffic",
        one(f"{K}keda.sh/v1alpha1:ScaledJob", keda_scaled_job(pod_spec(hostNetwork=True))),
    ),
    Case(
        "gitrepo-volume-in-cr",
        "block",
        "gitRepo volumes run git on the node (CVE-2024-10220)",
        one(
            f"{K}argoproj.io/v1alpha1:Rollout",
            argo_rollout(pod_spec(volumes=[{"name": "g", "gitRepo": {"repository": "https://x"}}])),
        ),
    ),
    # ---- container args / env ----
    Case(
        "args-password-flag",
        "block",
        "a password on the command line is visible in the pod spec and in ps",
        one(DEPLOY, deploy_with(with_container(args=["--db-password=S3cr3t-Pa55w0rd-2024"]))),
    ),
    Case(
        "args-token-separate",
        "block",
        "flag and value as two args carry the same secret",
        one(
            DEPLOY,
            deploy_with(with_container(args=["--api-token", "hvs.CAESIJx8fTq0aZ3kQ9vWm2LpR7sN"])),
        ),
    ),
    Case(
        "args-innocent",
        "allow",
        "ordinary flags, including ones that name a secret file, are fine",
        one(
            DEPLOY,
            deploy_with(
                with_container(
                    args=[
                        "--port=8080",
                        "--password-file=/var/run/secrets/db/password",
                        "--log-level",
                        "info",
                    ]
                )
            ),
        ),
    ),
    # ---- configmaps ----
    Case(
        "configmap-binarydata-credentials",
        "block",
        "binaryData is only base64: a credentials file in it is plaintext",
        one(
            CM,
            {
                "metadata": meta("c"),
                "binaryData": {"app.env": b64("DB_HOST=pg\nDB_PASSWORD=Zq8!vT3mW9xR\n")},
            },
        ),
    ),
    Case(
        "configmap-binarydata-image",
        "allow",
        "binary config (a small PNG header) holds no secret",
        one(
            CM,
            {
                "metadata": meta("c"),
                "binaryData": {"logo.png": base64.b64encode(bytes(range(256))).decode()},
            },
        ),
    ),
    Case(
        "configmap-name-only",
        "allow",
        "settings named after tokens/passwords but holding no secret (policy knobs)",
        one(
            CM,
            {
                "metadata": meta("c"),
                "data": {
                    "PASSWORD_MIN_LENGTH": "12",
                    "TOKEN_AUDIENCE": "claude-enhancer",
                    "AUTH_TOKEN_HEADER": "X-Auth-Token",
                    "PASSWORD_RESET_ENABLED": "yes",
                    "SECRET_NAME": "db-credentials",
                },
            },
        ),
    ),
    Case(
        "configmap-public-identifiers",
        "allow",
        "public identifiers are random-looking but not secrets",
        one(
            CM,
            {
                "metadata": meta("c"),
                "data": {
                    "OIDC_CLIENT_ID": "0oa4xk2Ld9QwErTy7h5d",
                    "TENANT_ID": "3f2b8c1e-9a4d-4e6f-b2c7-8d1e5f6a7b9c",
                    "IMAGE_DIGEST": "sha256:3b1f6c2d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c",
                    "GIT_COMMIT": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                    "ROLE_ARN": "arn:aws:iam::123456789012:role/claude-enhancer-backup",
                },
            },
        ),
    ),
    Case(
        "configmap-password",
        "block",
        "a plaintext password in a ConfigMap",
        one(CM, {"metadata": meta("c"), "data": {"DB_PASSWORD": "hunter2hunter2"}}),
    ),
    # ---- random ----
    Case(
        "randomstring-as-password",
        "block",
        "RandomString's result is not a secret: a password from it lands in state and logs",
        lambda: [
            (
                "random:index/randomString:RandomString",
                "db-password",
                {"length": 32, "special": True},
            )
        ],
        stack=True,
    ),
    Case(
        "randomstring-suffix",
        "allow",
        "a short RandomString used as a name suffix is fine",
        lambda: [
            (
                "random:index/randomString:RandomString",
                "bucket-suffix",
                {"length": 6, "special": False, "upper": False},
            )
        ],
        stack=True,
    ),
    # ---- network policies ----
    Case(
        "netpol-except-one-address",
        "block",
        "0.0.0.0/0 except one /32 is still every address",
        one(NP, egress_to({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}})),
    ),
    Case(
        "netpol-two-halves",
        "block",
        "0.0.0.0/1 + 128.0.0.0/1 together cover every IPv4 address",
        one(
            NP,
            ingress_from(
                [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]
            ),
        ),
    ),
    Case(
        "netpol-all-namespaces-expression",
        "block",
        "an Exists selector on the name label matches every namespace",
        one(
            NP,
            ingress_from(
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "Exists"}
                        ]
                    }
                }
            ),
        ),
    ),
    Case(
        "netpol-protocol-only-port",
        "block",
        "a port entry with only a protocol allows every TCP port from anywhere",
        one(NP, ingress_from({"ipBlock": {"cidr": "0.0.0.0/0"}}, [{"protocol": "TCP"}])),
    ),
    Case(
        "netpol-full-port-range",
        "block",
        "port 1..65535 is every port",
        one(
            NP,
            egress_to(
                {"ipBlock": {"cidr": "0.0.0.0/0"}},
                [{"protocol": "TCP", "port": 1, "endPort": 65535}],
            ),
        ),
    ),
    Case(
        "netpol-internet-https",
        "allow",
        "egress to any address on 443 only is a bounded flow",
        one(NP, egress_to({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}, PORT_443)),
    ),
    Case(
        "netpol-one-namespace",
        "allow",
        "one namespace by name, all ports, is a narrow peer",
        one(
            NP,
            ingress_from(
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "istio-system"}
                    }
                }
            ),
        ),
    ),
    Case(
        "netpol-private-range",
        "allow",
        "one private /16 (the docs' example) is bounded",
        one(NP, ingress_from({"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}})),
    ),
    Case(
        "default-deny-as-two-policies",
        "allow",
        "the Kubernetes docs write default deny as one ingress and one egress policy",
        lambda: namespace_stack(
            netpols=[
                {"podSelector": {}, "policyTypes": ["Ingress"]},
                {"podSelector": {}, "policyTypes": ["Egress"]},
            ]
        ),
        stack=True,
    ),
    Case(
        "default-deny-ingress-only",
        "block",
        "ingress-only default deny leaves egress open",
        lambda: namespace_stack(netpols=[{"podSelector": {}, "policyTypes": ["Ingress"]}]),
        stack=True,
    ),
    # ---- authorization policies ----
    Case(
        "authz-ipblocks-everything",
        "block",
        "ipBlocks 0.0.0.0/0 is any source",
        one(AP, allow_from({"ipBlocks": ["0.0.0.0/0"]})),
    ),
    Case(
        "authz-remote-ipblocks-halves",
        "block",
        "remoteIpBlocks covering all IPv4 is any client",
        one(AP, allow_from({"remoteIpBlocks": ["0.0.0.0/1", "128.0.0.0/1"]})),
    ),
    Case(
        "authz-principal-leading-wildcard",
        "block",
        "'*/sa/default' is the default SA of every namespace in every trust domain",
        one(AP, allow_from({"principals": ["*/sa/default"]})),
    ),
    Case(
        "authz-principal-any-suffix",
        "block",
        "'*admin' matches any principal ending in admin",
        one(AP, allow_from({"principals": ["*admin"]})),
    ),
    Case(
        "authz-principal-exact",
        "allow",
        "an exact service account principal",
        one(AP, allow_from({"principals": ["cluster.local/ns/claude-enhancer/sa/api"]})),
    ),
    Case(
        "authz-principal-any-trust-domain",
        "allow",
        "'*/ns/x/sa/y' pins namespace and account (trust-domain aliases)",
        one(AP, allow_from({"principals": ["*/ns/claude-enhancer/sa/api"]})),
    ),
    Case(
        "authz-mesh-wide-deny",
        "allow",
        "Istio's recommended mesh-wide allow-nothing policy lives in the root namespace",
        lambda: namespace_stack(
            authzs=[
                (
                    AP,
                    "allow-nothing",
                    {"metadata": meta("allow-nothing", "istio-system"), "spec": {}},
                )
            ]
        ),
        stack=True,
    ),
    Case(
        "authz-no-deny-anywhere",
        "block",
        "a workload namespace with no AuthorizationPolicy default deny",
        lambda: namespace_stack(authzs=[]),
        stack=True,
    ),
    # ---- RBAC ----
    Case(
        "rbac-subresource-wildcard",
        "block",
        "'*/exec' reaches exec on every resource kind",
        lambda: [role(ROLE, [{"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}])],
    ),
    Case(
        "rbac-aggregate-admin",
        "block",
        "an aggregation rule selecting the admin aggregation label pulls in admin's rules",
        lambda: [
            role(
                CROLE,
                [],
                aggregationRule={
                    "clusterRoleSelectors": [
                        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}
                    ]
                },
            )
        ],
    ),
    Case(
        "rbac-aggregate-own-label",
        "allow",
        "aggregating roles by the project's own label",
        lambda: [
            role(
                CROLE,
                [],
                aggregationRule={
                    "clusterRoleSelectors": [
                        {"matchLabels": {"claude-enhancer.io/aggregate-to-reader": "true"}}
                    ]
                },
            )
        ],
    ),
    Case(
        "rbac-escalate",
        "block",
        "escalate on roles lets a subject grant itself anything",
        lambda: [
            role(
                ROLE,
                [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["roles"],
                        "verbs": ["escalate", "update"],
                    }
                ],
            )
        ],
    ),
    Case(
        "rbac-bind",
        "block",
        "bind lets a subject bind any role it names, including admin",
        lambda: [
            role(
                ROLE,
                [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["rolebindings", "roles"],
                        "verbs": ["bind"],
                    }
                ],
            )
        ],
    ),
    Case(
        "rbac-impersonate",
        "block",
        "impersonating service accounts is acting as them",
        lambda: [
            role(
                CROLE,
                [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
            )
        ],
    ),
    Case(
        "rbac-read-configmaps",
        "allow",
        "get on one named ConfigMap",
        lambda: [
            role(
                ROLE,
                [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": ["app"],
                        "verbs": ["get"],
                    }
                ],
            )
        ],
    ),
    Case(
        "rbac-rolepatch-wildcard",
        "block",
        "a RolePatch that sets verbs '*' grants them (patches are judged on what they set)",
        lambda: [
            (
                f"{ROLE}Patch",
                "r",
                {
                    "metadata": meta("r"),
                    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}],
                },
            )
        ],
    ),
    Case(
        "rbac-bind-admin",
        "block",
        "namespace admin for a workload's ServiceAccount reads every Secret",
        one(RB, binding("ClusterRole", "admin", SA_SUBJECT)),
    ),
    Case(
        "rbac-bind-edit",
        "block",
        "edit can read Secrets and run pods as any SA of the namespace",
        one(RB, binding("ClusterRole", "edit", SA_SUBJECT)),
    ),
    Case(
        "rbac-bindingpatch-cluster-admin",
        "block",
        "a ClusterRoleBindingPatch adding cluster-admin",
        lambda: [
            (f"{CRB}Patch", "b", binding("ClusterRole", "cluster-admin", SA_SUBJECT, f"{CRB}Patch"))
        ],
    ),
    Case(
        "rbac-bind-view",
        "allow",
        "view for a ServiceAccount is read-only and excludes Secrets",
        one(RB, binding("ClusterRole", "view", SA_SUBJECT)),
    ),
    # ---- service account tokens ----
    Case(
        "legacy-sa-token-secret",
        "block",
        "a service-account-token Secret is a non-expiring token (KEP-2799)",
        one(
            SECRET,
            {
                "metadata": meta(
                    "api-token", annotations={"kubernetes.io/service-account.name": "api"}
                ),
                "type": "kubernetes.io/service-account-token",
            },
        ),
    ),
    Case(
        "opaque-secret-named-token",
        "allow",
        "an Opaque Secret whose data is a Pulumi secret",
        lambda: [
            (
                SECRET,
                "t",
                {
                    "metadata": meta("api-token"),
                    "type": "Opaque",
                    "stringData": {
                        "k": {
                            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                            "value": "x",
                        }
                    },
                },
            )
        ],
    ),
    # ---- sidecar bypass ----
    Case(
        "sidecar-exclude-inbound",
        "block",
        "excludeInboundPorts lets plaintext callers reach the port without mTLS or authorization",
        one(DEPLOY, annotated_deployment({"traffic.sidecar.istio.io/excludeInboundPorts": "8080"})),
    ),
    Case(
        "sidecar-exclude-outbound-ranges",
        "block",
        "excludeOutboundIPRanges 0.0.0.0/0 sends all egress around the mesh",
        one(
            DEPLOY,
            annotated_deployment({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "0.0.0.0/0"}),
        ),
    ),
    Case(
        "sidecar-inject-false",
        "block",
        "no sidecar at all: no mTLS, no authorization",
        one(DEPLOY, annotated_deployment({"sidecar.istio.io/inject": "false"})),
    ),
    Case(
        "sidecar-redis-bus-reviewed",
        "allow",
        "Redis cluster bus 16379 is on the reviewed exclusion list",
        one(
            f"{REDIS_GROUP}:RedisCluster",
            {
                "metadata": meta("redis", "claude-enhancer-data"),
                "spec": {
                    "clusterSize": 3,
                    "podAnnotations": {
                        "traffic.sidecar.istio.io/excludeInboundPorts": "16379",
                        "traffic.sidecar.istio.io/excludeOutboundPorts": "16379",
                    },
                },
            },
        ),
    ),
    # ---- TLS origination ----
    Case(
        "dr-insecure-skip-verify",
        "block",
        "SIMPLE TLS origination without verifying the server is MITM-able",
        one(DR, dr({"mode": "SIMPLE", "insecureSkipVerify": True}, "api.stripe.com")),
    ),
    Case(
        "dr-simple-verified",
        "allow",
        "SIMPLE TLS origination with a CA and SNI",
        one(
            DR,
            dr(
                {
                    "mode": "SIMPLE",
                    "caCertificates": "/etc/ssl/certs/ca-certificates.crt",
                    "sni": "api.stripe.com",
                },
                "api.stripe.com",
            ),
        ),
    ),
    # ---- gateways ----
    Case(
        "gateway-api-plain-http",
        "block",
        "a Gateway API listener on plain HTTP with nothing else is plaintext at the edge",
        one(
            f"{K}gateway.networking.k8s.io/v1:Gateway",
            {
                "metadata": meta("edge"),
                "spec": {
                    "gatewayClassName": "istio",
                    "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
                },
            },
        ),
    ),
    Case(
        "gateway-api-tcp",
        "block",
        "a raw TCP listener at the edge is plaintext",
        one(
            f"{K}gateway.networking.k8s.io/v1:Gateway",
            {
                "metadata": meta("edge"),
                "spec": {
                    "gatewayClassName": "istio",
                    "listeners": [{"name": "db", "port": 5432, "protocol": "TCP"}],
                },
            },
        ),
    ),
    Case(
        "gateway-api-https",
        "allow",
        "HTTPS listener terminating TLS with a certificate",
        one(
            f"{K}gateway.networking.k8s.io/v1:Gateway",
            {
                "metadata": meta("edge"),
                "spec": {
                    "gatewayClassName": "istio",
                    "listeners": [
                        {
                            "name": "https",
                            "port": 443,
                            "protocol": "HTTPS",
                            "tls": {
                                "mode": "Terminate",
                                "certificateRefs": [{"name": "edge-cert"}],
                            },
                        }
                    ],
                },
            },
        ),
    ),
    # ---- virtual services ----
    Case(
        "vs-catch-all-pinned-ahead",
        "block",
        "a prefix '/' match pinned to canary ahead of the split sends 100% to canary",
        one(
            VS,
            vs(
                {
                    "name": "all",
                    "match": [{"uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": HOST, "subset": "canary"}}],
                },
                split(5),
            ),
        ),
        config={"rollout-phase-step": {"previousPhase": 1}},
    ),
    Case(
        "vs-sticky-cookie-ahead",
        "allow",
        "a cookie-matched sticky route ahead of the split (the program's own pattern)",
        one(
            VS,
            vs(
                {
                    "name": "sticky",
                    "match": [{"headers": {"cookie": {"regex": ".*canary=1.*"}}}],
                    "route": [{"destination": {"host": HOST, "subset": "canary"}}],
                },
                split(5),
            ),
        ),
        config={"rollout-phase-step": {"previousPhase": 1}},
    ),
    Case(
        "vs-split-by-host",
        "block",
        "splitting between two Services bypasses the subset-based phase rules",
        one(
            VS,
            vs(
                {
                    "name": "split",
                    "route": [
                        {"destination": {"host": HOST}, "weight": 50},
                        {
                            "destination": {"host": "api-canary.claude-enhancer.svc.cluster.local"},
                            "weight": 50,
                        },
                    ],
                }
            ),
        ),
        config={"rollout-phase-step": {"previousPhase": 1}},
    ),
    Case(
        "vs-weight-unmappable",
        "block",
        "a canary weight that is no phase must not pass the phase rule silently",
        one(VS, vs(split(7))),
        config={"rollout-phase-step": {"previousPhase": 1}},
    ),
    Case(
        "vs-custom-phase-weights",
        "allow",
        "the stack's own phaseWeights (10% at phase 1) are a valid step",
        one(VS, vs(split(10))),
        config={
            "rollout-phase-step": {"previousPhase": 0, "phaseWeights": [0, 10, 25, 50, 100]},
            "istio-virtualservice-weights": {"phaseWeights": [0, 10, 25, 50, 100]},
        },
    ),
    Case(
        "vs-skip-allowed",
        "allow",
        "allowSkip from the stack permits 5% -> 50%",
        one(VS, vs(split(50))),
        config={"rollout-phase-step": {"previousPhase": 1, "allowSkip": True}},
    ),
    Case(
        "vs-skip",
        "block",
        "5% -> 50% skips phase 2",
        one(VS, vs(split(50))),
        config={"rollout-phase-step": {"previousPhase": 1}},
    ),
    # ---- HA ----
    Case(
        "pdb-max-unavailable-100",
        "block",
        "maxUnavailable 100% lets every pod be evicted at once",
        lambda: namespace_stack(pdb_spec={"maxUnavailable": "100%"}),
        stack=True,
    ),
    Case(
        "pdb-min-available-zero",
        "block",
        "minAvailable 0 protects nothing",
        lambda: namespace_stack(pdb_spec={"minAvailable": 0}),
        stack=True,
    ),
    Case(
        "pdb-max-unavailable-one",
        "allow",
        "maxUnavailable 1 of 3",
        lambda: namespace_stack(pdb_spec={"maxUnavailable": 1}),
        stack=True,
    ),
    Case(
        "deploymentpatch-replicas-1-prod",
        "block",
        "a DeploymentPatch scaling prod to 1 replica",
        lambda: [
            *namespace_stack(),
            (f"{DEPLOY}Patch", "app", {"metadata": meta("app"), "spec": {"replicas": 1}}),
        ],
        config=PROD,
        stack=True,
    ),
    Case(
        "prod-env-uppercase",
        "block",
        "'PROD' is production too; case must not turn the rule off",
        lambda: namespace_stack(workload=(DEPLOY, "app", pf.deployment(replicas=1))),
        config={"prod-min-replicas": {"environment": "Prod"}},
        stack=True,
    ),
    Case(
        "prod-no-spread",
        "block",
        "3 replicas in prod with no spread can all land on one node",
        lambda: namespace_stack(workload=(DEPLOY, "app", spread_deployment(False))),
        config=PROD,
        stack=True,
    ),
    Case(
        "prod-with-spread",
        "allow",
        "3 replicas spread over nodes",
        lambda: namespace_stack(),
        config=PROD,
        stack=True,
    ),
    Case(
        "redis-replication-one",
        "block",
        "a RedisReplication of 1 has no replica",
        one(
            f"{REDIS_GROUP}:RedisReplication",
            {"metadata": meta("r", "claude-enhancer-data"), "spec": {"clusterSize": 1}},
        ),
    ),
    Case(
        "redis-sentinel-one",
        "block",
        "one sentinel cannot form a quorum",
        one(
            f"{REDIS_GROUP}:RedisSentinel",
            {"metadata": meta("s", "claude-enhancer-data"), "spec": {"clusterSize": 1}},
        ),
    ),
    Case(
        "redis-replication-three",
        "allow",
        "1 primary + 2 replicas",
        one(
            f"{REDIS_GROUP}:RedisReplication",
            {"metadata": meta("r", "claude-enhancer-data"), "spec": {"clusterSize": 3}},
        ),
    ),
    Case(
        "cnpg-preferred-durability",
        "block",
        "dataDurability preferred falls back to async when standbys are gone",
        one(
            CNPG,
            cnpg(
                minSyncReplicas=None,
                maxSyncReplicas=None,
                postgresql={
                    "synchronous": {"method": "any", "number": 1, "dataDurability": "preferred"}
                },
            ),
        ),
    ),
    Case(
        "cnpg-sync-required",
        "allow",
        "synchronous any 1, durability required (the default)",
        one(
            CNPG,
            cnpg(
                minSyncReplicas=None,
                maxSyncReplicas=None,
                postgresql={"synchronous": {"method": "any", "number": 1}},
            ),
        ),
    ),
    Case(
        "cnpg-legacy-sync",
        "allow",
        "legacy minSyncReplicas 1 / maxSyncReplicas 2 with 3 instances",
        one(CNPG, cnpg()),
    ),
    # ---- vault ----
    Case(
        "vault-endpoint-policy-sudo",
        "block",
        "an ACL policy written through sys/policy/<name> with a generic endpoint",
        one(
            VENDPOINT,
            {
                "path": "sys/policies/acl/app",
                "dataJson": '{"policy": "path \\"sys/*\\" { capabilities = [\\"sudo\\", \\"update\\"] }"}',
            },
        ),
    ),
    Case(
        "vault-endpoint-harmless",
        "allow",
        "a generic endpoint writing a KV config",
        one(VENDPOINT, {"path": "secret/config", "dataJson": '{"max_versions": 5}'}),
    ),
    Case(
        "vault-k8s-role-any-sa",
        "block",
        "bound to every service account in every namespace: any pod can log in",
        one(
            VK8SROLE, k8s_role(boundServiceAccountNames=["*"], boundServiceAccountNamespaces=["*"])
        ),
    ),
    Case(
        "vault-k8s-role-exact",
        "allow",
        "one service account in one namespace",
        one(VK8SROLE, k8s_role()),
    ),
    Case(
        "vault-token-no-ttl",
        "block",
        "a token without a TTL lives for the system max (32 days)",
        one(VTOKEN, {"policies": ["app"], "renewable": True}),
    ),
    Case(
        "vault-token-short",
        "allow",
        "a 1h token",
        one(VTOKEN, {"policies": ["app"], "ttl": "1h", "explicitMaxTtl": "4h"}),
    ),
    Case(
        "vault-approle-long-ttl",
        "block",
        "an AppRole issuing 30-day tokens",
        one(VAPPROLE, approle(tokenTtl=2592000, tokenMaxTtl=2592000)),
    ),
    Case(
        "vault-approle-eternal-secret-id",
        "block",
        "secret_id_ttl 0 means secret IDs never expire",
        one(VAPPROLE, approle(secretIdTtl=0)),
    ),
    Case("vault-approle-short", "allow", "short tokens and secret IDs", one(VAPPROLE, approle())),
    Case(
        "vault-audit-log-raw",
        "block",
        "log_raw writes every secret in clear to the audit log",
        lambda: [
            (
                VAUDIT,
                "audit",
                {"type": "file", "options": {"file_path": "stdout", "log_raw": "true"}},
            ),
            (VPOLICY, "app", vault_policy(APP_POLICY)),
        ],
        stack=True,
    ),
    Case(
        "vault-audit-hmac",
        "allow",
        "a file audit device with HMAC-ed values",
        lambda: [
            (VAUDIT, "audit", {"type": "file", "options": {"file_path": "stdout"}}),
            (VPOLICY, "app", vault_policy(APP_POLICY)),
        ],
        stack=True,
    ),
    Case(
        "vault-policy-write-auth-roles",
        "block",
        "updating auth/kubernetes/role/* rebinds any role to any SA or policy",
        one(
            VPOLICY,
            vault_policy(
                'path "auth/kubernetes/role/*" {\n  capabilities = ["create", "update"]\n}\n'
            ),
        ),
    ),
    Case(
        "vault-policy-approle-secret-id",
        "block",
        "minting secret IDs for any AppRole is logging in as it",
        one(
            VPOLICY,
            vault_policy(
                'path "auth/approle/role/+/secret-id" {\n  capabilities = ["update"]\n}\n'
            ),
        ),
    ),
    Case(
        "vault-policy-renew-self",
        "allow",
        "Vault's default policy lets a token renew and look up itself",
        one(
            VPOLICY,
            vault_policy(
                'path "auth/token/renew-self" {\n  capabilities = ["update"]\n}\npath "auth/token/lookup-self" {\n  capabilities = ["read"]\n}\n'
            ),
        ),
    ),
    Case(
        "vault-policy-whole-mount",
        "block",
        "reading secret/data/* reads every app's secrets",
        one(
            VPOLICY, vault_policy('path "secret/data/*" {\n  capabilities = ["read", "list"]\n}\n')
        ),
    ),
    Case(
        "vault-policy-whole-mount-plus",
        "block",
        "secret/+/* is the whole KV mount too",
        one(VPOLICY, vault_policy('path "secret/+/*" {\n  capabilities = ["read"]\n}\n')),
    ),
    Case(
        "vault-policy-app-path",
        "allow",
        "the app's own KV subtree",
        one(VPOLICY, vault_policy(APP_POLICY)),
    ),
    # ---- images ----
    Case(
        "image-random-docker-library",
        "block",
        "a Docker Hub official image is not a reviewed source",
        one(DEPLOY, deploy_with(with_container(image="docker.io/library/alpine:3.20"))),
    ),
    Case(
        "image-random-ghcr-user",
        "block",
        "any GitHub user's image on ghcr.io",
        one(DEPLOY, deploy_with(with_container(image="ghcr.io/someone/miner:1.0"))),
    ),
    Case(
        "image-opstree-redis",
        "allow",
        "the redis-operator's own images are reviewed",
        one(DEPLOY, deploy_with(with_container(image="quay.io/opstree/redis:v7.0.15"))),
    ),
    # ---- known misconfigurations (docs / CVEs) ----
    Case(
        "service-external-ips",
        "block",
        "Service externalIPs can intercept traffic to any IP (CVE-2020-8554)",
        one(
            f"{K}core/v1:Service",
            {"metadata": meta("s"), "spec": {"ports": [{"port": 80}], "externalIPs": ["8.8.8.8"]}},
        ),
    ),
    Case(
        "pod-proc-mount-unmasked",
        "block",
        "procMount Unmasked exposes the host's /proc paths",
        one(
            f"{K}core/v1:PodTemplate",
            pod_template(
                pod_spec(
                    containers=[
                        pf.container(
                            securityContext={
                                **pf.container()["securityContext"],
                                "procMount": "Unmasked",
                            }
                        )
                    ]
                )
            ),
        ),
    ),
    # ---- look-alikes written against the rules above (added with them) ----
    Case(
        "pdb-min-available-percent",
        "allow",
        "minAvailable 50% keeps half the pods",
        lambda: namespace_stack(pdb_spec={"minAvailable": "50%"}),
        stack=True,
    ),
    Case(
        "rbac-aggregate-to-view-narrow",
        "allow",
        "a narrow role that feeds the view role (the documented way to extend view)",
        lambda: [
            role(
                CROLE,
                [
                    {
                        "apiGroups": ["claude-enhancer.io"],
                        "resources": ["agents"],
                        "verbs": ["get", "list"],
                    }
                ],
                metadata={
                    "name": "agents-view",
                    "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
                },
            )
        ],
    ),
    Case(
        "vault-policy-own-db-creds",
        "allow",
        "reading one database role's credentials",
        one(
            VPOLICY, vault_policy('path "database/creds/ce-app" {\n  capabilities = ["read"]\n}\n')
        ),
    ),
    Case(
        "vault-policy-all-db-creds",
        "block",
        "reading the credentials of every database role",
        one(VPOLICY, vault_policy('path "database/creds/*" {\n  capabilities = ["read"]\n}\n')),
    ),
    Case(
        "netpol-egress-dns",
        "allow",
        "egress to kube-system on UDP/TCP 53 only",
        one(
            NP,
            egress_to(
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    }
                },
                [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            ),
        ),
    ),
    Case(
        "sidecar-exclude-outbound-db-port",
        "block",
        "excluding 5432 outbound sends database traffic around the mesh; not on the reviewed list",
        one(
            DEPLOY, annotated_deployment({"traffic.sidecar.istio.io/excludeOutboundPorts": "5432"})
        ),
    ),
    Case(
        "cnpg-sync-equals-instances",
        "block",
        "3 synchronous standbys need 4 instances: with 3, writes wait for a standby that cannot exist",
        one(CNPG, cnpg(instances=3, minSyncReplicas=3, maxSyncReplicas=3)),
    ),
    Case(
        "configmap-jwt-in-json",
        "block",
        "a bearer token embedded in a JSON config value",
        one(
            CM,
            {
                "metadata": meta("c"),
                "data": {
                    "client.json": '{"endpoint": "https://api", "auth": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcGkifQ.c2lnbmF0dXJlLXZhbHVl"}'
                },
            },
        ),
    ),
    Case(
        "deployment-baseline",
        "allow",
        "the fixture Deployment is compliant",
        one(DEPLOY, pf.deployment()),
    ),
)


def mandatory(case: Case) -> list[tuple[str, str]]:
    violations = evaluate(
        [
            {"type": t, "name": n, "props": p, "urn": f"urn:{t}::{n}"}
            for t, n, p in case.resources()
        ],
        case.config,
        stack=case.stack,
    )
    return [
        (v.rule, v.message) for v in violations if getattr(v, "level", "mandatory") == "mandatory"
    ]


def verdict(case: Case) -> str:
    return "block" if mandatory(case) else "allow"


def score() -> tuple[int, list[tuple[Case, list[tuple[str, str]]]]]:
    wrong = []
    for case in CASES:
        found = mandatory(case)
        if ("block" if found else "allow") != case.verdict:
            wrong.append((case, found))
    return len(CASES) - len(wrong), wrong


def score_at(rev: str) -> int:
    """Run this corpus (and its fixtures) against policies/ and rollout/ as they were at ``rev``."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(_ROOT), "archive", rev, "policies", "rollout"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        (Path(tmp) / "tests" / "policies").mkdir(parents=True)
        for name in ("redteam.py", "policy_fixtures.py"):
            shutil.copy(Path(__file__).with_name(name), Path(tmp) / "tests" / "policies" / name)
        return subprocess.run(
            [sys.executable, "-m", "tests.policies.redteam"], cwd=tmp, check=False
        ).returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--base":
        return score_at(args[1])
    right, wrong = score()
    risks = sum(1 for c in CASES if c.verdict == "block")
    missed = sum(1 for c, _ in wrong if c.verdict == "block")
    blocked = sum(1 for c, _ in wrong if c.verdict == "allow")
    print(
        f"red team: {right}/{len(CASES)} right ({risks} risks, {len(CASES) - risks} compliant); "
        f"{missed} risks let through, {blocked} compliant setups blocked"
    )
    for case, found in wrong:
        shown = "; ".join(f"{r}: {m}" for r, m in found[:3]) or "nothing reported"
        print(f"  WRONG {case.id} (want {case.verdict}): {case.why} -> {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
