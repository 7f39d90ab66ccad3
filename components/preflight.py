"""Cluster preflight: stop before any resource is registered when the target cluster lacks
what the stack needs (a CRD, the mesh data plane, an operator's identity).

``missing()`` is the pure decision: requirements + what the cluster has -> one message per
missing thing, naming it and how to install it. ``KubeApi`` is the thin edge: it lists CRDs and
looks objects up through the Kubernetes API with the same kubeconfig the kubernetes provider
uses (``kubernetes:kubeconfig`` / ``kubernetes:context`` config, else ``$KUBECONFIG``, else
``~/.kube/config``). ``check()`` wires the two; ``from_pulumi()`` runs it for the running
program (``__main__.py``, after ``settings.from_pulumi``). This module imports
``components.settings``; the settings never import it.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from components.settings.model import PROJECT, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]

#: (API group, kind) of every custom resource the program registers -> (CRD name, versions.env
#: pin of the module its CRDs come from, how to install it). tests/unit/test_preflight.py checks
#: that the program registers nothing outside this table.
CRDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("networking.istio.io", "VirtualService"): ("virtualservices.networking.istio.io", "CRD_ISTIO_MODULE", "istio"),
    ("networking.istio.io", "DestinationRule"): ("destinationrules.networking.istio.io", "CRD_ISTIO_MODULE", "istio"),
    ("networking.istio.io", "Gateway"): ("gateways.networking.istio.io", "CRD_ISTIO_MODULE", "istio"),
    ("security.istio.io", "PeerAuthentication"): ("peerauthentications.security.istio.io", "CRD_ISTIO_MODULE", "istio"),
    ("security.istio.io", "AuthorizationPolicy"): ("authorizationpolicies.security.istio.io", "CRD_ISTIO_MODULE", "istio"),
    ("postgresql.cnpg.io", "Cluster"): ("clusters.postgresql.cnpg.io", "CRD_CNPG_MODULE", "cnpg"),
    ("postgresql.cnpg.io", "ScheduledBackup"): ("scheduledbackups.postgresql.cnpg.io", "CRD_CNPG_MODULE", "cnpg"),
    ("redis.redis.opstreelabs.in", "RedisCluster"): ("redisclusters.redis.redis.opstreelabs.in", "CRD_REDISOP_MODULE", "redis"),
    ("monitoring.coreos.com", "ServiceMonitor"): ("servicemonitors.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "PodMonitor"): ("podmonitors.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "ScrapeConfig"): ("scrapeconfigs.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "PrometheusRule"): ("prometheusrules.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "AlertmanagerConfig"): ("alertmanagerconfigs.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "Prometheus"): ("prometheuses.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
    ("monitoring.coreos.com", "Alertmanager"): ("alertmanagers.monitoring.coreos.com", "CRD_PROMOP_MODULE", "promop"),
}  # fmt: skip

#: how to install each prerequisite ({version} from toolchain/versions.env).
INSTALL: dict[str, str] = {
    "istio": "install Istio {version} (istioctl install, or the base + istiod Helm charts)",
    "cnpg": "install the CloudNativePG operator {version} (releases/cnpg-{version}.yaml or "
    "the cloudnative-pg Helm chart)",
    "redis": "install the OT-CONTAINER-KIT redis-operator {version} (its Helm chart)",
    "promop": "install prometheus-operator {version} (bundle.yaml or kube-prometheus-stack)",
    "istio-cni": "install the Istio CNI plugin (istioctl install --set components.cni.enabled=true, "
    "or the cni Helm chart)",
    "ztunnel": "install Istio in ambient mode (istioctl install --set profile=ambient)",
}


@dataclass(frozen=True)
class Requirement:
    """One thing the target cluster must have."""

    what: str
    """Human name, e.g. ``CRD clusters.postgresql.cnpg.io``."""
    crd: str | None
    """CRD name to find in the CRD list, or None for an object lookup."""
    paths: tuple[str, ...]
    """API paths of objects; any one of them existing satisfies the requirement."""
    why: str
    """The setting or resource that needs it."""
    install: str
    """How to install it."""


def read_versions(path: Path = ROOT / "toolchain" / "versions.env") -> dict[str, str]:
    """KEY=value pins (the versions we test against)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip('"')
    return out


def _version(versions: Mapping[str, str], pin: str) -> str:
    return versions.get(pin, "?").rsplit("@", 1)[-1]


def _ds(namespaces: Iterable[str], name: str) -> tuple[str, ...]:
    return tuple(f"/apis/apps/v1/namespaces/{ns}/daemonsets/{name}" for ns in namespaces)


def _sa(ns: str, name: str) -> tuple[str, ...]:
    return (f"/api/v1/namespaces/{ns}/serviceaccounts/{name}",)


def requirements(s: Settings, versions: Mapping[str, str]) -> list[Requirement]:
    """Pure: what the stack needs on its target cluster.

    Always the CRDs of every custom resource it registers. On an ``existing`` cluster also the
    mesh data plane it declares (``mesh.dataplane``) and the operators' identities its data-tier
    AuthorizationPolicies admit (a kwok cluster runs no node agents or operators of its own).
    """
    out: list[Requirement] = []
    for (_group, kind), (crd, pin, hint) in sorted(CRDS.items(), key=lambda kv: kv[1][0]):
        out.append(
            Requirement(
                f"CRD {crd}",
                crd,
                (),
                f"the program's {kind} resources",
                INSTALL[hint].format(version=_version(versions, pin)),
            )
        )
    if s.cluster.mode != "existing":
        return out
    istio_ns = dict.fromkeys([s.mesh.root_namespace, "istio-system", "kube-system"])
    dp = f"{PROJECT}:mesh.dataplane={s.mesh.dataplane}"
    istio_version = _version(versions, "CRD_ISTIO_MODULE")
    out.append(
        Requirement(
            "DaemonSet istio-cni-node (Istio CNI plugin)",
            None,
            _ds(istio_ns, "istio-cni-node"),
            f"{dp}: pods under Pod Security 'restricted' cannot run istio-init (NET_ADMIN)",
            INSTALL["istio-cni"] + f" at Istio {istio_version}",
        )
    )
    if s.mesh.dataplane == "ambient":
        out.append(
            Requirement(
                "DaemonSet ztunnel (Istio ambient)",
                None,
                _ds(istio_ns, "ztunnel"),
                f"{dp}: namespaces are enrolled with istio.io/dataplane-mode=ambient",
                INSTALL["ztunnel"] + f" at Istio {istio_version}",
            )
        )
    cl = s.data.clients
    for peer, hint, pin, key in (
        (cl.cnpg_operator, "cnpg", "CRD_CNPG_MODULE", "cnpgOperator"),
        (cl.redis_operator, "redis", "CRD_REDISOP_MODULE", "redisOperator"),
    ):
        out.append(
            Requirement(
                f"ServiceAccount {peer.namespace}/{peer.service_account} (operator)",
                None,
                _sa(peer.namespace, peer.service_account),
                f"{PROJECT}:data.clients.{key}: the data tier admits the operator by this identity",
                INSTALL[hint].format(version=_version(versions, pin))
                + f" into {peer.namespace}, or set {PROJECT}:data.clients.{key}",
            )
        )
    if s.data.storage_class:
        out.append(
            Requirement(
                f"StorageClass {s.data.storage_class}",
                None,
                (f"/apis/storage.k8s.io/v1/storageclasses/{s.data.storage_class}",),
                f"{PROJECT}:data.storageClass: the PostgreSQL and Redis volumes",
                "create it (e.g. an EBS CSI gp3 class on EKS), or set "
                f"{PROJECT}:data.storageClass to one the cluster has",
            )
        )
    out.append(
        Requirement(
            f"ServiceAccount {s.mesh.root_namespace}/{s.mesh.ingress_service_account} "
            "(ingress gateway)",
            None,
            _sa(s.mesh.root_namespace, s.mesh.ingress_service_account),
            f"{PROJECT}:mesh.ingressServiceAccount: the api admits the gateway by this identity",
            "install the Istio ingress gateway (istioctl install, or the gateway Helm chart)",
        )
    )
    return out


def missing(reqs: list[Requirement], crds: set[str], exists: Callable[[str], bool]) -> list[str]:
    """Pure: one message per unmet requirement (what, why, how to install)."""
    out = []
    for r in reqs:
        ok = r.crd in crds if r.crd is not None else any(exists(p) for p in r.paths)
        if not ok:
            out.append(f"missing {r.what} (needed by {r.why}): {r.install}")
    return out


class ClusterReader(Protocol):
    """What the preflight reads from a cluster."""

    def crd_names(self) -> set[str]: ...

    def exists(self, path: str) -> bool: ...

    def get_json(self, path: str) -> Any:
        """The object (or list) at ``path``; None when it does not exist."""
        ...


def node_group_problems(s: Settings, reader: ClusterReader) -> list[str]:
    """Pure decision over the cluster's nodes: every pool the stack sizes has nodes carrying
    its pool label in every configured zone, and the data pool's nodes carry the
    ``dedicated=data:NoSchedule`` taint. On an existing cluster the node groups set both (the
    program patches no node: components/cluster.py)."""
    from components.common import POOL_LABEL, ZONE_LABEL, pool_toleration

    nodes = (reader.get_json(f"/api/v1/nodes?labelSelector={POOL_LABEL}") or {}).get("items") or []
    out: list[str] = []
    for pool in s.cluster.pools:
        if pool.nodes == 0:
            continue
        mine = [
            n
            for n in nodes
            if ((n.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL) == pool.name
        ]
        zones = {((n.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL) for n in mine}
        lacking = [z for z in s.cluster.zones if z not in zones]
        if lacking:
            out.append(
                f"missing nodes labelled {POOL_LABEL}={pool.name} in zone(s) {', '.join(lacking)} "
                f"(needed by {PROJECT}:cluster.pools.{pool.name}): label the node group's nodes"
            )
        if pool.tainted:
            tol = pool_toleration(pool.name)
            untainted = sorted(
                str((n.get("metadata") or {}).get("name"))
                for n in mine
                if not any(
                    t.get("key") == tol["key"]
                    and t.get("value") == tol["value"]
                    and t.get("effect") == tol["effect"]
                    for t in (n.get("spec") or {}).get("taints") or []
                )
            )
            if untainted:
                out.append(
                    f"nodes of pool {pool.name} without the taint {tol['key']}={tol['value']}:"
                    f"{tol['effect']} ({', '.join(untainted)}): other workloads would land on "
                    "them; taint the node group"
                )
    return out


DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def default_storage_class_problems(reader: ClusterReader) -> list[str]:
    """One line when no StorageClass is the default: the volumes' claims, which name none,
    would stay Pending (recent EKS clusters ship without a default class)."""
    items = (reader.get_json("/apis/storage.k8s.io/v1/storageclasses") or {}).get("items") or []
    if any(
        ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS) == "true"
        for c in items
    ):
        return []
    return [
        f"missing a default StorageClass (needed by the PostgreSQL and Redis volumes, which "
        f"name none): set {PROJECT}:data.storageClass, or mark a class with {DEFAULT_CLASS}"
    ]


# --------------------------------------------------------------------------- webhooks vs mTLS

WEBHOOK_CONFIGS = (
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
)
PEER_AUTHENTICATIONS = "/apis/security.istio.io/v1/peerauthentications"
SIDECAR_CONTAINER = "istio-proxy"
EXCLUDE_INBOUND = "traffic.sidecar.istio.io/excludeInboundPorts"
INCLUDE_INBOUND = "traffic.sidecar.istio.io/includeInboundPorts"


def _port_set(value: str | None) -> set[int]:
    return {int(p) for p in (value or "").split(",") if p.strip().isdigit()}


def sidecar_captures(pod: Mapping[str, Any], port: int) -> bool:
    """Pure: whether the pod's Istio sidecar intercepts inbound traffic to ``port`` (the
    injector's includeInboundPorts, ``*`` by default, minus excludeInboundPorts)."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in [*spec.get("containers", []), *spec.get("initContainers", [])]]
    if SIDECAR_CONTAINER not in names:
        return False
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    if port in _port_set(ann.get(EXCLUDE_INBOUND)):
        return False
    include = str(ann.get(INCLUDE_INBOUND, "*")).strip()
    return include == "*" or port in _port_set(include)


def _selects(selector: Mapping[str, Any] | None, pod_labels: Mapping[str, str]) -> bool:
    want = (selector or {}).get("matchLabels") or {}
    return all(pod_labels.get(k) == v for k, v in want.items())


def mtls_mode(
    pod: Mapping[str, Any], port: int, peer_auths: list[Mapping[str, Any]], root_ns: str
) -> str:
    """Pure: the mTLS mode Istio applies to ``pod``'s inbound ``port``: a workload policy
    (selector; its portLevelMtls first) over the namespace's (no selector) over the mesh's
    (root namespace, no selector); PERMISSIVE when none (istio.io "PeerAuthentication")."""
    md = pod.get("metadata") or {}
    ns, pod_labels = md.get("namespace"), md.get("labels") or {}

    def mode(pa: Mapping[str, Any], with_ports: bool) -> str | None:
        spec = pa.get("spec") or {}
        if with_ports:
            port_mode = ((spec.get("portLevelMtls") or {}).get(str(port)) or {}).get("mode")
            if port_mode and port_mode != "UNSET":
                return str(port_mode)
        m = (spec.get("mtls") or {}).get("mode")
        return str(m) if m and m != "UNSET" else None

    in_ns = [pa for pa in peer_auths if (pa.get("metadata") or {}).get("namespace") == ns]
    workload = [pa for pa in in_ns if (pa.get("spec") or {}).get("selector")]
    for pa in workload:
        if _selects(pa["spec"]["selector"], pod_labels) and (m := mode(pa, True)):
            return m
    for scope in (
        in_ns,
        [pa for pa in peer_auths if (pa.get("metadata") or {}).get("namespace") == root_ns],
    ):
        for pa in scope:
            if not (pa.get("spec") or {}).get("selector") and (m := mode(pa, False)):
                return m
    return "PERMISSIVE"


def _target_port(svc: Mapping[str, Any], port: int, pod: Mapping[str, Any]) -> int | None:
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if sp.get("port") == port:
            tp = sp.get("targetPort", port)
            if isinstance(tp, int):
                return tp
            for c in (pod.get("spec") or {}).get("containers") or []:
                for cp in c.get("ports") or []:
                    if cp.get("name") == tp:
                        return int(cp["containerPort"])
    return None


def webhook_problems(
    reader: ClusterReader, root_ns: str, planned: Sequence[Mapping[str, Any]] = ()
) -> list[str]:
    """One line per admission webhook whose Service lands on a pod port that an Istio sidecar
    captures under STRICT mTLS: the API server calls webhooks without a mesh certificate, so
    every call fails (istio/istio#52874, cloudnative-pg#1245). ``planned``: the
    PeerAuthentications this stack is about to apply (a mesh-wide STRICT of ours counts)."""
    pas = list(((reader.get_json(PEER_AUTHENTICATIONS) or {}).get("items")) or []) + list(planned)
    out: list[str] = []
    for path in WEBHOOK_CONFIGS:
        for cfg in (reader.get_json(path) or {}).get("items") or []:
            for wh in cfg.get("webhooks") or []:
                ref = (wh.get("clientConfig") or {}).get("service")
                if not ref:
                    continue  # a URL webhook: outside the cluster's pods
                ns, name, port = ref["namespace"], ref["name"], int(ref.get("port", 443))
                svc = reader.get_json(f"/api/v1/namespaces/{ns}/services/{name}")
                if not svc:
                    continue
                sel = ",".join(
                    f"{k}={v}" for k, v in ((svc.get("spec") or {}).get("selector") or {}).items()
                )
                if not sel:
                    continue
                pods = (
                    reader.get_json(f"/api/v1/namespaces/{ns}/pods?labelSelector={sel}") or {}
                ).get("items") or []
                for pod in pods:
                    pod.setdefault("metadata", {}).setdefault("namespace", ns)
                    tp = _target_port(svc, port, pod)
                    if tp is None or not sidecar_captures(pod, tp):
                        continue
                    if mtls_mode(pod, tp, pas, root_ns) == "STRICT":
                        out.append(
                            f"webhook {cfg['metadata']['name']}/{wh.get('name')}: {ns}/{name}:{port} "
                            f"lands on port {tp} of pod {pod['metadata'].get('name')}, which its "
                            "Istio sidecar captures under STRICT mTLS and the API server (no mesh "
                            f'certificate) cannot pass; set {EXCLUDE_INBOUND}: "{tp}" on those '
                            f"pods, or run {ns} outside the mesh"
                        )
                        break
    return out


#: The apiserver's metadata-only view of a list (kubectl's server-side `get -o name` uses it).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class KubeApi:
    """A minimal read-only Kubernetes API client from a kubeconfig (no exec plugins)."""

    def __init__(self, kubeconfig: Mapping[str, Any], context: str | None = None) -> None:
        import requests

        ctx_name = context or kubeconfig.get("current-context")
        ctx = _named(kubeconfig, "contexts", ctx_name)["context"]
        cluster = _named(kubeconfig, "clusters", ctx["cluster"])["cluster"]
        user = _named(kubeconfig, "users", ctx["user"])["user"]
        if "exec" in user or "auth-provider" in user:
            raise SettingsError(
                f"{PROJECT}:cluster.preflight: kubeconfig user {ctx['user']!r} authenticates "
                "through an exec/auth-provider plugin, which the preflight does not run; use a "
                f"token or client certificate, or set {PROJECT}:cluster.preflight=false and "
                "check the README prerequisites by hand"
            )
        self.server = str(cluster["server"]).rstrip("/")
        self._tmp = tempfile.TemporaryDirectory(prefix="ce-preflight-")
        self.session = requests.Session()
        # passed with every request: a session-level verify loses to $REQUESTS_CA_BUNDLE
        self.verify: bool | str = True
        if cluster.get("insecure-skip-tls-verify"):
            self.verify = False
        elif "certificate-authority-data" in cluster:
            self.verify = self._file("ca.crt", cluster["certificate-authority-data"])
        elif "certificate-authority" in cluster:
            self.verify = str(cluster["certificate-authority"])
        if "client-certificate-data" in user:
            self.session.cert = (
                self._file("client.crt", user["client-certificate-data"]),
                self._file("client.key", user["client-key-data"]),
            )
        elif "client-certificate" in user:
            self.session.cert = (str(user["client-certificate"]), str(user["client-key"]))
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _file(self, name: str, b64: str) -> str:
        p = Path(self._tmp.name) / name
        p.write_bytes(base64.b64decode(b64))
        p.chmod(0o600)
        return str(p)

    def _get(self, path: str, accept: str | None = None) -> Any:
        headers = {"Accept": accept} if accept else None
        return self.session.get(self.server + path, timeout=15, verify=self.verify, headers=headers)

    def crd_names(self) -> set[str]:
        # names only: the full list carries every CRD's schema (4.4 MB locally, 0.3 s of each
        # `up`); an apiserver without the metadata view answers with the full list instead
        r = self._get(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            accept=f"{METADATA_LIST},application/json",
        )
        r.raise_for_status()
        return {i["metadata"]["name"] for i in r.json().get("items", [])}

    def exists(self, path: str) -> bool:
        r = self._get(path)
        if r.status_code == 404:
            return False
        r.raise_for_status()
        return True

    def get_json(self, path: str) -> Any:
        r = self._get(path)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()


def _named(kubeconfig: Mapping[str, Any], section: str, name: Any) -> Mapping[str, Any]:
    for item in kubeconfig.get(section) or []:
        if item.get("name") == name:
            return item  # type: ignore[no-any-return]
    raise SettingsError(f"kubeconfig: no {section[:-1]} named {name!r}")


def load_kubeconfig(provider_kubeconfig: str | None, env: Mapping[str, str]) -> Mapping[str, Any]:
    """The kubeconfig the kubernetes provider would use (its config value: a path or the
    document itself; else the first file in $KUBECONFIG; else ~/.kube/config)."""
    text: str | None = None
    if provider_kubeconfig:
        p = Path(os.path.expanduser(provider_kubeconfig))
        text = p.read_text() if "\n" not in provider_kubeconfig and p.is_file() else None
        text = text or provider_kubeconfig
    else:
        first = (env.get("KUBECONFIG") or "").split(os.pathsep)[0]
        p = Path(first) if first else Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
        if not p.is_file():
            raise SettingsError(
                f"{PROJECT}:cluster: no kubeconfig (kubernetes:kubeconfig unset, {p} missing); "
                "point KUBECONFIG or `pulumi config set kubernetes:kubeconfig` at the target cluster"
            )
        text = p.read_text()
    doc = yaml.safe_load(text)
    if not isinstance(doc, Mapping):
        raise SettingsError("kubernetes:kubeconfig: not a kubeconfig document")
    return doc


def check(s: Settings, reader: ClusterReader, versions: Mapping[str, str] | None = None) -> None:
    """Raise ``SettingsError`` naming everything the target cluster lacks."""
    reqs = requirements(s, versions if versions is not None else read_versions())
    problems = missing(reqs, reader.crd_names(), reader.exists)
    if s.cluster.mode == "existing":
        problems += node_group_problems(s, reader)
    if s.cluster.mode == "existing" and not s.data.storage_class:
        problems += default_storage_class_problems(reader)
    if s.cluster.mode == "existing" and s.mesh.dataplane == "cni":
        from components.mesh import peer_authentication_scopes

        planned = [
            {
                "metadata": {"namespace": pa_ns, "name": "default"},
                "spec": {"mtls": {"mode": "STRICT"}},
            }
            for _res, pa_ns in peer_authentication_scopes(s.mesh, s.namespaces)
        ]
        problems += webhook_problems(reader, s.mesh.root_namespace, planned)
    if problems:
        raise SettingsError(
            f"{PROJECT}:cluster: the target cluster is not ready for stack {s.stack!r}; "
            "nothing was registered:\n  " + "\n  ".join(problems)
        )


def cluster_preflight(s: Settings, env: Mapping[str, str]) -> None:
    """The target cluster has every CRD and prerequisite the stack needs."""
    from pulumi.runtime.config import get_config

    kubeconfig = load_kubeconfig(get_config("kubernetes:kubeconfig"), env)
    api = KubeApi(kubeconfig, get_config("kubernetes:context"))
    try:
        check(s, api)
    except OSError as e:  # requests' errors derive from OSError
        raise SettingsError(
            f"{PROJECT}:cluster: cannot read the target cluster at {api.server} for the "
            f"preflight: {e}"
        ) from None


def from_pulumi(s: Settings, env: Mapping[str, str] | None = None) -> None:
    """The running program's cluster preflight, before any resource is registered: skipped
    under Pulumi mocks and with ``claude-enhancer:cluster.preflight=false``."""
    from components import state

    if not state._under_mocks() and s.cluster.preflight:
        cluster_preflight(s, dict(os.environ) if env is None else env)
