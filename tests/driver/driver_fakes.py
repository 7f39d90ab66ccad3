"""Fake collaborators: a Pulumi stack without a CLI, a Prometheus without HTTP, a clock.

The fake stack's outputs come from the program's own pure builders (traffic targets,
the phase-0 VirtualService), so the driver is tested against the shapes it really gets.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from components.app import traffic_targets
from components.mesh import virtual_service_manifest
from driver.approval_store import ApprovalRefused
from driver.prom import PromError
from driver.stack import OnOutput, Resource, UpOutcome
from rollout import approvals, phases
from rollout import config as rollout_config
from rollout.judge import SLO_CHECKS
from tests.unit.conftest import settings_for

_LOCAL = settings_for("local", 0, None)


class FakeStack:
    """Behaves like the program: ``up`` deploys ``rollout.phase`` and exports its outputs."""

    project = "claude-enhancer"

    def __init__(
        self,
        stack_name: str = "test",
        config: dict[str, Any] | None = None,
        deployed: int | None = None,
        fail_up: bool = False,
        events: list[str] | None = None,
    ) -> None:
        self.stack_name = stack_name
        self.config: dict[str, Any] = dict(config or {"phase": 0})
        self.app: dict[str, Any] = {
            "stableVersion": _LOCAL.app.stable_version,
            "canaryVersion": _LOCAL.app.canary_version,
        }
        self._outputs: dict[str, Any] = {}
        self.fail_up = fail_up
        self.up_calls: list[dict[str, Any]] = []
        self.events = events if events is not None else []
        self.locked = False
        self.crash_after_set_phase = False
        self.converged_targets: list[str] | None = None  # what step_targets() answers
        if deployed is not None:
            self._outputs = self._outputs_for(deployed)

    def _outputs_for(self, phase: int) -> dict[str, Any]:
        cfg = rollout_config.parse(self.config)
        w = cfg.weights(phase)
        app = dataclasses.replace(
            _LOCAL.app,
            stable_version=self.app["stableVersion"],
            canary_version=self.app["canaryVersion"],
        )
        return {
            "rolloutPhase": phase,
            "canaryWeight": w.canary,
            "stableWeight": w.stable,
            "namespace": "claude-enhancer",
            "virtualServiceName": "claude-enhancer",
            "trafficTargets": traffic_targets(app, "claude-enhancer"),
            "trafficRollback": virtual_service_manifest(
                cfg.weights(0), _LOCAL.mesh, "claude-enhancer"
            ),
        }

    def rollout_config(self) -> dict[str, Any]:
        return dict(self.config)

    def set_phase(self, phase: int) -> None:
        self.events.append(f"config phase={phase}")
        self.config["phase"] = str(phase)  # the CLI hands config back as strings sometimes
        if self.crash_after_set_phase:
            raise KeyboardInterrupt("killed after the config change")

    def set_config_value(self, key: str, value: str) -> None:
        assert key.startswith("claude-enhancer:app.")
        self.events.append(f"config {key}={value}")
        self.app[key.split(".", 1)[1]] = value

    def config_value(self, key: str) -> Any:
        return dict(self.app) if key == "claude-enhancer:app" else None

    def cancel_stale_lock(self) -> bool:
        was, self.locked = self.locked, False
        return was

    def outputs(self) -> dict[str, Any]:
        return dict(self._outputs)

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        phase = int(self.config["phase"])
        self.up_calls.append({"phase": phase, "targets": targets})
        self.events.append(f"up phase={phase}")
        on_output(f"Updating (fake): phase {phase}")
        if self.locked:
            raise RuntimeError("the stack is currently locked by 1 lock(s)")
        if self.fail_up:
            raise RuntimeError("boom: kube-apiserver unreachable")
        prev = self._outputs.get("rolloutPhase")
        phases.check_transition(prev, phase, bool(self.config.get("allowSkip", False)))
        self._outputs = self._outputs_for(phase)
        return UpOutcome(outputs=dict(self._outputs), result="succeeded", summary={"update": 1})

    def step_targets(self) -> list[str] | None:
        return self.converged_targets

    def resources(self) -> list[Resource]:
        base = "urn:pulumi:test::claude-enhancer::"
        dep = "kubernetes:apps/v1:Deployment"
        return [
            Resource(f"{base}pulumi:pulumi:Stack::claude-enhancer-test", "pulumi:pulumi:Stack"),
            Resource(f"{base}pulumi:providers:kubernetes::k8s", "pulumi:providers:kubernetes"),
            Resource(
                f"{base}ce:app:Tracks${dep}::api-green", dep, "Deployment", {"track": "canary"}
            ),
            Resource(
                f"{base}ce:app:Tracks${dep}::api-blue", dep, "Deployment", {"track": "stable"}
            ),
            Resource(
                f"{base}ce:mesh:Mesh$kubernetes:networking.istio.io/v1:VirtualService::virtual-service",
                "kubernetes:networking.istio.io/v1:VirtualService",
                "VirtualService",
            ),
            Resource(
                f"{base}ce:mesh:Mesh$kubernetes:networking.istio.io/v1:DestinationRule::dr-api",
                "kubernetes:networking.istio.io/v1:DestinationRule",
                "DestinationRule",
            ),
        ]


class FakeTraffic:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.applied: list[Mapping[str, Any]] = []

    def apply(self, manifest: Mapping[str, Any]) -> float:
        self.applied.append(manifest)
        route = next(r for r in manifest["spec"]["http"] if r["name"] == "weighted")
        weights = {d["destination"]["subset"]: d["weight"] for d in route["route"]}
        self.events.append(f"traffic canary={weights['canary']}")
        return 0.05


class FakeProm:
    def __init__(
        self,
        names: set[str] | None = None,
        values: Mapping[str, float | None] | None = None,
        fail: bool = False,
    ) -> None:
        self.names = (
            names
            if names is not None
            else {"istio_requests_total", "istio_request_duration_milliseconds_bucket"}
        )
        self.values: dict[str, float | None] = dict(values or {})
        self.fail = fail
        self.queries: list[str] = []
        #: per-version overrides of ``values`` for the judge's queries (e.g. a canary whose
        #: error ratio is 3x stable's): ``{"5.1.0": {"error_ratio": 0.0006}}``
        self.track_values: dict[str, dict[str, float]] = {}
        #: answers to the canary signal's queries (rollout.signal) where set: ``present`` and
        #: ``seen`` (series counts), ``canary_rps`` and ``stable_rps`` (None: empty result);
        #: unset, they answer ``request_count`` as the judge's queries do
        self.signal: dict[str, float | None] = {}

    def metric_names(self) -> frozenset[str]:
        if self.fail:
            raise PromError("cannot query Prometheus at http://127.0.0.1:1: connection refused")
        return frozenset(self.names)

    def query_scalar(self, promql: str) -> float | None:
        self.queries.append(promql)
        if promql.startswith("histogram_quantile(0.95"):
            return self.values.get("p95_ms")
        if promql.startswith("histogram_quantile(0.99"):
            return self.values.get("p99_ms")
        if promql.startswith("sum(increase"):
            return self.values.get("request_count")
        if promql.startswith("count(max by (agent)"):
            return self.values.get("agents_down")
        if "ce_workflow_runs_total" in promql:
            return self.values.get("workflow_failure_ratio")
        return self.values.get("error_ratio")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The judge's ``increase()`` counts, shaped by the same values: ``request_count``
        requests (both tracks), ``error_ratio`` of them 5xx, and a latency histogram whose
        95th and 99th percentiles fall in the buckets of ``p95_ms`` and ``p99_ms``."""
        if self.fail:
            raise PromError("cannot query Prometheus at http://127.0.0.1:1: connection refused")
        self.queries.append(promql)
        key = _signal_key(promql)
        if key in self.signal:
            v = self.signal[key]
            return [] if v is None else [{"metric": {}, "value": [0, str(v)]}]
        version = re.search(r'destination_version="([^"]+)"', promql)
        values = {**self.values, **self.track_values.get(version.group(1) if version else "", {})}
        n = values.get("request_count") or 0.0
        if promql.startswith("sum by (le)"):
            p95 = values.get("p95_ms") or 0.0
            p99 = values.get("p99_ms") or 0.0
            mass = {le: 0.94 * n * (le >= 50) for le in _LES}
            for le in _LES:  # 1 % at the p95 bucket, the last 5 % at the p99 bucket
                mass[le] += 0.01 * n * (le >= p95) + 0.05 * n * (le >= p99)
            return [
                {"metric": {"le": _le_text(le)}, "value": [0, str(v)]} for le, v in mass.items()
            ]
        if 'response_code=~"5.."' in promql:
            return [{"metric": {}, "value": [0, str(n * (values.get("error_ratio") or 0))]}]
        return [{"metric": {}, "value": [0, str(n)]}] if n else []


def _signal_key(promql: str) -> str | None:
    """Which of the canary signal's queries ``promql`` is (the texts of
    ``rollout.signal.build_queries``; the canary's version is the program's canaryVersion)."""
    if promql.startswith("count(count_over_time("):
        return "seen"
    if promql.startswith("count("):
        return "present"
    if promql.startswith("sum(irate("):
        return "canary_rps" if f'"{_LOCAL.app.canary_version}"' in promql else "stable_rps"
    return None


#: Istio's default duration buckets (ms)
_LES = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
        300000, 600000, 1800000, 3600000, float("inf"))  # fmt: skip


def _le_text(le: float) -> str:
    return "+Inf" if le == float("inf") else f"{le:g}"


HEALTHY = {
    "error_ratio": 0.0,
    "p95_ms": 120.0,
    "p99_ms": 300.0,
    # a long window at the SPEC's load (about 1000 requests/s): enough for the judge to
    # conclude at every weight (the relative error check at 50 % needs the most)
    "request_count": 1_000_000.0,
    "agents_down": 0.0,
    "workflow_failure_ratio": 0.0,
}


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def assert_failed_on(entries: list[dict[str, Any]], check: str) -> dict[str, Any]:
    """The one audit entry whose failed ``check`` stopped a step past phase 0: the judge's
    absolute layer decides the SLO checks there (as in `rollout run`), the gate the rest."""
    (failed,) = [e for e in entries if e["result"] in ("gate_failed", "judge_failed")]
    if check in SLO_CHECKS:
        assert failed["result"] == "judge_failed"
        assert any(c["name"] == check and c["outcome"] == "fail" for c in failed["judge"]["checks"])
    else:
        assert failed["result"] == "gate_failed"
        assert any(c["name"] == check and not c["passed"] for c in failed["gate"]["checks"])
    return failed


class FakeApprovals:
    """The API server's side of approvals, in memory. The user is a role's name (``user``, set
    by :func:`approve`); the authority rule is emulated as the ClusterRoles grant it (a role
    approves its own gates), and creationTimestamp has whole seconds as on the API server.
    The real API server's checks are tests/integration/test_rollout_approvals.py."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        four_eyes: str = "previous",
        path: Path | None = None,
    ) -> None:
        self.clock = clock
        self.user = "nobody"
        self.four_eyes = four_eyes
        self.items: list[approvals.Approval] = []
        #: the last write of the traffic objects, as the real store reads it from managedFields
        self.traffic_written: datetime | None = None
        self.path = path  # shared with another process (a `status --watch`)

    def snapshot(self) -> approvals.Snapshot:
        if self.path is not None and self.path.exists():
            self.items = [
                approvals.Approval(**{**a, "created": datetime.fromisoformat(a["created"])})
                for a in json.loads(self.path.read_text())
            ]
        return approvals.Snapshot(tuple(self.items), self.four_eyes, self.traffic_written)

    def create(
        self, *, stack: str, rollout: str, phase: int, decision: str, reason: str
    ) -> approvals.Approval:
        if phase not in approvals.roles().get(self.user, []):
            raise ApprovalRefused(
                f'user "{self.user}" may not approve {approvals.gate_name(phase)}: missing RBAC '
                f'permission: verb "approve"',
                self.user,
            )
        a = approvals.Approval(
            name=f"{stack}-{approvals.gate_name(phase)}-{len(self.items)}",
            stack=stack,
            rollout=rollout,
            phase=phase,
            decision=decision,
            approver=self.user,
            created=self.clock().replace(microsecond=0),
        )
        self.snapshot()
        self.items.append(a)
        if self.path is not None:
            rows = [{**dataclasses.asdict(x), "created": x.created.isoformat()} for x in self.items]
            self.path.write_text(json.dumps(rows))
        return a


def _store(d: Any) -> FakeApprovals:
    if d.approvals is None:
        d.approvals = FakeApprovals(d.clock)
    assert isinstance(d.approvals, FakeApprovals)
    return d.approvals


def approve(d: Any, role: str, decision: str = "continue") -> int:
    """``./ce rollout approve`` by the person holding ``role`` (a fake user of that name)."""
    _store(d).user = role
    return int(d.approve(decision))


def advance_as(d: Any, role: str, prometheus_url: str) -> Any:
    """What ``advance --approved-by ROLE`` was: ``role`` approves, then one ``advance``."""
    approve(d, role)
    return d.advance(prometheus_url)


def promote_as(d: Any, role: str) -> int:
    approve(d, role)
    return int(d.promote())
