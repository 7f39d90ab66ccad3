"""Compliant baseline objects the per-rule tests mutate into violations."""

from __future__ import annotations

import copy
from typing import Any

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
IMAGE = "registry.claude-enhancer.internal/claude-enhancer/app:5.1.0"


def container(name: str = "app", **overrides: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "1800m", "memory": "2867Mi"},
        },
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
            },
        ],
    }
    c.update(overrides)
    return c


def pod_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "serviceAccountName": "claude-enhancer",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        # replicas on different nodes (prod-min-replicas asks production workloads to spread)
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": "claude-enhancer"}},
            }
        ],
    }
    spec.update(overrides)
    return spec


def deployment(
    name: str = "app",
    namespace: str = "claude-enhancer",
    replicas: int = 3,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = labels or {"app": "claude-enhancer", "track": "stable"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec()},
        },
    }


def wrap_workload(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Put a pod spec into the shape of the given workload kind."""
    template = {"metadata": {"labels": {"app": "x"}}, "spec": spec}
    if kind == "Pod":
        return {"metadata": {"name": "p", "namespace": "claude-enhancer"}, "spec": spec}
    if kind == "CronJob":
        return {
            "metadata": {"name": "c", "namespace": "claude-enhancer"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    return {
        "metadata": {"name": kind.lower(), "namespace": "claude-enhancer"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template},
    }


WORKLOAD_KINDS = {
    "Deployment": "kubernetes:apps/v1:Deployment",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    "DaemonSet": "kubernetes:apps/v1:DaemonSet",
    "ReplicaSet": "kubernetes:apps/v1:ReplicaSet",
    "Job": "kubernetes:batch/v1:Job",
    "CronJob": "kubernetes:batch/v1:CronJob",
    "Pod": "kubernetes:core/v1:Pod",
}


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)
