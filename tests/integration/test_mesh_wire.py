"""What happens to each packet of the program's mesh under STRICT mTLS, read by Istio's own code.

Issue 23: np-guard (test_reachability.py) reads the policies as text; it cannot see a flow that
its AuthorizationPolicy allows but that never arrives as mTLS. Here every flow goes through the
Envoy configuration istiod generates for the rendered objects, by ``meshsim``
(platform/gomod/meshsim, built by ``platform/build.sh meshsim``): Istio's FakeDiscoveryServer
(pilot/test/xds) and traffic simulation (pilot/pkg/simulation), the harness of Istio's own xDS
tests, plus the Istio CNI plugin's reading of the ``traffic.sidecar.istio.io`` annotations.

The cluster: the program's objects (full program under mocks, phase 3: every pod exists) plus
what the operators create from its CRs (pods, Services, EndpointSlices), shaped as upstream
creates them, and the sidecar injector's label on every pod of an injected namespace.

The flows: every (source, destination, port) the program's AuthorizationPolicies allow, the
ports its NetworkPolicies open that no AuthorizationPolicy covers (meant to bypass the sidecar),
the Prometheus scrapes its ServiceMonitor/PodMonitors declare, and the calls the operators and
the API server make by themselves (UPSTREAM_CALLS).

The assertions: each intended flow is mTLS and allowed, or reaches a port the sidecar never
captures *and* that exclusion is justified (JUSTIFIED_EXCLUSIONS); each other (source,
destination, application port) is denied by the destination's sidecar.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import data as data_mod
from components import prometheus as prom
from components.settings import Settings
from tests.integration.test_reachability import _ints, connectivity
from tests.toolchain import platform_tool
from tests.unit.conftest import Capture, program_capture, settings_for

ROOT = Path(__file__).resolve().parents[2]
INJECTED = "security.istio.io/tlsMode"  # the label Istio's injector puts on a pod it injects
EXCLUDE_IN = "traffic.sidecar.istio.io/excludeInboundPorts"
#: Envoy's own listeners: istio-cni never redirects them (cni/pkg/plugin/sidecar_redirect.go)
ENVOY_PORTS = {15020: "merged metrics /stats/prometheus", 15090: "Envoy /stats/prometheus"}
ISTIO_KINDS = {
    "PeerAuthentication",
    "AuthorizationPolicy",
    "DestinationRule",
    "VirtualService",
    "Gateway",
    "Sidecar",
    "ServiceEntry",
}

#: the roles of the pods whose owners policies/exceptions.yaml admits a port exclusion on
EXCLUSION_OWNERS = {
    "redis.redis.opstreelabs.in/RedisCluster": "redis",
    "postgresql.cnpg.io/Cluster": "postgres",
}
#: (destination role, port) -> why the port may bypass the destination's sidecar (plaintext, no
#: mTLS, no AuthorizationPolicy; only NetworkPolicy guards it). An intended flow that arrives
#: uncaptured anywhere else fails: an exclusion nobody justified.
JUSTIFIED_EXCLUSIONS: dict[tuple[str, int], str] = {
    **{
        (r, p): f"Envoy's own port ({why}); Istio's documented scrape path under STRICT"
        for r in (
            "api",
            "workflow-engine",
            "agent-runtime",
            "postgres",
            "redis",
            "prometheus",
            "alertmanager",
            "redis-rotator",
        )
        for p, why in ENVOY_PORTS.items()
    },
    # the program's own exclusions: the policy pack's reviewed list, each with its reason
    **{
        (EXCLUSION_OWNERS[e["owner"]], port): " ".join(e["reason"].split())
        for e in yaml.safe_load((ROOT / "policies" / "exceptions.yaml").read_text())[
            "sidecarPortExclusions"
        ]
        for port in e["ports"]
    },
    ("cnpg-operator", 9443): "the API server calls the admission webhook from outside the mesh "
    "(istio/istio #52874)",
}


def meshsim_bin() -> str:
    return platform_tool("meshsim", "ISTIOCTL_VERSION", "meshsim")


def injector_config() -> Path:
    """The injector templates, values and mesh config the local platform's istiod serves."""
    render = (
        Path(platform_tool("istiod", "ISTIOCTL_VERSION", "pilot-discovery")).parents[1] / "render"
    )
    if not (render / "inject" / "config").is_file():
        pytest.fail(f"{render} missing: run `platform/build.sh istiod`", pytrace=False)
    return render


def inject_sidecars(w: World, tmp: Path) -> World:
    """The pods as the API server stores them: the ones the injector's webhook selects go
    through Istio's own injector (meshsim -inject: pkg/kube/inject with the platform's config)."""
    w = copy.deepcopy(w)
    todo = [p for p in w.pods if p.webhook]
    (tmp / "pods.yaml").write_text(yaml.safe_dump_all([p.doc for p in todo]))
    out = subprocess.run(
        [
            meshsim_bin(),
            "-inject",
            str(injector_config()),
            "-pods",
            str(tmp / "pods.yaml"),
            "-out",
            str(tmp / "injected.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    injected = [d for d in yaml.safe_load_all((tmp / "injected.yaml").read_text()) if d]
    assert len(injected) == len(todo), out.stderr[-4000:]
    for p, doc in zip(todo, injected):
        doc.pop("status", None)
        p.doc = doc
    return w


# ------------------------------------------------------------------ the cluster


@dataclass
class Pod:
    role: str
    doc: dict[str, Any]
    webhook: bool = False  # the API server sends it to Istio's injector (namespace or peer)

    @property
    def ns(self) -> str:
        return str(self.doc["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def key(self) -> str:
        return f"{self.ns}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.doc["metadata"].get("labels", {}))

    @property
    def sa(self) -> str:
        return str(self.doc["spec"].get("serviceAccountName", "default"))

    @property
    def injected(self) -> bool:
        return INJECTED in self.labels

    def container_ports(self) -> list[dict[str, Any]]:
        spec = self.doc["spec"]
        return [
            p
            for c in [*spec.get("initContainers", []), *spec["containers"]]
            for p in c.get("ports", [])
        ]

    def named_port(self, name: Any) -> int | None:
        return next(
            (int(p["containerPort"]) for p in self.container_ports() if p.get("name") == name), None
        )

    def ports(self) -> set[int]:
        """What the pod listens on: its containers' ports, and Envoy's when injected."""
        out = {int(p["containerPort"]) for p in self.container_ports()}
        return out | (set(ENVOY_PORTS) if self.injected else set())


@dataclass
class World:
    docs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    ns_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    stack: str = "local"
    program_ns: set[str] = field(default_factory=set)  # the namespaces the program declares

    def role_pods(self, role: str) -> list[Pod]:
        return [p for p in self.pods if p.role == role]

    def roles(self) -> list[str]:
        return sorted({p.role for p in self.pods})


def selects(sel: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels + matchExpressions)."""
    sel = sel or {}
    if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
        return False
    for e in sel.get("matchExpressions", []):
        has, val = e["key"] in labels, labels.get(e["key"])
        ok = {
            "In": has and val in e.get("values", []),
            "NotIn": not has or val not in e.get("values", []),
            "Exists": has,
            "DoesNotExist": not has,
        }[e["operator"]]
        if not ok:
            return False
    return True


def _container(ports: dict[str, int]) -> dict[str, Any]:
    return {
        "name": "main",
        "image": "x",
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()],
    }


def _service(
    ns: str, name: str, selector: dict[str, str], ports: dict[str, int], headless: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": selector,
        "ports": [
            {"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports.items()
        ],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _kind(r: Any) -> str:
    return str(r.inputs.get("kind") or r.typ.rsplit(":", 1)[-1])


def build_world(cap: Capture, s: Settings) -> World:
    """The program's objects + what the operators and the injector make of them."""
    w = World()
    ns = s.namespaces
    res = [r for r in cap.resources.values() if r.typ.startswith("kubernetes:")]
    for r in res:
        kind = _kind(r)
        if kind == "Namespace":
            md = r.inputs["metadata"]
            w.program_ns.add(md["name"])
            w.ns_labels[md["name"]] = {
                **md.get("labels", {}),
                "kubernetes.io/metadata.name": md["name"],
            }
        if kind in ISTIO_KINDS or kind in {
            "Service",
            "NetworkPolicy",
            "ServiceMonitor",
            "PodMonitor",
        }:
            doc = {
                "apiVersion": r.inputs.get("apiVersion")
                or {"Service": "v1", "NetworkPolicy": "networking.k8s.io/v1"}.get(kind, ""),
                "kind": kind,
                "metadata": r.inputs["metadata"],
                "spec": r.inputs.get("spec", {}),
            }
            w.docs.append(_ints(json.loads(json.dumps(doc))))

    def pod(
        role: str,
        pns: str,
        name: str,
        labels: dict[str, str],
        sa: str,
        annotations: dict[str, str] | None,
        ports: dict[str, int],
        injected: bool | None = None,
    ) -> None:
        if injected is None:  # the injector's webhook selects the namespace's pods
            injected = w.ns_labels.get(pns, {}).get("istio-injection") == "enabled"
        annotations = dict(annotations or {})
        doc = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": pns,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {"serviceAccountName": sa, "containers": [_container(ports)]},
        }
        w.pods.append(Pod(role, _ints(json.loads(json.dumps(doc))), webhook=injected))

    # the program's Deployments (one pod each) and the rotator CronJob's pod
    for r in res:
        kind = _kind(r)
        if kind == "Deployment":
            tpl = r.inputs["spec"]["template"]
            c = tpl["spec"]["containers"][0]
            pod(
                tpl["metadata"]["labels"]["app.kubernetes.io/name"],
                r.inputs["metadata"]["namespace"],
                f"{r.inputs['metadata']['name']}-0",
                tpl["metadata"]["labels"],
                tpl["spec"]["serviceAccountName"],
                tpl["metadata"].get("annotations"),
                {p["name"]: int(p["containerPort"]) for p in c.get("ports", [])},
            )
        if kind == "CronJob":
            tpl = r.inputs["spec"]["jobTemplate"]["spec"]["template"]
            pod(
                "redis-rotator",
                r.inputs["metadata"]["namespace"],
                f"{r.inputs['metadata']['name']}-job",
                tpl["metadata"]["labels"],
                tpl["spec"]["serviceAccountName"],
                tpl["metadata"].get("annotations"),
                {},
            )
    crs = {
        _kind(r): r.inputs
        for r in res
        if _kind(r) in {"Cluster", "RedisCluster", "Prometheus", "Alertmanager"}
    }
    # cloudnative-pg 1.27: instance pods carry cnpg.io/cluster + instanceRole, run as the
    # Cluster-named SA, get spec.inheritedMetadata; ports postgresql 5432, status 8000,
    # metrics 9187; Services -rw/-ro/-r on 5432 (pkg/specs/services.go)
    pg = crs["Cluster"]
    inh = pg["spec"].get("inheritedMetadata", {})
    for i, role in ((1, "primary"), (2, "replica"), (3, "replica")):
        labels = {
            **inh.get("labels", {}),
            **data_mod.PG_PODS,
            "cnpg.io/instanceRole": role,
            "role": role,
            "cnpg.io/podRole": "instance",
        }
        pod(
            "postgres",
            ns.data,
            f"{data_mod.PG_NAME}-{i}",
            labels,
            data_mod.PG_SERVICE_ACCOUNT,
            inh.get("annotations"),
            {
                "postgresql": data_mod.PG_PORT,
                "status": data_mod.CNPG_STATUS_PORT,
                "metrics": data_mod.CNPG_METRICS_PORT,
            },
        )
    if pg["spec"].get("monitoring", {}).get("enablePodMonitor"):
        # pkg/specs/podmonitor.go: a PodMonitor named after the Cluster, port "metrics"
        w.docs.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PodMonitor",
                "metadata": {"name": data_mod.PG_NAME, "namespace": ns.data},
                "spec": {
                    "selector": {"matchLabels": dict(data_mod.PG_PODS)},
                    "podMetricsEndpoints": [{"port": "metrics"}],
                },
            }
        )
    pgp = {"postgres": data_mod.PG_PORT}
    w.services += [
        _service(
            ns.data,
            f"{data_mod.PG_NAME}-rw",
            {**data_mod.PG_PODS, "cnpg.io/instanceRole": "primary"},
            pgp,
        ),
        _service(
            ns.data,
            f"{data_mod.PG_NAME}-ro",
            {**data_mod.PG_PODS, "cnpg.io/instanceRole": "replica"},
            pgp,
        ),
        _service(ns.data, f"{data_mod.PG_NAME}-r", dict(data_mod.PG_PODS), pgp),
    ]
    # redis-operator v0.16.0: pods get the CR's annotations (k8sutils/labels.go
    # generateStatefulSetsAnots), labels app/redis_setup_type/role; per role a ClusterIP,
    # a headless and an -additional Service on 6379 (k8sutils/services.go); the bus 16379
    # has no Service
    rc = crs["RedisCluster"]
    for role in ("leader", "follower"):
        sel = {"app": f"{data_mod.REDIS_NAME}-{role}", "redis_setup_type": "cluster", "role": role}
        for i in range(s.data.redis.masters):
            pod(
                "redis",
                ns.data,
                f"{data_mod.REDIS_NAME}-{role}-{i}",
                sel,
                data_mod.REDIS_NAME,
                rc["metadata"].get("annotations"),
                {"redis-client": data_mod.REDIS_PORT, "redis-bus": data_mod.REDIS_BUS_PORT},
            )
        base = f"{data_mod.REDIS_NAME}-{role}"
        rp = {"redis-client": data_mod.REDIS_PORT}
        w.services += [
            _service(ns.data, base, sel, rp),
            _service(ns.data, f"{base}-headless", sel, rp, True),
            _service(ns.data, f"{base}-additional", sel, rp),
        ]
    # prometheus-operator: StatefulSet pods with the CR's podMetadata + its selector labels;
    # governing headless Services prometheus-operated / alertmanager-operated
    for app, n, pods, sa, ports in (
        (
            "prometheus",
            prom.PROMETHEUS_REPLICAS,
            prom.PROMETHEUS_PODS,
            prom.PROMETHEUS_SA,
            {"web": 9090},
        ),
        (
            "alertmanager",
            prom.ALERTMANAGER_REPLICAS,
            prom.ALERTMANAGER_PODS,
            prom.ALERTMANAGER_SA,
            {"web": prom.ALERTMANAGER_PORT, "mesh-tcp": prom.ALERTMANAGER_MESH_PORT},
        ),
    ):
        pm = crs[app.capitalize()]["spec"].get("podMetadata", {})
        labels = {
            **pm.get("labels", {}),
            **pods,
            "app.kubernetes.io/managed-by": "prometheus-operator",
            app: prom.NAME,
        }
        for i in range(n):
            pod(
                app,
                ns.monitoring,
                f"{app}-{prom.NAME}-{i}",
                labels,
                sa,
                pm.get("annotations"),
                ports,
            )
        w.services.append(_service(ns.monitoring, f"{app}-operated", {app: prom.NAME}, ports, True))
    # the peers the AuthorizationPolicies name by principal: inside the mesh (a principal is a
    # sidecar's certificate); the CNPG operator serves its admission webhook on 9443
    cl = s.data.clients
    for pns, sa, role, ports in (
        (
            cl.cnpg_operator.namespace,
            cl.cnpg_operator.service_account,
            "cnpg-operator",
            {"webhook": 9443},
        ),
        (cl.redis_operator.namespace, cl.redis_operator.service_account, "redis-operator", {}),
        (cl.vault.namespace, cl.vault.service_account, "vault", {"http": 8200}),
        (s.mesh.root_namespace, s.mesh.ingress_service_account, "gateway", {}),
    ):
        w.ns_labels.setdefault(pns, {"kubernetes.io/metadata.name": pns})
        # as a deploy admits them: a webhook port under STRICT must bypass the sidecar (the
        # preflight refuses a cluster where the API server's call would meet it)
        ann = {EXCLUDE_IN: str(ports["webhook"])} if "webhook" in ports else None
        pod(role, pns, f"{role}-0", {"ce-test/role": role}, sa, ann, ports, injected=True)
    w.services.append(
        _service(
            cl.cnpg_operator.namespace,
            "cnpg-webhook-service",
            {"ce-test/role": "cnpg-operator"},
            {"webhook": 9443},
        )
    )
    return w


def cluster_yaml(w: World) -> str:
    """Namespaces, pods (with IPs), Services (with ClusterIPs), EndpointSlices, Istio config."""
    pod_ips = ipaddress.ip_network("10.244.0.0/16").hosts()
    svc_ips = ipaddress.ip_network("10.96.0.0/16").hosts()
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
        for n, labels in w.ns_labels.items()
    ]
    ips: dict[str, str] = {}
    for p in w.pods:
        ip = str(next(pod_ips))
        ips[p.key] = ip
        p.doc["status"] = {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        docs.append(p.doc)
    services = w.services + [d for d in w.docs if d["kind"] == "Service"]
    for svc in services:
        svc = json.loads(json.dumps(svc))
        if svc["spec"].get("clusterIP") != "None":
            svc["spec"]["clusterIP"] = str(next(svc_ips))
        md = svc["metadata"]
        docs.append(svc)
        # what Kubernetes' EndpointSlice controller makes of it
        members = [
            p
            for p in w.pods
            if p.ns == md["namespace"]
            and svc["spec"].get("selector")
            and selects({"matchLabels": svc["spec"]["selector"]}, p.labels)
        ]
        ports = []
        for sp in svc["spec"]["ports"]:
            tp = sp.get("targetPort", sp["port"])
            if isinstance(tp, str):
                tp = (members[0].named_port(tp) if members else None) or sp["port"]
            ports.append({"name": sp.get("name", ""), "port": tp, "protocol": "TCP"})
        docs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{md['name']}-x",
                    "namespace": md["namespace"],
                    "labels": {"kubernetes.io/service-name": md["name"]},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [ips[m.key]],
                        "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "name": m.name, "namespace": m.ns},
                    }
                    for m in members
                ],
                "ports": ports,
            }
        )
    docs += [d for d in w.docs if d["kind"] in ISTIO_KINDS]
    return str(yaml.safe_dump_all(docs, sort_keys=False))


# ------------------------------------------------------------------ the flows


@dataclass(frozen=True)
class Intent:
    src: str
    dst: str
    port: int


@dataclass
class Call:
    """One intended (or sampled) call and how its client makes it."""

    src: Pod | None  # None: the API server
    dst: Pod
    port: int  # the destination pod's port
    why: list[str]
    protocol: str = "tcp"
    app_tls: bool = False
    app_mtls: bool = False  # the client speaks Istio mTLS itself (Prometheus with Istio's certs)
    path: str = ""
    by_pod_ip: bool = False  # the client dials the pod IP (no Service) whatever Services exist

    @property
    def src_role(self) -> str:
        return self.src.role if self.src else "kube-apiserver"

    @property
    def name(self) -> str:
        s = self.src.key if self.src else "kube-apiserver"
        return f"{self.src_role} ({s}) -> {self.dst.role} ({self.dst.key}) :{self.port}{self.path}"


HTTP_PORTS = {
    8080,
    9090,
    prom.ALERTMANAGER_PORT,
    data_mod.CNPG_METRICS_PORT,
    15020,
    15090,
    8000,
    9443,
    8200,
}
#: calls the clients make by themselves, not through a Service: (source role, destination role,
#: port) -> (protocol, the client's own TLS, path, reason)
UPSTREAM_CALLS: dict[tuple[str, str, int], tuple[str, bool, str, str]] = {
    ("cnpg-operator", "postgres", data_mod.CNPG_STATUS_PORT): (
        "http",
        True,
        "/pg/status",
        "cloudnative-pg 1.27 pkg/management/postgres/webserver/client: https://<pod IP>:8000/pg/status",
    ),
    ("postgres", "postgres", data_mod.CNPG_STATUS_PORT): (
        "http",
        True,
        "/pg/status",
        "instance managers query each other's status API by pod IP",
    ),
    ("redis", "redis", data_mod.REDIS_BUS_PORT): (
        "tcp",
        False,
        "",
        "Redis Cluster bus: node to node by the pod IPs CLUSTER MEET recorded",
    ),
    ("redis", "redis", data_mod.REDIS_PORT): (
        "tcp",
        False,
        "",
        "replication + MOVED redirects go to the pod IPs of CLUSTER NODES",
    ),
    ("redis-operator", "redis", data_mod.REDIS_PORT): (
        "tcp",
        False,
        "",
        "redis-operator k8sutils/redis.go dials each pod's IP",
    ),
    ("prometheus", "alertmanager", prom.ALERTMANAGER_PORT): (
        "http",
        False,
        "/api/v2/alerts",
        "prometheus-operator's alerting config discovers alertmanager-operated's endpoints: pod IPs",
    ),
    ("alertmanager", "alertmanager", prom.ALERTMANAGER_MESH_PORT): (
        "tcp",
        False,
        "",
        "memberlist gossip to the peers' pod addresses",
    ),
    ("kube-apiserver", "cnpg-operator", 9443): (
        "http",
        True,
        "/validate-postgresql-cnpg-io-v1-cluster",
        "the API server calls CNPG's webhook",
    ),
}


def _principal_pods(w: World, principal: str) -> list[Pod]:
    # cluster.local/ns/<ns>/sa/<sa>: the pods whose sidecar certificate carries it
    parts = principal.split("/")
    return [p for p in w.pods if p.injected and p.ns == parts[2] and p.sa == parts[4]]


def intended_calls(w: World) -> dict[Intent, Call]:
    """The flow table: the program's own AuthorizationPolicies and NetworkPolicies, its
    monitors' scrapes, and UPSTREAM_CALLS; one representative pod pair per role pair."""
    table: dict[Intent, Call] = {}

    def add(
        srcs: Iterable[Pod | None], dsts: Iterable[Pod], port: int, why: str, **kw: Any
    ) -> None:
        srcs, dsts = list(srcs), list(dsts)
        for d in dsts:
            if port not in d.ports():
                continue
            for s in srcs:
                if s is d:
                    continue
                k = Intent(s.role if s else "kube-apiserver", d.role, port)
                if k in table:
                    if why not in table[k].why:
                        table[k].why.append(why)
                    continue
                up = UPSTREAM_CALLS.get((k.src, k.dst, port))
                c = Call(s, d, port, [why], protocol="http" if port in HTTP_PORTS else "tcp")
                if up:
                    c.protocol, c.app_tls, c.path, _ = up
                    c.by_pod_ip = True
                    c.why.append(up[3])
                for key, val in kw.items():
                    setattr(c, key, val)
                table[k] = c

    aps = [d for d in w.docs if d["kind"] == "AuthorizationPolicy"]
    ap_ports: dict[str, set[int]] = {}  # destination pod key -> the ports some AP names
    for ap in aps:
        spec, apns = ap["spec"], ap["metadata"]["namespace"]
        if spec.get("action", "ALLOW") != "ALLOW" or not spec.get("rules"):
            continue
        dsts = [p for p in w.pods if p.ns == apns and selects(spec.get("selector"), p.labels)]
        for rule in spec["rules"]:
            srcs = [
                p
                for f in rule.get("from", [])
                for pr in f["source"].get("principals", [])
                for p in _principal_pods(w, pr)
            ]
            for to in rule.get("to", []):
                op = to.get("operation", {})
                for port in map(int, op.get("ports", [])):
                    for d in dsts:
                        ap_ports.setdefault(d.key, set()).add(port)
                    path = op.get("paths", [""])[0]
                    add(
                        srcs,
                        dsts,
                        port,
                        f"AuthorizationPolicy {apns}/{ap['metadata']['name']}",
                        **({"path": path, "by_pod_ip": True} if path else {}),
                    )
    # NetworkPolicy ingress ports no AuthorizationPolicy covers: meant to bypass the sidecar
    for np_ in (d for d in w.docs if d["kind"] == "NetworkPolicy"):
        npns = np_["metadata"]["namespace"]
        dsts = [
            p for p in w.pods if p.ns == npns and selects(np_["spec"].get("podSelector"), p.labels)
        ]
        for rule in np_["spec"].get("ingress", []):
            ports = [int(p["port"]) for p in rule.get("ports", []) if "port" in p]
            peers = rule.get("from", [])
            if not ports or not peers:
                continue
            srcs = [
                p
                for peer in peers
                for p in w.pods
                if "ipBlock" not in peer
                # a peer without a namespaceSelector is in the policy's own namespace
                and (
                    selects(peer["namespaceSelector"], w.ns_labels.get(p.ns, {}))
                    if "namespaceSelector" in peer
                    else p.ns == npns
                )
                and selects(peer.get("podSelector"), p.labels)
            ]
            for port in ports:
                uncovered = [d for d in dsts if port not in ap_ports.get(d.key, set())]
                add(
                    srcs,
                    uncovered,
                    port,
                    f"NetworkPolicy {npns}/{np_['metadata']['name']}",
                    by_pod_ip=True,
                    path="/stats/prometheus" if port in ENVOY_PORTS else "",
                )
    for (src, dst, port), _up in UPSTREAM_CALLS.items():
        add(
            w.role_pods(src) if src != "kube-apiserver" else [None],
            w.role_pods(dst),
            port,
            "upstream call",
        )
    for c in scrape_calls(w):
        k = Intent(c.src_role, c.dst.role, c.port)
        if k in table:
            table[k].why.extend(x for x in c.why if x not in table[k].why)
        else:
            table[k] = c
    return table


def scrape_calls(w: World) -> list[Call]:
    """The scrapes the program's ServiceMonitors / PodMonitors declare: Prometheus dials each
    target pod's IP (prometheus-operator generates endpoints/pod role jobs)."""
    out: list[Call] = []
    proms = w.role_pods("prometheus")
    if not proms:
        return out
    for d in w.docs:
        if d["kind"] not in {"ServiceMonitor", "PodMonitor"}:
            continue
        spec = d["spec"]
        names = spec.get("namespaceSelector", {}).get("matchNames", [d["metadata"]["namespace"]])
        targets: list[tuple[Pod, dict[str, Any]]] = []
        if d["kind"] == "ServiceMonitor":
            for svc in (x for x in w.docs + w.services if x["kind"] == "Service"):
                if svc["metadata"]["namespace"] in names and selects(
                    spec["selector"], svc["metadata"].get("labels", {})
                ):
                    for p in w.pods:
                        if p.ns == svc["metadata"]["namespace"] and selects(
                            {"matchLabels": svc["spec"]["selector"]}, p.labels
                        ):
                            targets += [(p, ep) for ep in spec.get("endpoints", [])]
        else:
            targets = [
                (p, ep)
                for p in w.pods
                if p.ns in names and selects(spec["selector"], p.labels)
                for ep in spec.get("podMetricsEndpoints", [])
            ]
        seen: set[tuple[str, int]] = set()
        for p, ep in targets:
            port = scrape_port(p, ep)
            if port is None or (p.role, port) in seen:
                continue
            seen.add((p.role, port))
            out.append(
                Call(
                    proms[0],
                    p,
                    int(port),
                    [f"{d['kind']} {d['metadata']['name']}"],
                    "http",
                    path=ep.get("path", "/metrics"),
                    by_pod_ip=True,
                    app_tls=ep.get("scheme") == "https",
                    app_mtls=ep.get("scheme") == "https" and istio_certs(ep),
                )
            )
    return out


def scrape_port(p: Pod, ep: dict[str, Any]) -> int | None:
    """The pod port a monitor endpoint scrapes, after the relabelings that choose or drop the
    target (the shape of Istio's own envoy-stats PodMonitor, samples/addons/extras/
    prometheus-operator.yaml: keep the istio-proxy container, keep pods with prometheus.io/scrape,
    address from the prometheus.io/port annotation the injector rewrites to 15020). A relabeling
    of the address this reader does not know fails the test rather than guess."""
    ann = p.doc["metadata"].get("annotations", {})
    containers = [
        c["name"] for c in [*p.doc["spec"].get("initContainers", []), *p.doc["spec"]["containers"]]
    ]
    port = ep.get("portNumber") or ep.get("targetPort")
    if not isinstance(port, int):
        port = p.named_port(ep.get("port") or port)
    for r in ep.get("relabelings", []):
        src, action = r.get("sourceLabels", []), r.get("action", "replace")
        if action == "keep" and src == ["__meta_kubernetes_pod_container_name"]:
            if not any(re.fullmatch(r.get("regex", "(.*)"), c) for c in containers):
                return None
        elif (
            action == "keep"
            and len(src) == 1
            and src[0].startswith("__meta_kubernetes_pod_annotationpresent_")
        ):
            key = src[0].removeprefix("__meta_kubernetes_pod_annotationpresent_")
            if not any(re.sub(r"[^a-zA-Z0-9_]", "_", k) == key for k in ann):
                return None
        elif r.get("targetLabel") == "__address__":
            if "__meta_kubernetes_pod_annotation_prometheus_io_port" not in src:
                pytest.fail(f"scrape relabeling of __address__ not read here: {r}", pytrace=False)
            if "prometheus.io/port" in ann:
                port = int(ann["prometheus.io/port"])
    return port


def istio_certs(ep: dict[str, Any]) -> bool:
    """A scrape that presents the workload certificate Istio's sidecar writes for Prometheus
    (Istio's docs, "Prometheus: TLS settings": /etc/prom-certs/{root-cert,cert-chain,key}.pem)."""
    tls = ep.get("tlsConfig", {})
    return any("/etc/prom-certs/" in str(tls.get(k, "")) for k in ("caFile", "certFile", "keyFile"))


def flows_json(w: World, calls: Iterable[Call]) -> list[dict[str, Any]]:
    out = []
    for c in calls:
        f: dict[str, Any] = {
            "name": c.name,
            "dest_pod": c.dst.key,
            "port": c.port,
            "protocol": c.protocol,
            "app_tls": c.app_tls,
            "app_mtls": c.app_mtls,
            "path": c.path,
        }
        if c.src:
            f["source_pod"] = c.src.key
        else:
            f["source_ip"] = "172.18.0.2"
        if not c.by_pod_ip:
            # the client names a Service: the program's own first, then the operators'
            for svc in [d for d in w.docs if d["kind"] == "Service"] + w.services:
                md, spec = svc["metadata"], svc["spec"]
                if md["namespace"] != c.dst.ns or not selects(
                    {"matchLabels": spec.get("selector", {})}, c.dst.labels
                ):
                    continue
                hit = [
                    sp
                    for sp in spec["ports"]
                    if sp.get("targetPort", sp["port"])
                    in (
                        c.port,
                        next(
                            (
                                x["name"]
                                for x in c.dst.container_ports()
                                if x["containerPort"] == c.port
                            ),
                            None,
                        ),
                    )
                ]
                if hit:
                    f["service"] = f"{md['name']}.{md['namespace']}"
                    f["port"] = hit[0]["port"]
                    break
        out.append(f)
    return out


def simulate(w: World, calls: list[Call], tmp: Path) -> dict[str, dict[str, Any]]:
    (tmp / "objects.yaml").write_text(cluster_yaml(w))
    (tmp / "flows.json").write_text(json.dumps(flows_json(w, calls), indent=1))
    out = subprocess.run(
        [
            meshsim_bin(),
            "-objects",
            str(tmp / "objects.yaml"),
            "-flows",
            str(tmp / "flows.json"),
            "-out",
            str(tmp / "verdicts.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    verdicts = json.loads((tmp / "verdicts.json").read_text())
    return {v["name"]: v for v in verdicts}


# ------------------------------------------------------------------ the judgement


def explain(c: Call, v: dict[str, Any]) -> str:
    cl = v["client"]
    via = (
        f"client sidecar -> {cl.get('cluster') or 'n/a'} ({cl['wire']})"
        if cl["captured"]
        else (f"client sends {cl['wire']} itself" + ("" if cl["sidecar"] else " (no sidecar)"))
    )
    return f"{c.name} [{'; '.join(c.why)}]: {v['outcome']}: {v['detail']}; {via}"


def judge_intended(table: dict[Intent, Call], verdicts: dict[str, dict[str, Any]]) -> list[str]:
    bad = []
    for k, c in sorted(table.items(), key=lambda kv: kv[1].name):
        v = verdicts[c.name]
        if v["outcome"] == "mtls-allowed":
            continue
        if v["outcome"] == "not-captured" and (k.dst, k.port) in JUSTIFIED_EXCLUSIONS:
            continue
        why = "" if v["outcome"] != "not-captured" else " (a port exclusion nobody justified)"
        bad.append(explain(c, v) + why)
    return bad


def sample_unintended(w: World, table: dict[Intent, Call]) -> list[Call]:
    """The complement on application ports, into the program's namespaces: each (source role,
    destination role, port the destination listens on) the table does not hold, one pod pair
    each, called by Service where one covers the port."""
    out = []
    for src in w.roles():
        for dst in w.roles():
            d = w.role_pods(dst)[0]
            if d.ns not in w.program_ns:
                continue
            s = next((p for p in w.role_pods(src) if p is not d), None)
            if s is None or not s.injected:
                continue
            for port in sorted(d.ports() - set(ENVOY_PORTS)):
                if Intent(src, dst, port) in table:
                    continue
                out.append(
                    Call(s, d, port, ["not intended"], "http" if port in HTTP_PORTS else "tcp")
                )
    return out


def judge_unintended(
    calls: list[Call], verdicts: dict[str, dict[str, Any]], w: World, tmp: Path
) -> list[str]:
    """Denied by the destination's sidecar; or, on a port the sidecar never sees, by the
    NetworkPolicies alone (np-guard's reading of them, as in test_reachability.py)."""
    denied = {"mtls-denied", "plaintext-denied", "tls-denied", "rejected"}
    bad: list[tuple[Call, dict[str, Any]]] = []
    bypass: list[tuple[Call, dict[str, Any]]] = []
    for c in calls:
        v = verdicts[c.name]
        if v["outcome"] in denied:
            continue
        (bypass if v["outcome"] == "not-captured" else bad).append((c, v))
    if bypass:
        allowed = network_policy_ports(w, tmp)
        bad += [(c, v) for c, v in bypass if allowed(c.src_role, c.dst.role, c.port)]
    return [
        explain(c, v) + (" and no NetworkPolicy stops it" if v["outcome"] == "not-captured" else "")
        for c, v in bad
    ]


def network_policy_ports(w: World, tmp: Path) -> Any:
    """np-guard's connectivity of the world's NetworkPolicies alone (no AuthorizationPolicy:
    nothing of Istio applies to an uncaptured port): (src role, dst role, port) -> allowed."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
        for n, labels in w.ns_labels.items()
    ]
    docs += [{k: v for k, v in p.doc.items() if k != "status"} for p in w.pods]
    docs += [d for d in w.docs if d["kind"] == "NetworkPolicy"]
    by_key = {p.key: p.role for p in w.pods}
    found = connectivity(docs, tmp, by_key.get)

    def allowed(src: str, dst: str, port: int) -> bool:
        for conn in found.get((src, dst), []):
            if conn.startswith("All"):
                return True
            m = re.search(r"dst_ports:(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)", conn)
            for part in m.group(1).split(",") if m else []:
                lo, _, hi = part.partition("-")
                if int(lo) <= port <= int(hi or lo):
                    return True
        return False

    return allowed


def run_check(w: World, tmp: Path) -> tuple[list[str], list[str], list[str], dict[Intent, Call]]:
    w = inject_sidecars(w, tmp)
    table = intended_calls(w)
    extra = sample_unintended(w, table)
    verdicts = simulate(w, [*table.values(), *extra], tmp)
    coverage = [
        f"no Envoy stats scrape of {p.role} ({p.key}): nothing scrapes 15020 /stats/prometheus or 15090, "
        "so istio_requests_total never reaches Prometheus"
        for role in ("api", "workflow-engine", "agent-runtime")
        for p in w.role_pods(role)[:1]
        if not any(c.dst.role == role and c.port in ENVOY_PORTS for c in scrape_calls(w))
    ]
    return (
        judge_intended(table, verdicts),
        judge_unintended(extra, verdicts, w, tmp),
        coverage,
        table,
    )


def program_world(stack: str) -> World:
    w = build_world(program_capture(stack, 3), settings_for(stack, phase=3))
    w.stack = stack
    return w


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_every_intended_flow_is_mtls_and_allowed_or_a_justified_exclusion(
    stack: str, tmp_path: Path
) -> None:
    bad, _, coverage, _ = run_check(program_world(stack), tmp_path)
    assert coverage == [], "\n  ".join(coverage)
    assert bad == [], "intended flows that do not work under STRICT mTLS:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_every_unintended_flow_is_denied(stack: str, tmp_path: Path) -> None:
    _, bad, _, _ = run_check(program_world(stack), tmp_path)
    assert bad == [], "flows the program does not intend that get through:\n  " + "\n  ".join(bad)


# ------------------------------------------------------------------ defects 1, 2 and 5 brought back

APP_SCRAPE: dict[
    str, Any
] = {  # the program's ServiceMonitor as issue 23 found it: the app's 8080 /metrics
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "claude-enhancer-8080"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/component": "service"}},
        "endpoints": [{"port": "http", "path": "/metrics"}],
    },
}


def strip_exclusions(w: World, *roles: str) -> World:
    """The pods of ``roles`` (all when none) without any traffic.sidecar.istio.io annotation."""
    w = copy.deepcopy(w)
    for p in w.pods:
        if roles and p.role not in roles:
            continue
        ann = p.doc["metadata"]["annotations"]
        for k in [k for k in ann if k.startswith("traffic.sidecar.istio.io/")]:
            del ann[k]
    return w


def scrape_app_port(w: World) -> World:
    """Prometheus scraping the app's 8080 as issue 23 found it, and no monitor of Envoy's stats."""
    w = copy.deepcopy(w)
    keep = []
    for d in w.docs:
        eps = d["spec"].get("endpoints") or d["spec"].get("podMetricsEndpoints") or []
        if d["kind"] in {"ServiceMonitor", "PodMonitor"} and any(
            e.get("portNumber") in ENVOY_PORTS
            or e.get("targetPort") in ENVOY_PORTS
            or str(e.get("port", "")).startswith("http-envoy")
            or e.get("path") == "/stats/prometheus"
            for e in eps
        ):
            continue
        keep.append(d)
    w.docs = keep
    sm = copy.deepcopy(APP_SCRAPE)
    sm["metadata"]["namespace"] = w.role_pods("api")[0].ns
    sm["spec"]["namespaceSelector"] = {"matchNames": [sm["metadata"]["namespace"]]}
    w.docs.append(sm)
    return w


#: issue 23's defects, one at a time: how to bring it back onto the fixed wire, and the flow
#: (source role, destination role, port, evidence in the verdict) the check must then name
ONE_AT_A_TIME: dict[str, tuple[Any, tuple[str, str, int, str]]] = {
    "1 Redis cluster bus": (
        lambda w: strip_exclusions(w, "redis"),
        ("redis", "redis", data_mod.REDIS_BUS_PORT, "PassthroughCluster (plaintext)"),
    ),
    "2 CNPG status API": (
        lambda w: strip_exclusions(w, "postgres"),
        ("cnpg-operator", "postgres", data_mod.CNPG_STATUS_PORT, "refuses tls on port 8000"),
    ),
    "2 CNPG webhook": (
        lambda w: strip_exclusions(w, "cnpg-operator"),
        ("kube-apiserver", "cnpg-operator", 9443, "refuses tls on port 9443"),
    ),
    "5 Prometheus scrape": (
        scrape_app_port,
        ("prometheus", "api", 8080, "PassthroughCluster (plaintext)"),
    ),
}


@pytest.mark.parametrize("defect", sorted(ONE_AT_A_TIME))
def test_reintroducing_a_defect_fails_the_check(defect: str, tmp_path: Path) -> None:
    """From the program's wire (green: the tests above), one of issue 23's defects back: the
    check names its flow, rejected by the destination's sidecar."""
    change, (src, dst, port, evidence) = ONE_AT_A_TIME[defect]
    bad, _, coverage, _ = run_check(change(program_world("local")), tmp_path)
    text = "\n".join(bad + coverage)
    hit = [b for b in bad if b.startswith(f"{src} (") and f"-> {dst} (" in b and f" :{port}" in b]
    assert hit and "rejected" in hit[0] and evidence in hit[0], text
    if defect.startswith("5"):  # and nothing scrapes Envoy: istio_requests_total is absent
        assert any("no Envoy stats scrape of api" in c for c in coverage), text


def test_the_rbac_reading_sees_a_missing_allow(tmp_path: Path) -> None:
    """The sidecar's RBAC is really consulted: without the Redis peers' ALLOW, replication
    between the nodes (an upstream call, intended whatever the policies say) arrives as mTLS
    and the deny-all policy refuses it."""
    w = program_world("local")
    w.docs = [d for d in w.docs if d["metadata"].get("name") != "allow-redis-peers"]
    bad, _, _, _ = run_check(w, tmp_path)
    repl = [b for b in bad if b.startswith("redis (") and "-> redis (" in b and " :6379 " in b]
    assert repl and "mtls-denied" in repl[0] and "headless" in repl[0], "\n".join(bad)


def test_the_flow_table_holds_the_reviewed_intent(tmp_path: Path) -> None:
    """The table derived from the objects covers test_reachability's reviewed list of intended
    flows (one list of intent; this check adds the wire to it)."""
    from tests.integration.test_reachability import INTENDED

    table = intended_calls(inject_sidecars(program_world("prod"), tmp_path))
    missing = [
        (src, dst, int(p))
        for (src, dst), conns in INTENDED.items()
        for conn in conns
        for p in re.search(r"dst_ports:(\d+(?:,\d+)*)", conn).group(1).split(",")  # type: ignore[union-attr]
        if Intent(src, dst, int(p)) not in table
    ]
    assert missing == []
