"""Cluster component: node pools, namespaces and per-namespace guard rails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import capacity
from components.common import POOL_LABEL, ZONE_LABEL, child, meta, no_default_token
from components.settings import AppSettings, ClusterSettings, Namespaces

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
    """Pure: spread each pool's nodes round-robin over the zones."""
    out: list[NodeSpec] = []
    for pool in cluster.pools:
        names = pool.existing_nodes if cluster.mode == "existing" else ()
        for i in range(pool.nodes):
            zone = cluster.zones[i % len(cluster.zones)]
            name = names[i] if names else f"ce-{pool.name}-{zone}-{i // len(cluster.zones)}"
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
    lcpu = pods * (r.limit_cpu_m + 2000)
    lmem = pods * (r.limit_memory_mi + 1024)
    return {
        "pods": str(pods + 10),
        "requests.cpu": f"{cpu}m",
        "requests.memory": f"{mem}Mi",
        "limits.cpu": f"{lcpu}m",
        "limits.memory": f"{lmem}Mi",
    }


def _ns_sel(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _ports(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def network_policies(ns: Namespaces, mesh_root: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Pure: per namespace, (name, spec) of the default deny + explicit allows."""
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
    same_ns = {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {}}]}],
        "egress": [{"to": [{"podSelector": {}}]}],
    }
    deny = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    common: list[tuple[str, dict[str, Any]]] = [
        ("default-deny", deny),
        ("allow-dns", dns),
        ("allow-istiod", istiod),
        ("allow-same-namespace", same_ns),
    ]
    return {
        ns.app: common
        + [
            (
                "allow-ingress-gateway",
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [_ns_sel(mesh_root)], "ports": _ports(8080)}],
                },
            ),
            (
                "allow-prometheus-scrape",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [_ns_sel(ns.monitoring)], "ports": _ports(8080, 15020)}],
                },
            ),
            (
                "allow-egress-data",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [_ns_sel(ns.data)], "ports": _ports(5432, 6379)}],
                },
            ),
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
        + [
            (
                "allow-from-app",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [_ns_sel(ns.app)], "ports": _ports(5432, 6379)}],
                },
            ),
            (
                "allow-prometheus-scrape",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"from": [_ns_sel(ns.monitoring)], "ports": _ports(9187, 9121, 15020)}
                    ],
                },
            ),
            (
                "allow-backup-egress",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": _ports(443)}]},
            ),
        ],
        ns.monitoring: common
        + [
            (
                "allow-scrape-egress",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [_ns_sel(ns.app)], "ports": _ports(8080, 15020)},
                        {"to": [_ns_sel(ns.data)], "ports": _ports(9187, 9121, 15020)},
                    ],
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
    """Used to size the app namespace's ResourceQuota."""
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
        self.nodes = []
        for n in plan_nodes(args.cluster):
            node_labels = {
                POOL_LABEL: n.pool,
                ZONE_LABEL: n.zone,
                "topology.kubernetes.io/region": "local",
            }
            taints = (
                [{"key": "dedicated", "value": n.pool, "effect": "NoSchedule"}] if n.tainted else []
            )
            if args.cluster.mode == "kwok":
                node_labels.update({"kubernetes.io/hostname": n.name, "type": "kwok"})
                self.nodes.append(
                    k8s.core.v1.Node(
                        n.name,
                        metadata=meta(
                            n.name,
                            labels=node_labels,
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
            else:
                self.nodes.append(
                    k8s.core.v1.NodePatch(
                        n.name,
                        metadata=meta(n.name, labels=node_labels),
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
                metadata=meta(
                    ns_name,
                    labels={
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                        "pod-security.kubernetes.io/audit": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "istio-injection": "enabled",
                        "app.kubernetes.io/part-of": "claude-enhancer",
                    },
                ),
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
                    spec={
                        "limits": [
                            {
                                "type": "Container",
                                "default": {"cpu": "500m", "memory": "512Mi"},
                                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                                "max": {"cpu": "2", "memory": "4Gi"},
                            }
                        ]
                    },
                    opts=child(self, dep),
                )
            )
        for ns_name, policies in network_policies(ns, args.mesh_root_namespace).items():
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
