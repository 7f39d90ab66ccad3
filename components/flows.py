"""The program's intended in-cluster flows: one table, read by the AuthorizationPolicies
(components/mesh.py) and the NetworkPolicies (components/cluster.py).

Each row is a destination (namespace, pods, ports) and the sources allowed to reach it. The
mesh turns a row into an ALLOW of the sources' principals; the cluster turns it into an ingress
rule at the destination and, for the program's own sources, an egress rule at the source. A
flow added or dropped here changes both layers at once, so a port that bypasses the sidecar
(data.REDIS_SIDECAR_ANNOTATIONS / PG_SIDECAR_ANNOTATIONS) is open to exactly its row's sources
and to nobody else in its namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import prometheus as prom
from components.data import (
    CNPG_METRICS_PORT,
    CNPG_STATUS_PORT,
    PG_PODS,
    PG_PORT,
    PG_SERVICE_ACCOUNT,
    REDIS_BUS_PORT,
    REDIS_EXPORTER_ENABLED,
    REDIS_EXPORTER_PORT,
    REDIS_NAME,
    REDIS_PODS,
    REDIS_PORT,
)
from components.redis_rotation import ROTATOR_PODS
from components.settings import SERVICES, DataClients, Namespaces, Peer
from components.vault_spec import ROTATOR_SA

APP_PORT = 8080
#: Istio's merged metrics (the agent's 15020 /stats/prometheus): Envoy never captures it
#: (cni/pkg/plugin/sidecar_redirect.go always excludes 15020 inbound), so a row on it is
#: enforced by NetworkPolicy alone and has no AuthorizationPolicy
MERGED_METRICS_PORT = 15020


@dataclass(frozen=True)
class Source:
    """A client: its namespace and service account (the principal its sidecar presents), and
    the labels of its pods when they are the program's (None: a peer outside the program,
    admitted by namespace)."""

    name: str
    peer: Peer
    pods: dict[str, str] | None = None


@dataclass(frozen=True)
class Flow:
    """Sources reaching ``pods`` (None: every pod) of ``namespace`` on ``ports``."""

    name: str
    namespace: str
    pods: dict[str, str] | None
    sources: tuple[Source, ...]
    ports: tuple[int, ...]
    udp: bool = False  # the same ports over UDP too (memberlist gossip)

    @property
    def in_mesh(self) -> bool:
        """Whether the destination's sidecar sees it (an AuthorizationPolicy applies)."""
        return MERGED_METRICS_PORT not in self.ports


def sources(ns: Namespaces, clients: DataClients, gateway: Peer) -> dict[str, Source]:
    """Pure: every client the table names, by role."""
    out = {svc: Source(svc, Peer(ns.app, svc), {"app.kubernetes.io/name": svc}) for svc in SERVICES}
    out |= {
        "prometheus": Source(
            "prometheus", Peer(ns.monitoring, prom.PROMETHEUS_SA), dict(prom.PROMETHEUS_PODS)
        ),
        "alertmanager": Source(
            "alertmanager", Peer(ns.monitoring, prom.ALERTMANAGER_SA), dict(prom.ALERTMANAGER_PODS)
        ),
        "postgres": Source("postgres", Peer(ns.data, PG_SERVICE_ACCOUNT), dict(PG_PODS)),
        "redis": Source("redis", Peer(ns.data, REDIS_NAME), dict(REDIS_PODS)),
        "redis-rotator": Source("redis-rotator", Peer(ns.data, ROTATOR_SA), dict(ROTATOR_PODS)),
        "gateway": Source("gateway", gateway),
        "cnpg-operator": Source("cnpg-operator", clients.cnpg_operator),
        "redis-operator": Source("redis-operator", clients.redis_operator),
        "vault": Source("vault", clients.vault),
    }
    return out


def flow_table(ns: Namespaces, clients: DataClients, gateway: Peer) -> list[Flow]:
    """Pure: every in-cluster flow the program intends, nothing else."""
    s = sources(ns, clients, gateway)
    app = (s["api"], s["workflow-engine"], s["agent-runtime"])
    svc = {name: {"app.kubernetes.io/name": name} for name in SERVICES}
    am_pods = dict(prom.ALERTMANAGER_PODS)
    out = [
        Flow("allow-gateway-to-api", ns.app, svc["api"], (s["gateway"],), (APP_PORT,)),
        Flow(
            "allow-api-to-workflow-engine",
            ns.app,
            svc["workflow-engine"],
            (s["api"],),
            (APP_PORT,),
        ),
        Flow(
            "allow-to-agent-runtime",
            ns.app,
            svc["agent-runtime"],
            (s["api"], s["workflow-engine"]),
            (APP_PORT,),
        ),
        # Prometheus scrapes the app through Istio's metrics merging, the scrape path Istio
        # recommends (samples/addons/README.md "Prometheus Operator": the PodMonitor requires
        # metrics merging, on by default; architecture/networking/multi-port-metrics-merging.md:
        # "Under STRICT mTLS, Prometheus cannot reach application ports directly; all scraping
        # must flow through the agent at :15020/stats/prometheus"). The app's 8080 is not a
        # scrape target, so no row admits Prometheus there.
        Flow(
            "allow-prometheus-merged-metrics",
            ns.app,
            None,
            (s["prometheus"],),
            (MERGED_METRICS_PORT,),
        ),
        # the operator's Prometheus sends alerts; the Alertmanager replicas gossip
        Flow(
            "allow-prometheus-to-alertmanager",
            ns.monitoring,
            am_pods,
            (s["prometheus"],),
            (prom.ALERTMANAGER_PORT,),
        ),
        Flow(
            "allow-alertmanager-peers",
            ns.monitoring,
            am_pods,
            (s["alertmanager"],),
            (prom.ALERTMANAGER_MESH_PORT,),
            udp=True,
        ),
        Flow("allow-app-to-postgres", ns.data, dict(PG_PODS), app, (PG_PORT,)),
        Flow("allow-app-to-redis", ns.data, dict(REDIS_PODS), app, (REDIS_PORT,)),
        # CNPG's exporter, on the pod IP (excluded from the sidecar): Prometheus only
        Flow(
            "allow-prometheus-postgres",
            ns.data,
            dict(PG_PODS),
            (s["prometheus"],),
            (CNPG_METRICS_PORT,),
        ),
        # streaming replication and the instance managers' status API (8000, excluded from the
        # sidecar): the instances only
        Flow(
            "allow-postgres-peers",
            ns.data,
            dict(PG_PODS),
            (s["postgres"],),
            (PG_PORT, CNPG_STATUS_PORT),
        ),
        # the operator reconciles through the instance manager (8000) and connects to
        # PostgreSQL itself (CNPG docs/samples/networkpolicy-example.yaml)
        Flow(
            "allow-cnpg-operator",
            ns.data,
            dict(PG_PODS),
            (s["cnpg-operator"],),
            (CNPG_STATUS_PORT, PG_PORT),
        ),
        Flow("allow-vault-to-postgres", ns.data, dict(PG_PODS), (s["vault"],), (PG_PORT,)),
        # replication and the cluster bus (16379, excluded from the sidecar): the nodes only
        Flow(
            "allow-redis-peers",
            ns.data,
            dict(REDIS_PODS),
            (s["redis"],),
            (REDIS_PORT, REDIS_BUS_PORT),
        ),
        Flow(
            "allow-redis-operator", ns.data, dict(REDIS_PODS), (s["redis-operator"],), (REDIS_PORT,)
        ),
        # the Redis rotator sets the app user's passwords on every node
        Flow(
            "allow-redis-rotator", ns.data, dict(REDIS_PODS), (s["redis-rotator"],), (REDIS_PORT,)
        ),
    ]
    if REDIS_EXPORTER_ENABLED:
        out.append(
            Flow(
                "allow-prometheus-redis",
                ns.data,
                dict(REDIS_PODS),
                (s["prometheus"],),
                (REDIS_EXPORTER_PORT,),
            )
        )
    return out
