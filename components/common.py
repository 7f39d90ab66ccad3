"""Small shared helpers for the components (labels, selectors, opts)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PART_OF = "claude-enhancer"
POOL_LABEL = "node.claude-enhancer.io/pool"
ZONE_LABEL = "topology.kubernetes.io/zone"
TRACKS: dict[str, str] = {"stable": "blue", "canary": "green"}


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    """Standard recommended labels."""
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }
    out.update(extra)
    return out


def meta(name: str, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
    """ObjectMeta dict with an explicit (non auto-named) name."""
    m: dict[str, Any] = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    m.update({k: v for k, v in kw.items() if v is not None})
    return m


def child(
    parent: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None
) -> pulumi.ResourceOptions:
    """Options for a child resource."""
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on or [])


def pool_affinity(pool: str) -> dict[str, Any]:
    """Required node affinity to a node pool."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [pool]}]}
                ]
            }
        }
    }


def pool_toleration(pool: str) -> dict[str, Any]:
    """Toleration for the ``dedicated=<pool>:NoSchedule`` taint."""
    return {"key": "dedicated", "operator": "Equal", "value": pool, "effect": "NoSchedule"}


def secret_data(
    values: pulumi.Input[Mapping[str, pulumi.Input[str]]],
) -> pulumi.Output[dict[str, str]]:
    """Base64 ``data`` for a Kubernetes Secret, kept secret in state.

    ``data`` instead of ``stringData``: with server-side apply the provider's
    stringData -> data conversion makes a fresh Secret conflict with itself
    (".data.<key>" owned by two pulumi-kubernetes field managers).
    """

    def encode(d: Mapping[str, str]) -> dict[str, str]:
        return {k: base64.b64encode(v.encode()).decode() for k, v in d.items()}

    resolved: pulumi.Output[Mapping[str, str]] = pulumi.Output.from_input(values)  # type: ignore[arg-type]
    return pulumi.Output.secret(resolved.apply(encode))


def no_default_token(namespace: str, ns_resource: pulumi.Resource, parent: pulumi.Resource) -> None:
    """Stop the namespace's ``default`` ServiceAccount (made by Kubernetes) from mounting API tokens.

    Kubernetes owns that object, so it is patched (server-side apply), not created.
    """
    k8s.core.v1.ServiceAccountPatch(
        f"{namespace}-default-sa",
        metadata={"name": "default", "namespace": namespace},
        automount_service_account_token=False,
        opts=child(parent, [ns_resource]),
    )
