"""Objects exactly as the program emits them, built by its own pure spec builders.

The adversarial cases start from these, so a rule can never drift from what the
program really produces (an edit to a builder shows up here at once).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from components import cluster, data, mesh
from components import vault as vault_component
from components.app import pod_spec
from components.settings import Settings, load_settings
from rollout import phases as rollout
from tests.unit.conftest import load_stack_raw, with_secrets

ISTIO_NET = "networking.istio.io/v1beta1"
VS = f"kubernetes:{ISTIO_NET}:VirtualService"
DR = f"kubernetes:{ISTIO_NET}:DestinationRule"
GATEWAY = f"kubernetes:{ISTIO_NET}:Gateway"
AP = "kubernetes:security.istio.io/v1beta1:AuthorizationPolicy"
NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CNPG = "kubernetes:postgresql.cnpg.io/v1:Cluster"
REDIS_CLUSTER = "kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisCluster"
VAULT_POLICY = "vault:index/policy:Policy"


@cache
def settings() -> Settings:
    # the local stack enables Vault (hvac): its settings need a token, any will do here
    return load_settings(with_secrets(load_stack_raw("local")), stack="local")


def _cr(api: str, kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def virtual_service(phase: int) -> dict[str, Any]:
    s = settings()
    spec = mesh.virtual_service_spec(
        rollout.weights_for(phase, s.rollout.phase_weights),
        s.mesh,
        s.namespaces.app,
        "claude-enhancer-gateway",
    )
    return _cr(ISTIO_NET, "VirtualService", mesh.VIRTUAL_SERVICE_NAME, s.namespaces.app, spec)


def gateway() -> dict[str, Any]:
    s = settings()
    return _cr(
        ISTIO_NET, "Gateway", "claude-enhancer-gateway", s.namespaces.app, mesh.gateway_spec(s.mesh)
    )


def destination_rule() -> dict[str, Any]:
    s = settings()
    spec = mesh.destination_rule_spec(mesh.svc_host("api", s.namespaces.app), s.mesh, True)
    return _cr(ISTIO_NET, "DestinationRule", "api", s.namespaces.app, spec)


def authorization_policies() -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, props) of every AuthorizationPolicy the program declares."""
    s = settings()
    return [
        (
            AP,
            f"{ns}-{name}",
            _cr("security.istio.io/v1beta1", "AuthorizationPolicy", name, ns, spec),
        )
        for ns, name, spec in mesh.authorization_policies(s.namespaces, s.mesh, s.data.clients)
    ]


def network_policies() -> list[tuple[str, str, dict[str, Any]]]:
    s = settings()
    return [
        (NP, f"{ns}-{name}", _cr("networking.k8s.io/v1", "NetworkPolicy", name, ns, spec))
        for ns, items in cluster.network_policies(
            s.namespaces, s.mesh.root_namespace, s.data, s.mesh.dataplane
        ).items()
        for name, spec in items
    ]


def deployment(service: str = "api", track: str = "stable") -> dict[str, Any]:
    s = settings()
    spec = pod_spec(s.app, service, track, s.namespaces.app, s.vault.address, s.namespaces.data)
    labels = {"app.kubernetes.io/name": service, "track": track}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{service}-{track}", "namespace": s.namespaces.app, "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def postgres() -> dict[str, Any]:
    s = settings()
    return _cr(
        "postgresql.cnpg.io/v1",
        "Cluster",
        data.PG_NAME,
        s.namespaces.data,
        data.postgres_spec(s.data, "ce", "ce"),
    )


def redis_cluster() -> dict[str, Any]:
    s = settings()
    return _cr(
        "redis.redis.opstreelabs.in/v1beta2",
        "RedisCluster",
        data.REDIS_NAME,
        s.namespaces.data,
        data.redis_spec(s.data),
    )


def vault_policy(service: str = "api") -> dict[str, Any]:
    return {
        "name": f"claude-enhancer-{service}",
        "policy": vault_component.policy_document(settings().vault.kv_path, service),
    }


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)
