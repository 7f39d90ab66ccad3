"""Istio mesh: mTLS STRICT, AuthorizationPolicies, edge Gateway and the
weighted VirtualService (the ONLY resource whose spec follows the traffic split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import flows
from components.common import child, labels, meta, no_default_token
from components.settings import SERVICES, DataClients, MeshSettings, Namespaces, Peer
from components.tls import EdgeTls, EdgeTlsArgs
from rollout import phases

SEC_API = "security.istio.io/v1beta1"
NET_API = "networking.istio.io/v1beta1"
VIRTUAL_SERVICE_NAME = "claude-enhancer"


def svc_host(name: str, namespace: str) -> str:
    """Cluster-local FQDN of a Service."""
    return f"{name}.{namespace}.svc.cluster.local"


def _cookie(mesh: MeshSettings, track: str) -> str:
    return f"{mesh.session_cookie}={track}; Path=/; Max-Age={mesh.cookie_ttl_seconds}; Secure; HttpOnly; SameSite=Lax"


def virtual_service_spec(
    weights: phases.Weights, mesh: MeshSettings, namespace: str, gateway: str
) -> dict[str, Any]:
    """Pure: VS spec for the given weights.

    * users carrying the track cookie stay on their version (only while that
      version still receives traffic, so a rollback to phase 0 sends
      everybody to stable at once);
    * everybody else is split by weight and gets the cookie of the subset
      they landed on;
    * HSTS is added on every response.
    """
    host = svc_host("api", namespace)
    hsts = {"Strict-Transport-Security": f"max-age={mesh.hsts_max_age}; includeSubDomains; preload"}
    headers = {"response": {"set": hsts}}
    http: list[dict[str, Any]] = []
    for subset, weight in (("canary", weights.canary), ("stable", weights.stable)):
        if weight > 0:
            http.append(
                {
                    "name": f"sticky-{subset}",
                    "match": [
                        {
                            "headers": {
                                "cookie": {
                                    "regex": f"^(.*?;\\s*)?{mesh.session_cookie}={subset}(;.*)?$"
                                }
                            }
                        }
                    ],
                    "route": [
                        {"destination": {"host": host, "subset": subset, "port": {"number": 8080}}}
                    ],
                    "headers": headers,
                    "timeout": "15s",
                }
            )
    http.append(
        {
            "name": "weighted",
            "route": [
                {
                    "destination": {"host": host, "subset": "stable", "port": {"number": 8080}},
                    "weight": weights.stable,
                    "headers": {"response": {"add": {"Set-Cookie": _cookie(mesh, "stable")}}},
                },
                {
                    "destination": {"host": host, "subset": "canary", "port": {"number": 8080}},
                    "weight": weights.canary,
                    "headers": {"response": {"add": {"Set-Cookie": _cookie(mesh, "canary")}}},
                },
            ],
            "headers": headers,
            "timeout": "15s",
            "retries": {
                "attempts": 2,
                "perTryTimeout": "5s",
                "retryOn": "gateway-error,connect-failure,reset",
            },
        }
    )
    return {"hosts": [mesh.host, host], "gateways": [gateway, "mesh"], "http": http}


GATEWAY_NAME = "claude-enhancer-gateway"


def virtual_service_manifest(
    weights: phases.Weights, mesh: MeshSettings, namespace: str
) -> dict[str, Any]:
    """Pure: the whole VirtualService object as the program applies it.

    The rollout controller server-side applies this (at phase 0 weights) to move
    traffic at once on rollback; ``up`` then finds nothing left to change.
    """
    return {
        "apiVersion": NET_API,
        "kind": "VirtualService",
        "metadata": meta(VIRTUAL_SERVICE_NAME, namespace, labels=labels("api", "mesh")),
        "spec": virtual_service_spec(weights, mesh, namespace, GATEWAY_NAME),
    }


def destination_rule_spec(host: str, mesh: MeshSettings, subsets: bool) -> dict[str, Any]:
    """Pure: ISTIO_MUTUAL, outlier detection, cookie consistent hash, track subsets."""
    spec: dict[str, Any] = {
        "host": host,
        "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"},
            "connectionPool": {
                "tcp": {"maxConnections": 2000, "connectTimeout": "3s"},
                "http": {"http1MaxPendingRequests": 1000, "maxRequestsPerConnection": 100},
            },
            "outlierDetection": {
                "consecutive5xxErrors": 5,
                "interval": "10s",
                "baseEjectionTime": "30s",
                "maxEjectionPercent": 50,
            },
            "loadBalancer": {
                "consistentHash": {
                    "httpCookie": {
                        "name": f"{mesh.session_cookie}-pod",
                        "ttl": f"{mesh.cookie_ttl_seconds}s",
                    }
                }
            },
        },
    }
    if subsets:
        spec["subsets"] = [
            {"name": "stable", "labels": {"track": "stable"}},
            {"name": "canary", "labels": {"track": "canary"}},
        ]
    return spec


def gateway_spec(mesh: MeshSettings) -> dict[str, Any]:
    """Pure: HTTPS with TLS 1.3 minimum; plain HTTP only redirects."""
    return {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": [mesh.host],
                "tls": {
                    "mode": "SIMPLE",
                    "credentialName": mesh.tls_credential_name,
                    "minProtocolVersion": "TLSV1_3",
                },
            },
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": [mesh.host],
                "tls": {"httpsRedirect": True},
            },
        ],
    }


def authorization_policies(
    ns: Namespaces, mesh: MeshSettings, clients: DataClients | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """Pure: (namespace, name, spec): a deny-all per namespace + an ALLOW per row of the flow
    table (components/flows.py) that the destination's sidecar sees.

    The rows on ports kept out of the sidecar (16379, 8000, 9187) still get their ALLOW: Envoy
    never enforces it, but it declares the flow to the reachability analysis and the wire check;
    the NetworkPolicies derived from the same rows are what enforces it."""
    gateway = Peer(mesh.root_namespace, mesh.ingress_service_account)
    out: list[tuple[str, str, dict[str, Any]]] = [(n, "deny-all", {}) for n in ns.all()]
    for f in flows.flow_table(ns, clients or DataClients(), gateway):
        if not f.in_mesh:
            continue
        spec: dict[str, Any] = {
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": [s.peer.principal for s in f.sources]}}],
                    "to": [{"operation": {"ports": [str(p) for p in f.ports]}}],
                }
            ],
        }
        if f.pods:
            spec["selector"] = {"matchLabels": dict(f.pods)}
        out.append((f.namespace, f.name, spec))
    return out


def peer_authentication_scopes(mesh: MeshSettings, ns: Namespaces) -> list[tuple[str, str]]:
    """Pure: (resource name, namespace) of each STRICT PeerAuthentication the program declares."""
    if mesh.mesh_wide_mtls:
        return [("mesh-mtls-strict", mesh.root_namespace)]
    return [(f"{n}-mtls-strict", n) for n in ns.all()]


@dataclass
class MeshArgs:
    """Inputs of the Mesh component."""

    mesh: MeshSettings
    """Edge host, TLS secret, cookie and HSTS settings."""
    namespaces: Namespaces
    """App/data/monitoring namespaces."""
    weights: phases.Weights
    """Current stable/canary traffic split (from the rollout phase)."""
    clients: DataClients = field(default_factory=DataClients)
    """Operators and Vault reaching the data tier (AuthorizationPolicy principals)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespaces that must exist first."""
    traffic_depends_on: list[pulumi.Resource] | None = None
    """Resources that must be updated (and Ready) before the weights change: the green
    api Deployment, so an advance never sends traffic to pods that are not Ready."""


class Mesh(pulumi.ComponentResource):
    """PeerAuthentication, AuthorizationPolicies, Gateway, DestinationRules, VirtualService."""

    virtual_service: k8s.apiextensions.CustomResource

    def __init__(
        self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Mesh", name, None, opts)
        ns, mesh = args.namespaces, args.mesh
        deps = list(args.depends_on or [])
        if mesh.manage_root_namespace:
            root = k8s.core.v1.Namespace(
                mesh.root_namespace,
                metadata=meta(
                    mesh.root_namespace, labels={"app.kubernetes.io/part-of": "claude-enhancer"}
                ),
                opts=child(self),
            )
            no_default_token(mesh.root_namespace, root, self)
            deps.append(root)

        def cr(
            res_name: str, api: str, kind: str, md: dict[str, Any], spec: dict[str, Any]
        ) -> k8s.apiextensions.CustomResource:
            return k8s.apiextensions.CustomResource(
                res_name, api_version=api, kind=kind, metadata=md, spec=spec, opts=child(self, deps)
            )

        # STRICT where the program's workloads run; mesh-wide only when the stack owns the mesh
        # (mesh.meshWideMtls): a root-namespace policy changes every tenant of a shared mesh
        self.peer_authentications = [
            cr(
                res,
                SEC_API,
                "PeerAuthentication",
                meta("default", pa_ns),
                {"mtls": {"mode": "STRICT"}},
            )
            for res, pa_ns in peer_authentication_scopes(mesh, ns)
        ]
        self.authorization_policies = [
            cr(f"{n}-{p}", SEC_API, "AuthorizationPolicy", meta(p, n), spec)
            for n, p, spec in authorization_policies(ns, mesh, args.clients)
        ]
        self.edge_tls = EdgeTls(
            f"{name}-edge-tls",
            EdgeTlsArgs(mesh=mesh, depends_on=deps),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.gateway = cr(
            "gateway",
            NET_API,
            "Gateway",
            meta(GATEWAY_NAME, ns.app, labels=labels("gateway", "edge")),
            gateway_spec(mesh),
        )
        self.destination_rules = [
            cr(
                "dr-api",
                NET_API,
                "DestinationRule",
                meta("api", ns.app, labels=labels("api", "mesh")),
                destination_rule_spec(svc_host("api", ns.app), mesh, subsets=True),
            )
        ]
        for svc in SERVICES[1:]:
            for track in ("stable", "canary"):
                self.destination_rules.append(
                    cr(
                        f"dr-{svc}-{track}",
                        NET_API,
                        "DestinationRule",
                        meta(f"{svc}-{track}", ns.app, labels=labels(svc, "mesh")),
                        destination_rule_spec(
                            svc_host(f"{svc}-{track}", ns.app), mesh, subsets=False
                        ),
                    )
                )
        vs = virtual_service_manifest(args.weights, mesh, ns.app)
        self.virtual_service = k8s.apiextensions.CustomResource(
            "virtual-service",
            api_version=vs["apiVersion"],
            kind=vs["kind"],
            metadata=vs["metadata"],
            spec=vs["spec"],
            opts=child(self, [*deps, *(args.traffic_depends_on or [])]),
        )
        self.register_outputs({"virtualServiceName": VIRTUAL_SERVICE_NAME})
