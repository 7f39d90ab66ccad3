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

from components.app import APP_METRIC_POD_LABELS
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


#: Istio's merged metrics: with metrics merging (on by default) the sidecar injector rewrites a
#: pod's prometheus.io/* annotations to the agent's port 15020, path /stats/prometheus, and the
#: agent serves Envoy's stats (istio_requests_total, ...) merged with the app's own /metrics,
#: which it fetches over localhost (istio.io "Prometheus: Option 1: Metrics merging"). 15020 is
#: never redirected to Envoy, so Prometheus' plaintext scrape works under STRICT mTLS, which a
#: scrape of the app port through the sidecars does not.
MERGED_METRICS_PATH = "/stats/prometheus"
#: kube-state-metrics (its Helm chart's Service: label app.kubernetes.io/name, port "http").
KUBE_STATE_METRICS = {"app.kubernetes.io/name": "kube-state-metrics"}
#: the kubelet Service prometheus-operator maintains with --kubelet-service (pkg/kubelet/
#: controller.go: labels k8s-app/app.kubernetes.io/name=kubelet, port https-metrics 10250).
KUBELET_SERVICE = {"app.kubernetes.io/name": "kubelet"}
KUBELET_PORT = 10250
SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def merged_metrics_endpoint(interval: str) -> dict[str, Any]:
    """Pure: a PodMonitor endpoint scraping each injected pod's merged metrics on the port its
    rewritten prometheus.io/port annotation names: Istio's own PodMonitor
    (samples/addons/extras/prometheus-operator.yaml, envoy-stats-monitor)."""
    return {
        "path": MERGED_METRICS_PATH,
        "interval": interval,
        "relabelings": [
            {
                "action": "keep",
                "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                "regex": "istio-proxy",
            },
            {
                "action": "keep",
                "sourceLabels": ["__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape"],
            },
            {
                "action": "replace",
                "regex": r"(\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})",
                "replacement": "[$2]:$1",
                "sourceLabels": [
                    "__meta_kubernetes_pod_annotation_prometheus_io_port",
                    "__meta_kubernetes_pod_ip",
                ],
                "targetLabel": "__address__",
            },
            {
                "action": "replace",
                "regex": r"(\d+);((([0-9]+?)(\.|$)){4})",
                "replacement": "$2:$1",
                "sourceLabels": [
                    "__meta_kubernetes_pod_annotation_prometheus_io_port",
                    "__meta_kubernetes_pod_ip",
                ],
                "targetLabel": "__address__",
            },
        ],
    }


def scrape_objects(
    m: MonitoringSettings,
    app_ns: str,
    data_ns: str,
    monitoring_ns: str,
    pg_pods: dict[str, str],
    vault_address: str | None,
    mesh_root_ns: str | None = None,
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Pure: (kind, namespace, name, spec) of every scrape object the program declares, each in
    the namespace of the metric's producer (or, for producers outside the program's
    namespaces, in the monitoring namespace) and on a path that works under STRICT mTLS:

    * app + Envoy (istio_requests_total, the gate's input): merged metrics on 15020;
    * CloudNativePG's exporter (9187, kept out of the sidecar: data.PG_SIDECAR_ANNOTATIONS):
      a PodMonitor of our own, as CNPG 1.27 recommends instead of enablePodMonitor;
    * cAdvisor through the kubelet Service prometheus-operator maintains;
    * kube-state-metrics (kube_pod_container_resource_limits), wherever it runs;
    * istiod (in the mesh's root namespace);
    * Vault's telemetry (/v1/sys/metrics?format=prometheus) when Vault is on.
    """
    interval = m.scrape_interval
    out: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "PodMonitor",
            app_ns,
            "istio-merged-metrics",
            {
                "jobLabel": "app.kubernetes.io/part-of",
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
                "namespaceSelector": {"matchNames": [app_ns]},
                # the rollout gate tells the tracks' app metrics apart by the pods' version
                "podTargetLabels": list(APP_METRIC_POD_LABELS),
                "podMetricsEndpoints": [merged_metrics_endpoint(interval)],
            },
        ),
        (
            "PodMonitor",
            data_ns,
            "cnpg-metrics",
            {
                "selector": {"matchLabels": dict(pg_pods)},
                "namespaceSelector": {"matchNames": [data_ns]},
                "podMetricsEndpoints": [{"port": "metrics", "interval": interval}],
            },
        ),
        (
            "ServiceMonitor",
            monitoring_ns,
            "kubelet-cadvisor",
            {
                "jobLabel": "app.kubernetes.io/name",
                "selector": {"matchLabels": dict(KUBELET_SERVICE)},
                "namespaceSelector": {"matchNames": ["kube-system"]},
                "endpoints": [
                    {
                        "port": "https-metrics",
                        "path": "/metrics/cadvisor",
                        "scheme": "https",
                        "interval": interval,
                        "bearerTokenFile": SA_TOKEN,
                        # kubelet serving certificates are usually self-signed (unless
                        # serverTLSBootstrap): kube-prometheus' own kubelet ServiceMonitor
                        # skips verification the same way
                        "tlsConfig": {"insecureSkipVerify": True},
                        "honorLabels": True,
                    }
                ],
            },
        ),
        (
            "ServiceMonitor",
            monitoring_ns,
            "kube-state-metrics",
            {
                "jobLabel": "app.kubernetes.io/name",
                "selector": {"matchLabels": dict(KUBE_STATE_METRICS)},
                "namespaceSelector": {"any": True},
                "endpoints": [{"port": "http", "interval": interval, "honorLabels": True}],
            },
        ),
    ]
    if mesh_root_ns:
        # istiod's own metrics (citadel_server_root_cert_expiry_timestamp): Istio's
        # istio-component-monitor (samples/addons/extras/prometheus-operator.yaml); istiod runs
        # without a sidecar, so 15014 is plain HTTP on the wire whatever the mTLS mode
        out.append(
            (
                "ServiceMonitor",
                monitoring_ns,
                "istiod",
                {
                    "jobLabel": "istio",
                    "selector": {"matchLabels": {"istio": "pilot"}},
                    "namespaceSelector": {"matchNames": [mesh_root_ns]},
                    "endpoints": [{"port": "http-monitoring", "interval": interval}],
                },
            )
        )
    if vault_address:
        scheme, _, hostport = vault_address.partition("://")
        out.append(
            (
                "ScrapeConfig",
                monitoring_ns,
                "vault",
                {
                    # Vault serves it without a token when its listener sets
                    # telemetry.unauthenticated_metrics_access (docs/real-cluster.md)
                    "metricsPath": "/v1/sys/metrics",
                    "params": {"format": ["prometheus"]},
                    "scheme": scheme.upper(),
                    "scrapeInterval": interval,
                    "staticConfigs": [{"targets": [hostport.rstrip("/")]}],
                },
            )
        )
    return out


def prometheus_spec(
    m: MonitoringSettings, app_ns: str, monitoring_ns: str, data_ns: str | None = None
) -> dict[str, Any]:
    """Pure: the Prometheus CR's spec: selects the program's scrape objects (``scrape_objects``)
    where they live, evaluates our rules."""
    producers = [app_ns, *([data_ns] if data_ns else [])]
    return {
        "replicas": PROMETHEUS_REPLICAS,
        "serviceAccountName": PROMETHEUS_SA,
        # service discovery lists Endpoints/Pods through the API: the only token mounted here
        "automountServiceAccountToken": True,
        "scrapeInterval": m.scrape_interval,
        "evaluationInterval": m.scrape_interval,
        "retention": "15d",
        "serviceMonitorSelector": {"matchLabels": dict(SELECTOR)},
        "serviceMonitorNamespaceSelector": _in_namespaces(monitoring_ns),
        "podMonitorSelector": {"matchLabels": dict(SELECTOR)},
        "podMonitorNamespaceSelector": _in_namespaces(*producers),
        "scrapeConfigSelector": {"matchLabels": dict(SELECTOR)},
        "scrapeConfigNamespaceSelector": _in_namespaces(monitoring_ns),
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
        # cAdvisor through the kubelet (the kubelet authorizes nodes/metrics)
        {
            "apiGroups": [""],
            "resources": ["nodes", "nodes/metrics"],
            "verbs": ["get", "list", "watch"],
        },
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ]
