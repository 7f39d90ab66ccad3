"""Synthetic Istio-style metrics exporter (loopback only).

Emits ``istio_requests_total`` and ``istio_request_duration_milliseconds``
(histogram, Istio's default buckets) for ``destination_version`` stable and
canary, as the Istio sidecars would, so the rollout gate can be exercised
against a real Prometheus without a mesh.

A background thread "serves" simulated requests every tick, so counters grow
over time and ``rate()`` works. Behaviour flags:

  --canary-error-rate 0.02     2 % of canary requests answer 503
  --canary-latency-ms 800      canary latencies spread around 800 ms
  --no-traffic                 the canary receives no requests (no series at all)
  --scenario errors-2x         a seeded scenario of monitoring/exporter/scenarios.py: its
                               error rates and log-normal latencies (flags above override)

The behaviour can also be changed at run time: ``GET /control?canary_error_rate=0.02``
(keys: canary_error_rate, canary_latency_ms, stable_error_rate, stable_latency_ms,
canary_traffic=0|1, rps). ``GET /metrics`` is the scrape endpoint.

It also exports the app's own series (``SyntheticApp``): ``ce_agent_up`` for each agent of
the registry in Pulumi.yaml, and the workflow counters the alert rules read. Control keys:
failed_agents=N (the first N agents report down), workflow_failure_rate,
transition_failure_rate.

Usage: python monitoring/exporter/exporter.py PORT [flags]
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: the project file that holds the 61-agent registry (project config ``agents``)
PROJECT_FILE = Path(__file__).resolve().parents[2] / "Pulumi.yaml"
#: workflow phases 0-7 (phase 3 runs its tasks in parallel)
PHASES = tuple(range(8))
try:  # run as a script (the usual way): this directory is on sys.path
    from scenarios import SCENARIOS, exporter_behaviour
except ImportError:  # imported as a module (tests)
    from monitoring.exporter.scenarios import SCENARIOS, exporter_behaviour

#: Istio's default buckets for istio_request_duration_milliseconds
ISTIO_BUCKETS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)
LABELS = (
    "reporter",
    "source_workload",
    "destination_workload",
    "destination_service_name",
    "destination_version",
    "request_protocol",
    "response_code",
)


@dataclass
class Behaviour:
    rps: float = 50.0  # requests per second per version
    stable_error_rate: float = 0.0
    stable_latency_ms: float = 80.0
    canary_error_rate: float = 0.0
    canary_latency_ms: float = 80.0
    canary_traffic: bool = True


def agent_registry(path: Path = PROJECT_FILE) -> list[tuple[str, str]]:
    """(name, kind) of every agent in the project's default registry."""
    doc = yaml.safe_load(path.read_text())
    return [(a["name"], a["kind"]) for a in doc["config"]["agents"]["value"]]


@dataclass
class AppBehaviour:
    failed_agents: int = 0
    workflows_per_s: float = 4.0
    workflow_failure_rate: float = 0.0
    transition_failure_rate: float = 0.0


class SyntheticApp:
    """The app's own metrics: agent state and workflow/phase counters."""

    def __init__(
        self, registry: CollectorRegistry, behaviour: AppBehaviour, rng: random.Random
    ) -> None:
        self.behaviour = behaviour
        self.rng = rng
        self.agents = agent_registry()
        self.agent_up = Gauge(
            "ce_agent_up",
            "1 if the agent is loaded and healthy",
            ("agent", "kind"),
            registry=registry,
        )
        self.runs = Counter(
            "ce_workflow_runs_total", "Finished workflows by result", ("result",), registry=registry
        )
        self.phases = Counter(
            "ce_workflow_phase_executions_total",
            "Workflow phase executions by phase and result",
            ("phase", "result"),
            registry=registry,
        )
        self.transitions = Counter(
            "ce_workflow_phase_transitions_total",
            "Transitions between workflow phases by result",
            ("from_phase", "to_phase", "result"),
            registry=registry,
        )
        self._carry = 0.0

    def tick(self, dt: float) -> None:
        b = self.behaviour
        for i, (name, kind) in enumerate(self.agents):
            self.agent_up.labels(name, kind).set(0 if i < b.failed_agents else 1)
        self._carry += b.workflows_per_s * dt
        n = int(self._carry)
        self._carry -= n
        for _ in range(n):
            ok = True
            for phase in PHASES:
                self.phases.labels(str(phase), "success").inc()
                if phase == PHASES[-1]:
                    break
                moved = self.rng.random() >= b.transition_failure_rate
                self.transitions.labels(
                    str(phase), str(phase + 1), "success" if moved else "failure"
                ).inc()
                if not moved:
                    ok = False
                    break
            if ok and self.rng.random() < b.workflow_failure_rate:
                ok = False
            self.runs.labels("success" if ok else "failure").inc()


class SyntheticIstio:
    def __init__(
        self,
        behaviour: Behaviour,
        tick_s: float = 0.25,
        seed: int | None = None,
        app: AppBehaviour | None = None,
        latency_sigma: float | None = None,
    ) -> None:
        self.behaviour = behaviour
        self.latency_sigma = latency_sigma
        self.tick_s = tick_s
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "istio_requests_total",
            "Total requests (synthetic, Istio labels)",
            LABELS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration in ms (synthetic, Istio labels)",
            LABELS,
            buckets=ISTIO_BUCKETS,
            registry=self.registry,
        )
        self.app = SyntheticApp(self.registry, app or AppBehaviour(), self.rng)
        self._stop = threading.Event()
        self._carry: dict[str, float] = {"stable": 0.0, "canary": 0.0}
        self.thread = threading.Thread(target=self._run, name="synthetic-traffic", daemon=True)

    def start(self) -> None:
        self.tick()  # series exist from the first scrape on
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.tick()

    def _latency(self, target_ms: float) -> float:
        if self.latency_sigma:  # a scenario's log-normal latency, target = median
            return self.rng.lognormvariate(math.log(target_ms), self.latency_sigma)
        # spread between 0.5x and 1.0x of the target: P95 of the histogram ends up
        # close to (and, for targets on bucket edges, at most one bucket above) the target
        return target_ms * self.rng.uniform(0.5, 1.0)

    def tick(self) -> None:
        with self.lock:
            self.app.tick(self.tick_s)
            b = self.behaviour
            plan = [("stable", b.stable_error_rate, b.stable_latency_ms)]
            if b.canary_traffic:
                plan.append(("canary", b.canary_error_rate, b.canary_latency_ms))
            for version, err_rate, lat in plan:
                self._carry[version] += b.rps * self.tick_s
                n = int(self._carry[version])
                self._carry[version] -= n
                for _ in range(n):
                    code = "503" if self.rng.random() < err_rate else "200"
                    labels = (
                        "destination",
                        "istio-ingressgateway",
                        f"claude-enhancer-{version}",
                        "claude-enhancer",
                        version,
                        "http",
                        code,
                    )
                    self.requests.labels(*labels).inc()
                    self.duration.labels(*labels).observe(self._latency(lat))

    def control(self, query: str) -> str:
        params = urllib.parse.parse_qs(query)
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
                ):
                    setattr(b, key, float(value))
                elif key == "canary_traffic":
                    b.canary_traffic = value.lower() in ("1", "true", "yes")
                elif key == "failed_agents":
                    self.app.behaviour.failed_agents = int(value)
                elif key in ("workflow_failure_rate", "transition_failure_rate"):
                    setattr(self.app.behaviour, key, float(value))
                else:
                    raise ValueError(f"unknown control key {key!r}")
            return f"{b!r} {self.app.behaviour!r}"


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
    p.add_argument("--rps", type=float, default=50.0, help="simulated requests/s per version")
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
    p.add_argument("--failed-agents", type=int, default=0, help="agents reporting down")
    p.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default=None, help="seeded scenario to replay"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        rps=args.rps,
        stable_error_rate=args.stable_error_rate,
        stable_latency_ms=args.stable_latency_ms,
        canary_error_rate=args.canary_error_rate,
        canary_latency_ms=args.canary_latency_ms,
        canary_traffic=not args.no_traffic,
    )
    sigma = None
    if args.scenario:
        scenario = SCENARIOS[args.scenario]
        sigma = scenario.latency_sigma
        for key, value in exporter_behaviour(scenario).items():
            if getattr(args, key) == parser.get_default(key):  # explicit flags win
                setattr(behaviour, key, value)
    app = SyntheticIstio(
        behaviour,
        tick_s=args.tick,
        seed=args.seed,
        app=AppBehaviour(failed_agents=args.failed_agents),
        latency_sigma=sigma,
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
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
