"""Cluster component: node pools, namespaces and per-namespace guard rails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import capacity, flows, prometheus
from components.common import POOL_LABEL, ZONE_LABEL, child, meta, no_default_token
from components.data import HBONE_PORT, PG_PODS, data_containers
from components.redis_rotation import ROTATOR_PODS
from components.settings import (
    AppSettings,
    ClusterSettings,
    DataSettings,
    Namespaces,
    Peer,
    ResourceSettings,
)

#: PriorityClass name -> value (data tier > app > batch).
PRIORITY_CLASSES: dict[str, int] = {
    "ce-data-critical": 100000,
    "ce-app-high": 10000,
    "ce-batch-low": 1000,
}


@dataclass(frozen=True)
class NodeSpec:
    """A planned node: name, pool, zone."""

    name: str
    pool: str
    zone: str
    tainted: bool


def plan_nodes(cluster: ClusterSettings) -> list[NodeSpec]:
    """Pure: spread each pool's nodes round-robin over the zones (the kwok nodes; on an existing
    cluster, what its node groups are expected to provide)."""
    out: list[NodeSpec] = []
    for pool in cluster.pools:
        for i in range(pool.nodes):
            zone = cluster.zones[i % len(cluster.zones)]
            name = f"ce-{pool.name}-{zone}-{i // len(cluster.zones)}"
            out.append(NodeSpec(name, pool.name, zone, pool.tainted))
    return out


def total_capacity(cluster: ClusterSettings) -> tuple[int, int]:
    """Pure: (cores, GiB) over all pools (SPEC: 240 cores / 960 GiB)."""
    n = cluster.total_nodes
    return n * cluster.node_cpu, n * cluster.node_memory_gi


def app_quota(app: AppSettings) -> dict[str, str]:
    """Pure: app namespace quota = both tracks at HPA ceiling (+ sidecars).

    Derived from static service figures only, never from the rollout phase.
    """
    r = app.resources
    pods = sum(s.max_replicas * 2 for s in app.services)
    cpu = pods * (r.request_cpu_m + capacity.SIDECAR_CPU_M)
    mem = pods * (r.request_memory_mi + capacity.SIDECAR_MEMORY_MI)
    lcpu = pods * (r.limit_cpu_m + capacity.SIDECAR_LIMIT_CPU_M)
    lmem = pods * (r.limit_memory_mi + capacity.SIDECAR_LIMIT_MEMORY_MI)
    return {
        "pods": str(pods + 10),
        "requests.cpu": f"{cpu}m",
        "requests.memory": f"{mem}Mi",
        "limits.cpu": f"{lcpu}m",
        "limits.memory": f"{lmem}Mi",
    }


#: LimitRange max for a namespace where the program declares no container of its own.
DEFAULT_CONTAINER_MAX = ResourceSettings(0, 0, 2000, 4096)


def limit_range_spec(declared: list[ResourceSettings], dataplane: str = "cni") -> dict[str, Any]:
    """Pure: a LimitRange whose ``max`` admits every container declared for the namespace.

    The max comes from the same figures the containers get (one source), plus the injected
    istio-proxy when sidecars are used, so LimitRanger can never reject the program's pods.
    """
    sizes = list(declared) or [DEFAULT_CONTAINER_MAX]
    if dataplane == "cni":
        sizes.append(
            ResourceSettings(0, 0, capacity.SIDECAR_LIMIT_CPU_M, capacity.SIDECAR_LIMIT_MEMORY_MI)
        )
    return {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "max": {
                    "cpu": f"{max(r.limit_cpu_m for r in sizes)}m",
                    "memory": f"{max(r.limit_memory_mi for r in sizes)}Mi",
                },
            }
        ]
    }


def namespace_labels(dataplane: str) -> dict[str, str]:
    """Pure: PSS restricted + the mesh data plane's enrolment label.

    ``cni``: sidecar injection, with the Istio CNI plugin doing what istio-init (NET_ADMIN,
    forbidden by ``restricted``) would; ``ambient``: ztunnel, no sidecar, no injection label.
    """
    mesh = (
        {"istio.io/dataplane-mode": "ambient"}
        if dataplane == "ambient"
        else {"istio-injection": "enabled"}
    )
    return {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        **mesh,
        "app.kubernetes.io/part-of": "claude-enhancer",
    }


def _ns_sel(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _ports(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _peer(ns: str, pods: dict[str, str] | None, home: str) -> dict[str, Any]:
    """A NetworkPolicy peer: ``pods`` (None: every pod) of namespace ``ns``, seen from ``home``."""
    pod_sel = {"podSelector": {"matchLabels": dict(pods)} if pods else {}}
    if ns == home:
        return pod_sel
    return {**_ns_sel(ns), **(pod_sel if pods else {})}


def _flow_ports(f: flows.Flow) -> list[dict[str, Any]]:
    udp = [{"protocol": "UDP", "port": p} for p in f.ports] if f.udp else []
    return _ports(*f.ports) + udp


def flow_policies(
    ns: Namespaces, table: list[flows.Flow]
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Pure: the flow table as NetworkPolicies: per row an ingress policy at its destination,
    and per source of the program's own an egress policy listing every row it is a source of.
    Nothing else inside the cluster is open, within a namespace either: a port kept out of the
    sidecar is reachable by its row's sources only."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {n: [] for n in ns.all()}
    egress: dict[str, tuple[flows.Source, list[dict[str, Any]]]] = {}
    for f in table:
        out[f.namespace].append(
            (
                f.name,
                {
                    "podSelector": {"matchLabels": dict(f.pods)} if f.pods else {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                _peer(s.peer.namespace, s.pods, f.namespace) for s in f.sources
                            ],
                            "ports": _flow_ports(f),
                        }
                    ],
                },
            )
        )
        for s in f.sources:
            if s.pods and s.peer.namespace in out:
                egress.setdefault(s.name, (s, []))[1].append(
                    {"to": [_peer(f.namespace, f.pods, s.peer.namespace)], "ports": _flow_ports(f)}
                )
    for s, rules in egress.values():
        out[s.peer.namespace].append(
            (
                f"allow-{s.name}-egress-in-cluster",
                {
                    "podSelector": {"matchLabels": dict(s.pods or {})},
                    "policyTypes": ["Egress"],
                    "egress": rules,
                },
            )
        )
    return out


def network_policies(
    ns: Namespaces,
    mesh_root: str,
    data: DataSettings,
    dataplane: str = "cni",
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Pure: per namespace, (name, spec) of the default deny, the flow table's policies
    (components/flows.py, shared with the AuthorizationPolicies) and the egress to what runs
    outside the program's pods (DNS, istiod, the API server, Vault, backups, scrape targets)."""
    cl = data.clients
    # NetworkPolicies select namespaces and pods, never service accounts
    table = flows.flow_table(ns, cl, Peer(mesh_root, ""))
    dns = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [_ns_sel("kube-system")],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ],
    }
    istiod = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [_ns_sel(mesh_root)], "ports": _ports(15012, 15017)}],
    }
    deny = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    common: list[tuple[str, dict[str, Any]]] = [
        ("default-deny", deny),
        ("allow-dns", dns),
        ("allow-istiod", istiod),
    ]
    if dataplane == "ambient":
        # ztunnel carries every mesh flow as HBONE to 15008 of the destination pod
        peers = [ns.app, ns.data, ns.monitoring, mesh_root]
        peers += [cl.cnpg_operator.namespace, cl.redis_operator.namespace, cl.vault.namespace]
        hbone = [_ns_sel(p) for p in dict.fromkeys(peers)]
        common = common + [
            (
                "allow-hbone",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": hbone, "ports": _ports(HBONE_PORT)}],
                    "egress": [{"to": hbone, "ports": _ports(HBONE_PORT)}],
                },
            )
        ]
    derived = flow_policies(ns, table)
    return {
        ns.app: common
        + derived[ns.app]
        + [
            (
                "allow-egress-vault",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _ports(8200)}],
                },
            ),
        ],
        ns.data: common
        + derived[ns.data]
        + [
            (
                "allow-backup-egress",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": _ports(443)}]},
            ),
            (
                # the Redis rotator: Vault (outside the cluster) and the API server (its
                # ACL Secret); 443 is open to the namespace already (backups)
                "allow-redis-rotator-egress",
                {
                    "podSelector": {"matchLabels": ROTATOR_PODS},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _ports(8200, 6443)}],
                },
            ),
            (
                # the CNPG instance manager in every instance pod watches the API server
                "allow-apiserver-egress",
                {
                    "podSelector": {"matchLabels": PG_PODS},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _ports(443, 6443)}],
                },
            ),
        ],
        ns.monitoring: common
        + derived[ns.monitoring]
        + [
            (
                # scrape targets outside the program's pods: cAdvisor on every kubelet,
                # kube-state-metrics, Vault's telemetry (components/prometheus.py
                # scrape_objects), istiod
                "allow-scrape-egress",
                {
                    "podSelector": {"matchLabels": dict(prometheus.PROMETHEUS_PODS)},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"ports": _ports(prometheus.KUBELET_PORT, 8080, 8200)},
                        {"to": [_ns_sel(mesh_root)], "ports": _ports(15014)},
                    ],
                },
            ),
            (
                # Prometheus' service discovery lists and watches through the API server
                "allow-apiserver-egress",
                {
                    "podSelector": {"matchLabels": dict(prometheus.PROMETHEUS_PODS)},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _ports(443, 6443)}],
                },
            ),
            (
                "allow-alert-egress",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": _ports(443, 587, 8080)}],
                },
            ),
        ],
    }


@dataclass
class ClusterArgs:
    """Inputs of the Cluster component."""

    cluster: ClusterSettings
    """Node pools, zones and mode (kwok | existing)."""
    namespaces: Namespaces
    """Namespace names to create."""
    app: AppSettings
    """Used to size the app namespace's ResourceQuota and LimitRange."""
    data: DataSettings
    """Data-tier containers (LimitRange) and clients (NetworkPolicies)."""
    dataplane: str = "cni"
    """Istio data plane: namespace enrolment label, sidecar limits, HBONE port."""
    mesh_root_namespace: str = "istio-system"
    """Namespace of istiod / ingress gateway (NetworkPolicy peers)."""


class Cluster(pulumi.ComponentResource):
    """Node pools + namespaces with PSS restricted, Istio injection and guard rails."""

    nodes: list[pulumi.Resource]
    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Cluster", name, None, opts)
        # Only the kwok nodes are the program's. On an existing cluster the kubelet and the node
        # controller own the nodes (the kubelet sets topology.kubernetes.io/region and /zone;
        # spec.taints is an atomic list the node controller and `kubectl cordon` also write, so
        # a patch of ours would conflict with them or, forced, wipe their taints; a replacement
        # node would lack anything we patched). Its node groups set the pool labels and taints
        # (Kubernetes "Taints and Tolerations", "Well-Known Labels"); the preflight checks them
        # (components/preflight.py node_group_problems).
        self.nodes = []
        for n in plan_nodes(args.cluster) if args.cluster.mode == "kwok" else []:
            taints = (
                [{"key": "dedicated", "value": n.pool, "effect": "NoSchedule"}] if n.tainted else []
            )
            self.nodes.append(
                k8s.core.v1.Node(
                    n.name,
                    metadata=meta(
                        n.name,
                        labels={
                            POOL_LABEL: n.pool,
                            ZONE_LABEL: n.zone,
                            "topology.kubernetes.io/region": "local",
                            "kubernetes.io/hostname": n.name,
                            "type": "kwok",
                        },
                        annotations={
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                            "claude-enhancer.io/capacity": (
                                f"cpu={args.cluster.node_cpu},memory={args.cluster.node_memory_gi}Gi"
                            ),
                        },
                    ),
                    spec={"taints": taints},
                    opts=child(self),
                )
            )

        self.priority_classes = [
            k8s.scheduling.v1.PriorityClass(
                pc,
                metadata=meta(pc),
                value=value,
                global_default=False,
                preemption_policy="PreemptLowerPriority",
                description=f"Claude Enhancer priority {pc}",
                opts=child(self),
            )
            for pc, value in PRIORITY_CLASSES.items()
        ]

        ns = args.namespaces
        self.namespaces = {}
        for ns_name in ns.all():
            self.namespaces[ns_name] = k8s.core.v1.Namespace(
                ns_name,
                metadata=meta(ns_name, labels=namespace_labels(args.dataplane)),
                opts=child(self),
            )
            no_default_token(ns_name, self.namespaces[ns_name], self)

        quotas = {
            ns.app: app_quota(args.app),
            ns.data: {
                "pods": "40",
                "requests.cpu": "40",
                "requests.memory": "160Gi",
                "limits.cpu": "44",
                "limits.memory": "176Gi",
                "requests.storage": "2Ti",
            },
            ns.monitoring: {
                "pods": "40",
                "requests.cpu": "16",
                "requests.memory": "64Gi",
                "limits.cpu": "24",
                "limits.memory": "96Gi",
            },
        }
        declared = {
            ns.app: [args.app.resources],
            ns.data: data_containers(args.data),
            ns.monitoring: list(prometheus.CONTAINERS),
        }
        self.quotas = []
        self.limit_ranges = []
        self.network_policies = []
        for ns_name, hard in quotas.items():
            dep = [self.namespaces[ns_name]]
            self.quotas.append(
                k8s.core.v1.ResourceQuota(
                    f"{ns_name}-quota",
                    metadata=meta("compute-quota", ns_name),
                    spec={"hard": hard},
                    opts=child(self, dep),
                )
            )
            self.limit_ranges.append(
                k8s.core.v1.LimitRange(
                    f"{ns_name}-limits",
                    metadata=meta("container-limits", ns_name),
                    spec=limit_range_spec(declared.get(ns_name, []), args.dataplane),
                    opts=child(self, dep),
                )
            )
        for ns_name, policies in network_policies(
            ns, args.mesh_root_namespace, args.data, args.dataplane
        ).items():
            for np_name, spec in policies:
                self.network_policies.append(
                    k8s.networking.v1.NetworkPolicy(
                        f"{ns_name}-{np_name}",
                        metadata=meta(np_name, ns_name),
                        spec=spec,
                        opts=child(self, [self.namespaces[ns_name]]),
                    )
                )
        cores, mem = total_capacity(args.cluster)
        self.register_outputs(
            {
                "nodeCount": len(self.nodes),
                "totalCores": cores,
                "totalMemoryGi": mem,
                "namespaces": list(ns.all()),
            }
        )
