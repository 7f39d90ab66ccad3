"""Compliant baseline shared by the tiny non-compliant programs.

Each case program builds this baseline (one namespace with its default-deny
NetworkPolicy and AuthorizationPolicy, a ServiceAccount, a hardened Deployment
with a PDB) and breaks exactly one rule. The ``compliant`` case builds the
baseline unchanged and must pass the pack.

The provider renders YAML into a temp directory instead of talking to a
cluster, so previews need no Kubernetes API server.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

NS = "nc-app"
LABELS = {"app": "nc", "track": "stable"}
IMAGE = "registry.local/claude-enhancer/api:5.1.0"

_provider: k8s.Provider | None = None


def provider() -> k8s.Provider:
    global _provider
    if _provider is None:
        _provider = k8s.Provider(
            "offline", render_yaml_to_directory=tempfile.mkdtemp(prefix="nc-render-")
        )
    return _provider


def opts() -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=provider())


def container(**overrides: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "api",
        "image": IMAGE,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "1800m", "memory": "2800Mi"},
        },
        "ports": [{"containerPort": 8080, "name": "http"}],
    }
    c.update(overrides)
    return c


def deployment_spec(replicas: int = 2, **pod_overrides: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "serviceAccountName": "nc",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
    }
    pod.update(pod_overrides)
    return {
        "replicas": replicas,
        "selector": {"matchLabels": dict(LABELS)},
        "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod},
    }


def meta(name: str, ns: str = NS) -> dict[str, Any]:
    return {"name": name, "namespace": ns}


def cr(
    name: str, api_version: str, kind: str, spec: Any, ns: str = NS
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=api_version, kind=kind, metadata=meta(name, ns), spec=spec, opts=opts()
    )


def baseline(
    *,
    network_policy: bool = True,
    authorization_policy: bool = True,
    pdb: bool = True,
    deployment: dict[str, Any] | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    k8s.core.v1.Namespace(
        "ns", metadata={"name": NS, "labels": {"istio-injection": "enabled"}}, opts=opts()
    )
    if network_policy:
        k8s.networking.v1.NetworkPolicy(
            "default-deny",
            metadata=meta("default-deny"),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=opts(),
        )
    if authorization_policy:
        cr("deny-all", "security.istio.io/v1", "AuthorizationPolicy", {})
    k8s.core.v1.ServiceAccount(
        "sa", metadata=meta("nc"), automount_service_account_token=False, opts=opts()
    )
    spec = copy.deepcopy(deployment or deployment_spec())
    if mutate:
        mutate(spec)
    k8s.apps.v1.Deployment(
        "api", metadata={**meta("api"), "labels": dict(LABELS)}, spec=spec, opts=opts()
    )
    if pdb:
        k8s.policy.v1.PodDisruptionBudget(
            "api",
            metadata=meta("api"),
            spec={"minAvailable": 1, "selector": {"matchLabels": {"app": "nc"}}},
            opts=opts(),
        )
