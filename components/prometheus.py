"""Pure specs of the Prometheus and Alertmanager that prometheus-operator runs for the program.

The AuthorizationPolicies admit scrapes from the ``prometheus`` service account of the monitoring
namespace, and the PrometheusRule / ServiceMonitor carry ``release: prometheus``: these CRs are
what turns those names into pods. The operator builds the StatefulSets; its containers already
drop every capability and forbid privilege escalation, so the pod-level securityContext here is
what Pod Security ``restricted`` still needs (non-root, RuntimeDefault seccomp).

The Alertmanager reads the operator's default config Secret (``alertmanager-<name>``, the
complete routing tree built by ``components.alerting``, platform alerts included) and selects no
AlertmanagerConfig, so no alert is routed twice; the AlertmanagerConfig stays for clusters whose
shared Alertmanager selects it.
"""

from __future__ import annotations

from typing import Any

from components.common import PART_OF, POOL_LABEL, ZONE_LABEL
from components.settings import MonitoringSettings, ResourceSettings

#: Name of both CRs; the Alertmanager's default config Secret is ``alertmanager-<NAME>``.
NAME = "claude-enhancer"
PROMETHEUS_SA = "prometheus"
ALERTMANAGER_SA = "alertmanager"
PROMETHEUS_REPLICAS = 2
ALERTMANAGER_REPLICAS = 3
ALERTMANAGER_PORT = 9093
#: Alertmanager's cluster gossip (TCP and UDP) between replicas.
ALERTMANAGER_MESH_PORT = 9094
#: Labels the operator puts on the pods it creates (its makeSelectorLabels; they win over
#: podMetadata): what the AuthorizationPolicies and spread constraints select.
PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": NAME}
ALERTMANAGER_PODS = {"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/instance": NAME}
#: What the program's ServiceMonitor and PrometheusRule carry, and the Prometheus selects.
SELECTOR = {"release": "prometheus", "app.kubernetes.io/part-of": PART_OF}

#: Added to the operator's own pod labels (name/instance/managed-by are the operator's).
POD_METADATA = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": "monitoring"}

PROMETHEUS_RESOURCES = ResourceSettings(500, 2048, 2000, 4096)
ALERTMANAGER_RESOURCES = ResourceSettings(50, 128, 200, 256)
#: The operator's config-reloader sidecar/init container (its default flags: 10m / 50Mi).
CONFIG_RELOADER_RESOURCES = ResourceSettings(10, 50, 10, 50)
CONTAINERS = (PROMETHEUS_RESOURCES, ALERTMANAGER_RESOURCES, CONFIG_RELOADER_RESOURCES)


def _resources(r: ResourceSettings) -> dict[str, Any]:
    return {
        "requests": {"cpu": f"{r.request_cpu_m}m", "memory": f"{r.request_memory_mi}Mi"},
        "limits": {"cpu": f"{r.limit_cpu_m}m", "memory": f"{r.limit_memory_mi}Mi"},
    }


def _in_namespaces(*names: str) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(names)}
        ]
    }


def pod_security_context() -> dict[str, Any]:
    """Pod-level part of PSS ``restricted`` (the operator sets the container-level part)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "fsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _placement(pods: dict[str, str]) -> dict[str, Any]:
    """System pool, replicas spread over the zones."""
    return {
        "nodeSelector": {POOL_LABEL: "system"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_LABEL,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(pods)},
            }
        ],
    }


def prometheus_spec(m: MonitoringSettings, app_ns: str, monitoring_ns: str) -> dict[str, Any]:
    """Pure: the Prometheus CR's spec (scrapes the app's ServiceMonitor, evaluates our rules)."""
    return {
        "replicas": PROMETHEUS_REPLICAS,
        "serviceAccountName": PROMETHEUS_SA,
        # service discovery lists Endpoints/Pods through the API: the only token mounted here
        "automountServiceAccountToken": True,
        "scrapeInterval": m.scrape_interval,
        "evaluationInterval": m.scrape_interval,
        "retention": "15d",
        "serviceMonitorSelector": {"matchLabels": dict(SELECTOR)},
        "serviceMonitorNamespaceSelector": _in_namespaces(app_ns),
        "podMonitorSelector": {"matchLabels": dict(SELECTOR)},
        "podMonitorNamespaceSelector": _in_namespaces(app_ns),
        "ruleSelector": {"matchLabels": dict(SELECTOR)},
        "ruleNamespaceSelector": _in_namespaces(monitoring_ns),
        "alerting": {
            "alertmanagers": [
                {
                    "namespace": monitoring_ns,
                    "name": "alertmanager-operated",
                    "port": "web",
                    "apiVersion": "v2",
                }
            ]
        },
        "podMetadata": {"labels": POD_METADATA},
        "securityContext": pod_security_context(),
        "resources": _resources(PROMETHEUS_RESOURCES),
        **_placement(PROMETHEUS_PODS),
    }


def alertmanager_spec() -> dict[str, Any]:
    """Pure: the Alertmanager CR's spec: HA gossip between replicas; the routing is in the
    operator's default config Secret ``alertmanager-<NAME>`` (no AlertmanagerConfig selected)."""
    return {
        "replicas": ALERTMANAGER_REPLICAS,
        "serviceAccountName": ALERTMANAGER_SA,
        "automountServiceAccountToken": False,
        "podMetadata": {"labels": POD_METADATA},
        "securityContext": pod_security_context(),
        "resources": _resources(ALERTMANAGER_RESOURCES),
        **_placement(ALERTMANAGER_PODS),
    }


def prometheus_cluster_rules() -> list[dict[str, Any]]:
    """Pure: what Prometheus needs cluster-wide to discover and scrape its targets."""
    return [
        {
            "apiGroups": [""],
            "resources": ["services", "endpoints", "pods"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ]
