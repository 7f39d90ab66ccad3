"""Application tracks: blue (stable) and green (canary) Deployments for the
three services, plus Services, ServiceAccounts, HPA, PDBs and the agent
registry ConfigMap.

Only the green api Deployment's ``spec.replicas`` depends on the rollout phase;
nothing else in here may (see tests/unit/test_phase_isolation.py). The green
workflow-engine and agent-runtime are internal: only green api pods call them,
so they run at full size as the warm green environment (SPEC phase 3 "green
environment fully ready") and a phase step touches at most the VirtualService
and one Deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.common import TRACKS, ZONE_LABEL, child, labels, meta, pool_affinity
from components.settings import SERVICES, AppSettings
from rollout import phases

#: The service the VirtualService splits; its green track scales with the phase.
TRAFFIC_SPLIT_SERVICE = "api"


#: HPA CPU target, % of requests (= normal usage): 80 % of 1.8 cores is 1.44 cores per pod, below
#: CEHighCPU's 80 % of the 1.95-core limit (1.56), so the HPA scales out before that alert fires
#: and the alert means "the HPA is at its ceiling and still hot".
HPA_UTILIZATION = 80
#: HPA memory target, % of requests. The request IS the SPEC's normal usage (2.8 GB); a pod's
#: memory does not fall when replicas are added, so a target at or below 100 % asks for more
#: pods forever and pins the track at maxReplicas. 125 % (3.26 GiB) sits between normal usage
#: and the 3814 Mi limit (the SPEC's < 4 GB budget): memory scales out only when it grows
#: toward the budget, and CPU decides otherwise.
HPA_MEMORY_UTILIZATION = 125
#: the green api's HPA floor while it serves: two pods, so one drain never takes the canary
#: down (its PDB allows one disruption).
CANARY_MIN_REPLICAS = 2
#: pulumi-kubernetes (provider/pkg/await/await.go patchForce): apply through field conflicts.
#: A green Deployment's spec.replicas is set by the program (the phase's size) AND raised by its
#: HPA; the next phase step must win over the HPA's ownership of the field.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}


def hpa_spec(service: str, track: str, replicas: int, max_replicas: int) -> dict[str, Any]:
    """Pure: the HPA of one service track (both tracks have one: green carries 50-100 % of the
    traffic from phase 3 on).

    Blue: the HPA owns the replicas (minReplicas = full size). Green: the program sets the
    phase's size (spec.replicas) and the HPA only adds pods under load; it never scales below
    what the phase set (scale-down disabled for the green api, whose size follows the phase;
    minReplicas = full size for the always-full internal green services). At phase 0 the green
    api has 0 replicas, and the HPA does nothing while its target is at zero (Kubernetes
    v1.34 pkg/controller/podautoscaler/horizontal.go:831 "ScalingDisabled").
    """
    green_api = track == "canary" and service == TRAFFIC_SPLIT_SERVICE
    floor = min(CANARY_MIN_REPLICAS, replicas) if green_api else replicas

    def target(name: str, pct: int) -> dict[str, Any]:
        util = {"type": "Utilization", "averageUtilization": pct}
        return {"type": "Resource", "resource": {"name": name, "target": util}}

    scale_down: dict[str, Any] = {"stabilizationWindowSeconds": 300}
    if green_api:
        scale_down["selectPolicy"] = "Disabled"
    return {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": workload_name(service, track),
        },
        "minReplicas": floor,
        "maxReplicas": max_replicas,
        "metrics": [target("cpu", HPA_UTILIZATION), target("memory", HPA_MEMORY_UTILIZATION)],
        "behavior": {"scaleDown": scale_down, "scaleUp": {"stabilizationWindowSeconds": 0}},
    }


def green_replicas(
    service: str, phase: int, full: int, phase_weights: tuple[int, ...] = phases.PHASE_WEIGHTS
) -> int:
    """Pure: replicas of ``service``'s green track at ``phase`` under ``phase_weights``."""
    if service == TRAFFIC_SPLIT_SERVICE:
        return phases.resolve_step(phase, phase_weights, full).canary_replicas
    return full


REGISTRY_CONFIGMAP = "agent-registry"
#: seconds a terminating app pod keeps serving (preStop sleep), within its 30 s grace period.
PRE_STOP_SECONDS = 5
PORT = 8080
RUN_AS = 10001


def selector(service: str, track: str) -> dict[str, str]:
    """Pod selector of one service track."""
    return {"app.kubernetes.io/name": service, "track": track}


def workload_name(service: str, track: str) -> str:
    """Name of a service track's Deployment (Istio reports it as the workload)."""
    return f"{service}-{TRACKS[track]}"


def track_version(app: AppSettings, track: str) -> str:
    """The app version a track runs."""
    return app.stable_version if track == "stable" else app.canary_version


def pod_labels(app: AppSettings, service: str, track: str) -> dict[str, str]:
    """Pure: the labels on a service track's pods (Istio reads ``app`` and ``version``)."""
    return {
        **labels(service, "workload", track=track, color=TRACKS[track]),
        "app": service,
        "version": track_version(app, track),
    }


def istio_destination_labels(
    app: AppSettings, service: str, track: str, namespace: str
) -> dict[str, str]:
    """Pure: the ``destination_*`` labels Istio's standard metrics carry for this track's pods.

    Derived from the pod labels the way Istio does (istio.io "Istio Standard Metrics"):
    app/version labels, the workload (Deployment) name, the canonical service
    (``service.istio.io/canonical-name`` > ``app.kubernetes.io/name`` > ``app``) and the
    canonical revision (``service.istio.io/canonical-revision`` > ``app.kubernetes.io/version``
    > ``version``). The gate selects on these; the synthetic exporter emits them.
    """
    pl = pod_labels(app, service, track)
    host = f"{service}.{namespace}.svc.cluster.local"
    return {
        "destination_workload": workload_name(service, track),
        "destination_workload_namespace": namespace,
        "destination_app": pl["app"],
        "destination_version": pl["version"],
        "destination_service": host,
        "destination_service_name": service,
        "destination_service_namespace": namespace,
        "destination_canonical_service": pl.get(
            "service.istio.io/canonical-name", pl.get("app.kubernetes.io/name", pl["app"])
        ),
        "destination_canonical_revision": pl.get(
            "service.istio.io/canonical-revision",
            pl.get("app.kubernetes.io/version", pl["version"]),
        ),
        "destination_principal": f"spiffe://cluster.local/ns/{namespace}/sa/{service}",
        "destination_cluster": "Kubernetes",
    }


#: pod labels Prometheus copies onto the app's own metrics (PodMonitor podTargetLabels)
APP_METRIC_POD_LABELS: tuple[str, ...] = ("version",)
#: where the app serves its metrics: the sidecar injector rewrites these to the Istio agent's
#: merged-metrics port and keeps them for the agent, which then serves the app's metrics and
#: Envoy's on 15020 (components/prometheus.py MERGED_METRICS_PATH).
APP_SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(PORT),
    "prometheus.io/path": "/metrics",
}

#: the destination labels that identify a track in the gate's queries
GATE_SELECTOR_LABELS: tuple[str, ...] = (
    "destination_workload_namespace",
    "destination_workload",
    "destination_app",
    "destination_version",
)


def traffic_targets(app: AppSettings, namespace: str) -> dict[str, dict[str, dict[str, str]]]:
    """Pure: per track, the Istio labels the gate selects on and the pod labels of the
    app's own metrics (exported as ``trafficTargets`` for the rollout controller)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for track in TRACKS:
        dest = istio_destination_labels(app, TRAFFIC_SPLIT_SERVICE, track, namespace)
        out[track] = {
            "destination": {k: dest[k] for k in GATE_SELECTOR_LABELS},
            "pod": {
                "namespace": namespace,
                **{
                    k: pod_labels(app, TRAFFIC_SPLIT_SERVICE, track)[k]
                    for k in APP_METRIC_POD_LABELS
                },
            },
        }
    return out


def image(app: AppSettings, service: str, track: str) -> str:
    """Image of a service track: pinned by tag, and by digest when one is configured."""
    version = track_version(app, track)
    digest = app.service(service).digest(version)
    return f"{app.registry}/{service}:{version}" + (f"@{digest}" if digest else "")


def registry_document(app: AppSettings) -> str:
    """Pure: the agent registry as JSON (independent of the rollout phase)."""
    return json.dumps(
        {
            "agents": [{"name": a.name, "kind": a.kind} for a in app.agents],
            "counts": {
                "total": len(app.agents),
                "standard": sum(1 for a in app.agents if a.kind == "standard"),
                "system": sum(1 for a in app.agents if a.kind == "system"),
            },
            "tolerateFailures": 3,
        },
        indent=2,
        sort_keys=True,
    )


def container_security_context() -> dict[str, Any]:
    """Restricted-PSS container security context."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_spec(
    app: AppSettings,
    service: str,
    track: str,
    namespace: str,
    vault_address: str,
    data_namespace: str,
) -> dict[str, Any]:
    """Pure: the pod template spec of one service track."""
    r = app.resources
    sel = selector(service, track)
    env = [
        {"name": "CE_SERVICE", "value": service},
        {"name": "CE_TRACK", "value": track},
        {"name": "VAULT_ADDR", "value": vault_address},
        {"name": "VAULT_AUTH_PATH", "value": "kubernetes"},
        {"name": "VAULT_ROLE", "value": f"claude-enhancer-{service}"},
        {"name": "VAULT_TOKEN_PATH", "value": "/var/run/secrets/vault/token"},
        {"name": "AGENT_REGISTRY_PATH", "value": "/etc/claude-enhancer/agents/agents.json"},
        {
            "name": "WORKFLOW_ENGINE_URL",
            "value": f"http://workflow-engine-{track}.{namespace}:{PORT}",
        },
        {"name": "AGENT_RUNTIME_URL", "value": f"http://agent-runtime-{track}.{namespace}:{PORT}"},
        {"name": "DATABASE_HOST", "value": f"claude-enhancer-pg-rw.{data_namespace}"},
        {"name": "REDIS_HOST", "value": f"claude-enhancer-redis-leader.{data_namespace}"},
    ]
    return {
        "serviceAccountName": service,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "priorityClassName": "ce-app-high",
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": pool_affinity("app"),
        # Spread per ReplicaSet revision (pod-template-hash): counted across revisions, a
        # rolling update places the new pods against the old ones' zones, and once the old
        # pods are gone the new ones can sit in two zones (seen after a promotion here).
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_LABEL,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": sel},
                "matchLabelKeys": ["pod-template-hash"],
                # No minDomains: with fewer eligible zones than minDomains the scheduler takes
                # the global minimum as 0 (k8s v1.34 pkg/scheduler/framework/plugins/
                # podtopologyspread/filtering.go:56-66 minMatchNum), so in a zone outage every
                # replacement or HPA pod beyond one per surviving zone stays Pending. Instead
                # the failed zone's nodes drop out of the count: they carry untolerated
                # NoSchedule taints (unreachable/not-ready, or unschedulable when cordoned),
                # and Honor excludes such nodes from the domains (common.go:50-53). Nodes
                # joining late are handled by the program's dependency on the Node objects
                # (kwok) or by the node groups existing before the app (a real cluster).
                "nodeTaintsPolicy": "Honor",
            },
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": sel},
                "matchLabelKeys": ["pod-template-hash"],
            },
        ],
        "containers": [
            {
                "name": service,
                "image": image(app, service, track),
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "env": env,
                "resources": {
                    "requests": {
                        "cpu": f"{r.request_cpu_m}m",
                        "memory": f"{r.request_memory_mi}Mi",
                    },
                    "limits": {"cpu": f"{r.limit_cpu_m}m", "memory": f"{r.limit_memory_mi}Mi"},
                },
                "securityContext": container_security_context(),
                # keep serving while the pod's endpoint removal and a just-applied
                # VirtualService reach every proxy (Kubernetes "Pod termination": the endpoint
                # update and SIGTERM race); the kubelet's own sleep, no binary in the image
                "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
                "startupProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "periodSeconds": app.startup_period_seconds,
                    "failureThreshold": app.startup_failure_threshold,
                    "timeoutSeconds": 1,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http"},
                    "periodSeconds": 5,
                    "failureThreshold": 2,
                    "timeoutSeconds": 2,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                    "timeoutSeconds": 2,
                },
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {
                        "name": "agent-registry",
                        "mountPath": "/etc/claude-enhancer/agents",
                        "readOnly": True,
                    },
                    {
                        "name": "vault-token",
                        "mountPath": "/var/run/secrets/vault",
                        "readOnly": True,
                    },
                ],
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            {"name": "agent-registry", "configMap": {"name": REGISTRY_CONFIGMAP}},
            {
                "name": "vault-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": "vault",
                                "expirationSeconds": 900,
                                "path": "token",
                            }
                        }
                    ]
                },
            },
        ],
    }


@dataclass
class AppArgs:
    """Inputs of the App component."""

    app: AppSettings
    """Versions, replicas, resources and the agent registry."""
    phase: int
    """Rollout phase: decides ONLY the green Deployments' replicas."""
    namespace: str
    """App namespace."""
    data_namespace: str
    """Where PostgreSQL/Redis live (DNS names in env)."""
    vault_address: str
    """Vault address handed to the pods."""
    pod_annotations: dict[str, dict[str, str]] | None = None
    """Per service: pod template annotations (the Vault Agent injector's, when Vault is on)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespace, quotas etc."""
    phase_weights: tuple[int, ...] = phases.PHASE_WEIGHTS
    """Configured canary weight per phase (the green api scales with it)."""
    scale_depends_on: list[pulumi.Resource] | None = None
    """What the green api's replica change waits for: the VirtualService, when this ``up``
    lowers the canary's weight (components/program.py traffic_moves_first)."""


class App(pulumi.ComponentResource):
    """Blue/green Deployments with HPA (blue), PDBs, Services and the registry."""

    deployments: dict[str, k8s.apps.v1.Deployment]

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:App", name, None, opts)
        phases.validate_phase(args.phase)
        app, ns = args.app, args.namespace
        deps = list(args.depends_on or [])
        self.registry = k8s.core.v1.ConfigMap(
            "agent-registry",
            metadata=meta(REGISTRY_CONFIGMAP, ns, labels=labels("agent-registry", "config")),
            data={"agents.json": registry_document(app)},
            opts=child(self, deps),
        )
        deps = [*deps, self.registry]
        self.service_accounts = {}
        self.services = []
        self.deployments = {}
        self.hpas = []
        self.pdbs = []
        for svc in SERVICES:
            s = app.service(svc)
            self.service_accounts[svc] = k8s.core.v1.ServiceAccount(
                f"sa-{svc}",
                metadata=meta(svc, ns, labels=labels(svc, "identity")),
                automount_service_account_token=False,
                opts=child(self, deps),
            )
            svc_deps = [*deps, self.service_accounts[svc]]
            if svc == "api":
                self.services.append(
                    self._service("svc-api", "api", ns, {"app.kubernetes.io/name": "api"}, deps)
                )
            else:
                for track in TRACKS:
                    self.services.append(
                        self._service(
                            f"svc-{svc}-{track}", f"{svc}-{track}", ns, selector(svc, track), deps
                        )
                    )
            for track, color in TRACKS.items():
                sel = selector(svc, track)
                spec: dict[str, Any] = {
                    "selector": {"matchLabels": sel},
                    "revisionHistoryLimit": 5,
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                    },
                    "template": {
                        "metadata": {
                            "labels": pod_labels(app, svc, track),
                            "annotations": {
                                **APP_SCRAPE_ANNOTATIONS,
                                **(args.pod_annotations or {}).get(svc, {}),
                            },
                        },
                        "spec": pod_spec(
                            app,
                            svc,
                            track,
                            ns,
                            args.vault_address,
                            args.data_namespace,
                        ),
                    },
                }
                if track == "canary":
                    # the ONLY phase-dependent field of this component (api only)
                    spec["replicas"] = green_replicas(
                        svc, args.phase, s.replicas, args.phase_weights
                    )
                # blue: replicas are owned by its HPA (minReplicas = full size)
                dep_name = workload_name(svc, track)
                scaled_by_phase = svc == TRAFFIC_SPLIT_SERVICE and track == "canary"
                extra = list(args.scale_depends_on or []) if scaled_by_phase else []
                self.deployments[dep_name] = k8s.apps.v1.Deployment(
                    dep_name,
                    metadata=meta(
                        dep_name,
                        ns,
                        labels=labels(svc, "workload", track=track, color=color),
                        annotations=dict(PATCH_FORCE) if track == "canary" else None,
                    ),
                    spec=spec,
                    opts=child(self, [*svc_deps, *extra]),
                )
                self.pdbs.append(
                    k8s.policy.v1.PodDisruptionBudget(
                        f"pdb-{dep_name}",
                        metadata=meta(dep_name, ns, labels=labels(svc, "availability")),
                        spec={"maxUnavailable": 1, "selector": {"matchLabels": sel}},
                        opts=child(self, deps),
                    )
                )
            for track in TRACKS:
                dep_name = workload_name(svc, track)
                self.hpas.append(
                    k8s.autoscaling.v2.HorizontalPodAutoscaler(
                        f"hpa-{dep_name}",
                        metadata=meta(dep_name, ns, labels=labels(svc, "autoscaling")),
                        spec=hpa_spec(svc, track, s.replicas, s.max_replicas),
                        opts=child(self, [self.deployments[dep_name]]),
                    )
                )
        self.register_outputs({"deployments": list(self.deployments)})

    def _service(
        self, res: str, name: str, ns: str, sel: dict[str, str], deps: list[pulumi.Resource]
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            res,
            metadata=meta(name, ns, labels=labels(name, "service")),
            spec={
                "type": "ClusterIP",
                "selector": sel,
                "ports": [
                    {
                        "name": "http",
                        "port": PORT,
                        "targetPort": "http",
                        "protocol": "TCP",
                        "appProtocol": "http",
                    }
                ],
            },
            opts=child(self, deps),
        )
