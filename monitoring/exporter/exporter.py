"""Synthetic Istio telemetry for the program's own pods (loopback only).

Emits what Istio's sidecars and the app would report for the ``api`` traffic split:

- ``istio_requests_total`` and ``istio_request_duration_milliseconds`` (histogram,
  Istio's default buckets) with Istio's standard labels, reported twice per request
  as Istio does: by the ingress gateway (``reporter="source"``) and by the api pod's
  sidecar (``reporter="destination"``);
- ``ce_agent_up`` per agent of the registry, as the app exports it, with the pod
  labels Prometheus adds (the ServiceMonitor's ``podTargetLabels``).

Every label value comes from the program's pure builders for the stack's settings
(``components.app.istio_destination_labels`` / ``pod_labels``), so the gate is tested
against the series real telemetry would carry for these pods: e.g.
``destination_version="5.1.0"``, never a made-up "canary".

The requests are split between the tracks as the mesh splits them (``routes``): by the
canary weight of the VirtualService the API server holds (``--kubeconfig``: the platform's
exporter), else by the stack file's phase, unless ``--canary-weight`` fixes it (tests that
stand for one phase without a deployed stack). At 5 % the canary answers 5 % of ``--rps``.

Behaviour flags (also at run time: ``GET /control?canary_error_rate=0.02``; keys:
canary_error_rate, canary_latency_ms, stable_error_rate, stable_latency_ms, rps,
canary_weight (empty or auto: follow the mesh again), canary_traffic=0|1, canary_agents_down,
stable_agents_down, and two faults of the canary's telemetry alone, its traffic unchanged:
canary_reports=0 (the canary's sidecar stops reporting: its ``reporter="destination"``
series are gone from the next scrape, as when a sidecar's stats or a relabel rule drop them;
the gateway's ``reporter="source"`` reports of the same requests and the app's metrics stay)
and canary_reports_frozen=1 (they stay, but stop counting: a stuck counter)):

  --rps 400                    requests/s through the gateway, both tracks together
  --canary-weight 5            a fixed split instead of the applied VirtualService's
  --canary-error-rate 0.02     2 % of canary requests answer 503
  --canary-latency-ms 800      canary latencies spread around 800 ms
  --no-traffic                 the canary receives no requests (no series at all)

It also exports the workflow engine's counters, per track with its pod labels, which the
alert rules and the gate's ``workflows`` check read (``SyntheticApp``), and what cAdvisor and
kube-state-metrics report of each service's pod per track (CPU, working set, limits from the
program's resource settings; the api's CPU follows its track's share of the traffic): the
local platform's kwok nodes run no containers, so nothing else measures them. Control keys:
failed_agents=N (the first N agents of the stable track report down; the same as
stable_agents_down), workflow_failure_rate (both tracks), canary_workflow_failure_rate,
transition_failure_rate.

Usage: python monitoring/exporter/exporter.py PORT [--stack local] [flags]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components import app as app_spec  # noqa: E402 (after the sys.path insert)
from components import needs  # noqa: E402
from components import settings as settings_mod  # noqa: E402
from components.common import TRACKS  # noqa: E402
from components.mesh import VIRTUAL_SERVICE_NAME  # noqa: E402

try:  # run as a script (the usual way): this directory is on sys.path
    from routes import VirtualServiceWatch, watch_argv
    from scenarios import SCENARIOS, exporter_behaviour
except ImportError:  # imported as a module (tests)
    from monitoring.exporter.routes import VirtualServiceWatch, watch_argv
    from monitoring.exporter.scenarios import SCENARIOS, exporter_behaviour

#: workflow phases 0-7 (phase 3 runs its tasks in parallel)
PHASES = tuple(range(8))
#: the longest stall one tick makes up for: a real sidecar's counters keep counting while our
#: process waits for a CPU (in the CI runs, window counts fell to a third with a 5 s cap); only a
#: process stopped for minutes does not burst on resume
MAX_CATCH_UP_S = 60.0

#: Istio's default buckets for istio_request_duration_milliseconds
ISTIO_BUCKETS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip

#: the ingress gateway (istio/gateway chart defaults): the source of api traffic
GATEWAY = {
    "source_workload": "istio-ingressgateway",
    "source_workload_namespace": "istio-system",
    "source_principal": "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    "source_app": "istio-ingressgateway",
    "source_version": "unknown",
    "source_canonical_service": "istio-ingressgateway",
    "source_canonical_revision": "latest",
    "source_cluster": "Kubernetes",
}
REQUEST_LABELS = (
    "reporter",
    *GATEWAY,
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
AGENT_LABELS = (
    "job", "namespace", "service", "pod", "agent", "kind", *app_spec.APP_METRIC_POD_LABELS
)  # fmt: skip
#: the service whose pods export the agent states
AGENT_SERVICE = "agent-runtime"
#: cAdvisor's (and kube-state-metrics') container labels
CONTAINER_LABELS = ("namespace", "pod", "container")


def stack_file(stack: str) -> Path:
    return ROOT / "stacks" / f"Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class Pods:
    """What the program labels its pods from: the app's and the namespaces' settings."""

    app: settings_mod.AppSettings
    namespaces: settings_mod.Namespaces


def load_settings(stack: str) -> Pods:
    """The stack's pod settings from Pulumi.yaml + stacks/Pulumi.<stack>.yaml (the program's
    reader; no secrets needed)."""
    return Pods(*settings_mod.pods_view(_stack_raw(stack)))


def _stack_raw(stack: str) -> dict[str, Any]:
    return needs.load_stack_raw(stack, ROOT, stack_file(stack))


def stack_canary_weight(raw: Mapping[str, Any]) -> int:
    """The canary weight of the stack's phase (what the VirtualService will carry once the
    phase is deployed)."""
    return settings_mod.rollout_view(raw).weights().canary


def request_series(s: Pods, track: str, reporter: str) -> dict[str, str]:
    """Pure: the labels (minus response_code) of one request as Istio reports it."""
    ns = s.namespaces.app
    dest = app_spec.istio_destination_labels(s.app, app_spec.TRAFFIC_SPLIT_SERVICE, track, ns)
    return {
        "reporter": reporter,
        **GATEWAY,
        **{k: v for k, v in dest.items()},
        "request_protocol": "http",
        "grpc_response_status": "",
        "response_flags": "-",
        # the gateway's outbound report does not know the peer's mTLS mode
        "connection_security_policy": "mutual_tls" if reporter == "destination" else "unknown",
    }


def app_series(s: Pods, service: str, track: str) -> dict[str, str]:
    """Pure: the labels Prometheus stores on the app's own metrics from one track's pod of
    ``service`` (the ServiceMonitor's job and ``podTargetLabels``), so the gate can tell the
    tracks apart."""
    pl = app_spec.pod_labels(s.app, service, track)
    return {
        "job": "claude-enhancer",
        "namespace": s.namespaces.app,
        "service": f"{service}-{track}",
        "pod": f"{app_spec.workload_name(service, track)}-0",
        **{k: pl[k] for k in app_spec.APP_METRIC_POD_LABELS},
    }


def agent_series(s: Pods, track: str) -> list[dict[str, str]]:
    """Pure: ``ce_agent_up`` labels per agent for one track, as Prometheus stores them."""
    base = app_series(s, AGENT_SERVICE, track)
    return [{**base, "agent": a.name, "kind": a.kind} for a in s.app.agents]


def container_series(s: Pods, track: str) -> dict[str, dict[str, str]]:
    """Pure: per service, its pod's container of ``track`` as cAdvisor labels it."""
    return {
        svc: {
            "namespace": s.namespaces.app,
            "pod": f"{app_spec.workload_name(svc, track)}-0",
            "container": svc,
        }
        for svc in settings_mod.SERVICES
    }


class SyntheticPods:
    """Each track's containers as cAdvisor and kube-state-metrics see them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.cpu = Counter(
            "container_cpu_usage_seconds", "CPU time used (synthetic cAdvisor)",
            CONTAINER_LABELS, registry=registry,
        )  # fmt: skip
        self.memory = Gauge(
            "container_memory_working_set_bytes", "Working set (synthetic cAdvisor)",
            CONTAINER_LABELS, registry=registry,
        )  # fmt: skip
        self.limits = Gauge(
            "kube_pod_container_resource_limits", "Container limits (synthetic kube-state-metrics)",
            (*CONTAINER_LABELS, "resource", "unit"), registry=registry,
        )  # fmt: skip

    def clear(self) -> None:
        for m in (self.cpu, self.memory, self.limits):
            m.clear()

    def tick(
        self,
        dt: float,
        res: settings_mod.ResourceSettings,
        containers: dict[str, dict[str, dict[str, str]]],
        api_share: dict[str, float],
    ) -> None:
        """``containers``: track -> service -> labels; ``api_share``: track -> traffic share."""
        for track, by_service in containers.items():
            for svc, labels in by_service.items():
                load = api_share.get(track, 0.0) if svc == app_spec.TRAFFIC_SPLIT_SERVICE else 0.5
                self.cpu.labels(**labels).inc(res.request_cpu_m / 1000 * (0.2 + 0.8 * load) * dt)
                self.memory.labels(**labels).set(res.request_memory_mi * 2**20 * (0.6 + 0.2 * load))
                self.limits.labels(**labels, resource="cpu", unit="core").set(
                    res.limit_cpu_m / 1000
                )
                self.limits.labels(**labels, resource="memory", unit="byte").set(
                    res.limit_memory_mi * 2**20
                )


@dataclass
class Behaviour:
    rps: float = 100.0  # requests per second through the gateway, split by the canary weight
    canary_weight: float | None = None  # percent; None: the mesh's (or the stack's) split
    stable_error_rate: float = 0.0
    stable_latency_ms: float = 80.0
    canary_error_rate: float = 0.0
    canary_latency_ms: float = 80.0
    canary_traffic: bool = True
    canary_reports: bool = True  # the canary's sidecar reports its requests (reporter=destination)
    canary_reports_frozen: bool = False  # ...but its counters no longer move
    stable_agents_down: float = 0
    canary_agents_down: float = 0


@dataclass
class AppBehaviour:
    workflows_per_s: float = 4.0  # per track
    workflow_failure_rate: float = 0.0  # stable's, and canary's unless set apart
    canary_workflow_failure_rate: float | None = None
    transition_failure_rate: float = 0.0


WORKFLOW_SERVICE = "workflow-engine"
_WORKFLOW_LABELS = ("job", "namespace", "service", "pod", *app_spec.APP_METRIC_POD_LABELS)


def workflow_series(s: Pods, track: str) -> dict[str, str]:
    """Pure: the workflow engine's labels for one track, as Prometheus stores them."""
    return app_series(s, WORKFLOW_SERVICE, track)


class SyntheticApp:
    """The workflow engine's workflow/phase counters, per track (agent states: SyntheticIstio)."""

    def __init__(
        self, registry: CollectorRegistry, behaviour: AppBehaviour, rng: random.Random
    ) -> None:
        self.behaviour = behaviour
        self.rng = rng
        self.runs = Counter(
            "ce_workflow_runs_total",
            "Finished workflows by result",
            (*_WORKFLOW_LABELS, "result"),
            registry=registry,
        )
        self.phases = Counter(
            "ce_workflow_phase_executions_total",
            "Workflow phase executions by phase and result",
            (*_WORKFLOW_LABELS, "phase", "result"),
            registry=registry,
        )
        self.transitions = Counter(
            "ce_workflow_phase_transitions_total",
            "Transitions between workflow phases by result",
            (*_WORKFLOW_LABELS, "from_phase", "to_phase", "result"),
            registry=registry,
        )
        self._carry: dict[str, float] = {t: 0.0 for t in TRACKS}

    def clear(self) -> None:
        for c in (self.runs, self.phases, self.transitions):
            c.clear()

    def tick(self, dt: float, series: dict[str, dict[str, str]]) -> None:
        """One batch per track; ``series`` holds each track's labels (workflow_series)."""
        b = self.behaviour
        for track, labels in series.items():
            fail_rate = b.workflow_failure_rate
            if track == "canary" and b.canary_workflow_failure_rate is not None:
                fail_rate = b.canary_workflow_failure_rate
            self._carry[track] += b.workflows_per_s * dt
            n = int(self._carry[track])
            self._carry[track] -= n
            for _ in range(n):
                self._one(labels, fail_rate)

    def _one(self, labels: dict[str, str], fail_rate: float) -> None:
        b = self.behaviour
        ok = True
        for phase in PHASES:
            self.phases.labels(**labels, phase=str(phase), result="success").inc()
            if phase == PHASES[-1]:
                break
            moved = self.rng.random() >= b.transition_failure_rate
            self.transitions.labels(
                **labels,
                from_phase=str(phase),
                to_phase=str(phase + 1),
                result="success" if moved else "failure",
            ).inc()
            if not moved:
                ok = False
                break
        if ok and self.rng.random() < fail_rate:
            ok = False
        self.runs.labels(**labels, result="success" if ok else "failure").inc()


class SyntheticIstio:
    def __init__(
        self,
        settings: Pods,
        behaviour: Behaviour,
        tick_s: float = 0.25,
        seed: int | None = None,
        stack: str | None = None,
        app: AppBehaviour | None = None,
        latency_sigma: float | None = None,
        mesh_split: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.latency_sigma = latency_sigma
        self.stack = stack
        self._mtime = stack_file(stack).stat().st_mtime if stack else 0.0
        #: the applied VirtualService's canary percent (None: none applied)
        self.mesh_split = mesh_split
        #: without a VirtualService: the stack file's phase (no stack: stable takes everything)
        self.stack_weight = stack_canary_weight(_stack_raw(stack)) if stack else 0
        self.settings = settings
        self.behaviour = behaviour
        self.tick_s = tick_s
        self.clock = clock
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "istio_requests_total", "Total requests (synthetic)", REQUEST_LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration in ms (synthetic)",
            REQUEST_LABELS,
            buckets=ISTIO_BUCKETS,
            registry=self.registry,
        )
        self.agent_up = Gauge(
            "ce_agent_up", "Agent loaded and healthy (synthetic)", AGENT_LABELS,
            registry=self.registry,
        )  # fmt: skip
        self.app = SyntheticApp(self.registry, app or AppBehaviour(), self.rng)
        self.pods = SyntheticPods(self.registry)
        self._series = self._request_series()
        self._agents, self._workflows = self._app_series()
        self._stop = threading.Event()
        self._carry: dict[str, float] = {t: 0.0 for t in TRACKS}
        #: label values of the canary sidecar's series, to drop them when it stops reporting
        self._sidecar: set[tuple[str, ...]] = set()
        self.thread = threading.Thread(target=self._run, name="synthetic-traffic", daemon=True)

    def _request_series(self) -> dict[tuple[str, str], dict[str, str]]:
        return {
            (track, rep): request_series(self.settings, track, rep)
            for track in TRACKS
            for rep in ("source", "destination")
        }

    def _app_series(self) -> tuple[dict[str, list[dict[str, str]]], dict[str, dict[str, str]]]:
        """Per track: the agents' and the workflow engine's labels (change only with the stack)."""
        return (
            {t: agent_series(self.settings, t) for t in TRACKS},
            {t: workflow_series(self.settings, t) for t in TRACKS},
        )

    def follow_stack(self) -> None:
        """Re-read the stack's settings when its file changes (e.g. a promotion set a new
        stableVersion): the pods then carry new labels, and so does their telemetry."""
        if not self.stack:
            return
        try:
            mtime = stack_file(self.stack).stat().st_mtime
        except OSError:
            return  # its checkout is gone (a CI clone): keep the last labels, keep ticking
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            raw = _stack_raw(self.stack)  # read once for the labels and the split
            settings = Pods(*settings_mod.pods_view(raw))
            weight = stack_canary_weight(raw)
        except settings_mod.SettingsError:
            return  # a half-written file: keep the last good labels
        with self.lock:
            self.settings = settings
            self.stack_weight = weight
            self._series = self._request_series()
            self._agents, self._workflows = self._app_series()
            self.requests.clear()
            self.duration.clear()
            self._sidecar.clear()
            self.agent_up.clear()
            self.app.clear()
            self.pods.clear()

    def start(self) -> None:
        self.tick()  # series exist from the first scrape on
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # Each tick serves the requests of the time that really passed, not of one nominal
        # tick: under CPU load (the full suite on 2 cores) the loop wakes late, and a fixed
        # tick_s per wake cut the served rate by up to 5x, so a 5 % canary fell under the
        # gate's minRequests while a real mesh's traffic does not depend on our CPU.
        last = self.clock()
        followed = last
        while not self._stop.wait(self.tick_s):
            now = self.clock()
            if now - followed >= 2:
                followed = now
                self.follow_stack()
            # a stall longer than MAX_CATCH_UP (a suspended process) is not served at once
            self.tick(min(now - last, MAX_CATCH_UP_S))
            last = now

    def _latency(self, target_ms: float) -> float:
        if self.latency_sigma:  # a scenario's log-normal latency, target = median
            return self.rng.lognormvariate(math.log(target_ms), self.latency_sigma)
        # spread between 0.5x and 1.0x of the target: P95 of the histogram ends up
        # close to (and, for targets on bucket edges, at most one bucket above) the target
        return target_ms * self.rng.uniform(0.5, 1.0)

    def canary_weight(self) -> float:
        """Percent of the gateway's requests that the canary answers now."""
        if self.behaviour.canary_weight is not None:
            return self.behaviour.canary_weight
        applied = self.mesh_split() if self.mesh_split else None
        return self.stack_weight if applied is None else applied

    def tick(self, dt: float | None = None) -> None:
        """Serve ``dt`` seconds of traffic (default: one nominal tick)."""
        dt = self.tick_s if dt is None else dt
        with self.lock:
            b = self.behaviour
            share = self.canary_weight() / 100.0
            plan = [("stable", 1.0 - share, b.stable_error_rate, b.stable_latency_ms)]
            if b.canary_traffic:
                plan.append(("canary", share, b.canary_error_rate, b.canary_latency_ms))
            for track, part, err_rate, lat in plan:
                self._carry[track] += b.rps * part * dt
                n = int(self._carry[track])
                self._carry[track] -= n
                # one labels() lookup per (reporter, code) and tick, one inc(n) per series: the
                # per-request lookups were most of the exporter's CPU, and a starved exporter
                # served less than its rate under the full suite's load (the draws, and so the
                # numbers, are the same as one request at a time)
                children: dict[tuple[str, str], list[Any]] = {}
                for _ in range(n):
                    code = "503" if self.rng.random() < err_rate else "200"
                    ms = self._latency(lat)
                    for rep in ("source", "destination"):
                        sidecar = track == "canary" and rep == "destination"
                        if sidecar and (not b.canary_reports or b.canary_reports_frozen):
                            continue
                        child = children.get((rep, code))
                        if child is None:
                            labels = {**self._series[(track, rep)], "response_code": code}
                            if sidecar:
                                self._sidecar.add(tuple(labels[k] for k in REQUEST_LABELS))
                            child = children[(rep, code)] = [
                                self.requests.labels(**labels),
                                self.duration.labels(**labels),
                                0,
                            ]
                        child[2] += 1
                        # the gateway sees the sidecar's time plus its own hop
                        child[1].observe(ms + (1 if rep == "source" else 0))
                for counter, _, count in children.values():
                    counter.inc(count)
            for track, down in (("stable", b.stable_agents_down), ("canary", b.canary_agents_down)):
                for i, labels in enumerate(self._agents[track]):
                    self.agent_up.labels(**labels).set(0 if i < down else 1)
            # both tracks' pods run (and export) whether or not the mesh sends them requests
            self.app.tick(dt, self._workflows)
            shares = {"stable": 1.0 - share, "canary": share if b.canary_traffic else 0.0}
            containers = {t: container_series(self.settings, t) for t in TRACKS}
            self.pods.tick(dt, self.settings.app.resources, containers, shares)

    def control(self, query: str) -> str:
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        with self.lock:
            b = self.behaviour
            for key, values in params.items():
                value = values[-1]
                if key in (
                    "canary_error_rate",
                    "canary_latency_ms",
                    "stable_error_rate",
                    "stable_latency_ms",
                    "rps",
                    "canary_agents_down",
                    "stable_agents_down",
                ):
                    setattr(b, key, float(value))
                elif key == "canary_weight":
                    b.canary_weight = None if value in ("", "auto") else float(value)
                elif key in ("canary_traffic", "canary_reports", "canary_reports_frozen"):
                    setattr(b, key, value.lower() in ("1", "true", "yes"))
                    if key == "canary_reports" and not b.canary_reports:
                        self._drop_sidecar_series()
                elif key == "failed_agents":
                    b.stable_agents_down = float(value)
                elif key in (
                    "workflow_failure_rate",
                    "canary_workflow_failure_rate",
                    "transition_failure_rate",
                ):
                    setattr(self.app.behaviour, key, float(value))
                else:
                    raise ValueError(f"unknown control key {key!r}")
            return f"{b!r} {self.app.behaviour!r}"

    def _drop_sidecar_series(self) -> None:
        """The canary's sidecar stopped reporting: its series leave the exposition, so
        Prometheus ends them with a staleness marker at the next scrape (caller holds lock)."""
        for values in self._sidecar:
            self.requests.remove(*values)
            self.duration.remove(*values)
        self._sidecar.clear()


def make_handler(app: SyntheticIstio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/metrics":
                body = generate_latest(app.registry)
                self._send(200, body, CONTENT_TYPE_LATEST)
            elif url.path == "/control":
                try:
                    self._send(200, (app.control(url.query) + "\n").encode(), "text/plain")
                except ValueError as exc:
                    self._send(400, f"{exc}\n".encode(), "text/plain")
            elif url.path in ("/", "/healthz"):
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0 = any free port, printed)")
    p.add_argument("--stack", default="local", help="stack whose pods are simulated")
    p.add_argument(
        "--rps", type=float, default=100.0, help="simulated requests/s, both tracks together"
    )
    p.add_argument(
        "--canary-weight", type=float, default=None,
        help="fixed canary share in percent (default: the applied VirtualService's, else the "
        "stack file's phase)",
    )  # fmt: skip
    p.add_argument(
        "--kubeconfig", default=None,
        help="follow the stack's VirtualService on this API server (kubectl watch)",
    )  # fmt: skip
    p.add_argument("--kubectl", default="kubectl", help="kubectl binary for --kubeconfig")
    p.add_argument(
        "--canary-error-rate", type=float, default=0.0, help="fraction of canary 5xx (0.02 = 2%%)"
    )
    p.add_argument(
        "--canary-latency-ms", type=float, default=80.0, help="canary latency scale (ms)"
    )
    p.add_argument("--stable-error-rate", type=float, default=0.0)
    p.add_argument("--stable-latency-ms", type=float, default=80.0)
    p.add_argument("--no-traffic", action="store_true", help="the canary receives no requests")
    p.add_argument("--tick", type=float, default=0.25, help="seconds between simulated batches")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--failed-agents", type=int, default=0, help="stable agents reporting down")
    p.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default=None, help="seeded scenario to replay"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        rps=args.rps,
        canary_weight=args.canary_weight,
        stable_error_rate=args.stable_error_rate,
        stable_latency_ms=args.stable_latency_ms,
        canary_error_rate=args.canary_error_rate,
        canary_latency_ms=args.canary_latency_ms,
        canary_traffic=not args.no_traffic,
        stable_agents_down=args.failed_agents,
    )
    sigma = None
    if args.scenario:
        scenario = SCENARIOS[args.scenario]
        sigma = scenario.latency_sigma
        for key, value in exporter_behaviour(scenario).items():
            if getattr(args, key) == parser.get_default(key):  # explicit flags win
                setattr(behaviour, key, value)
    pods = load_settings(args.stack)
    watch = None
    if args.kubeconfig:
        argv_ = watch_argv(args.kubectl, args.kubeconfig, pods.namespaces.app, VIRTUAL_SERVICE_NAME)
        watch = VirtualServiceWatch(argv_)
        watch.start()
    app = SyntheticIstio(
        pods,
        behaviour,
        tick_s=args.tick,
        seed=args.seed,
        stack=args.stack,
        latency_sigma=sigma,
        mesh_split=watch.percent if watch else None,
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(app))
    app.start()
    print(f"exporter listening on http://127.0.0.1:{server.server_address[1]}/metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        if watch:
            watch.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
