"""Fake collaborators: a Pulumi stack without a CLI, a Prometheus without HTTP, a clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from components import rollout
from driver.prom import PromError
from driver.stack import OnOutput, Resource, UpOutcome


class FakeStack:
    """Behaves like the program: ``up`` deploys ``rollout.phase`` and exports its outputs."""

    project = "claude-enhancer"

    def __init__(
        self,
        stack_name: str = "test",
        config: dict[str, Any] | None = None,
        deployed: int | None = None,
        fail_up: bool = False,
    ) -> None:
        self.stack_name = stack_name
        self.config: dict[str, Any] = dict(config or {"phase": 0})
        self._outputs: dict[str, Any] = {}
        self.fail_up = fail_up
        self.up_calls: list[dict[str, Any]] = []
        if deployed is not None:
            self._outputs = self._outputs_for(deployed)

    @staticmethod
    def _outputs_for(phase: int) -> dict[str, Any]:
        w = rollout.weights_for(phase)
        return {
            "rolloutPhase": phase,
            "canaryWeight": w.canary,
            "stableWeight": w.stable,
            "namespace": "claude-enhancer",
            "virtualServiceName": "claude-enhancer",
        }

    def rollout_config(self) -> dict[str, Any]:
        return dict(self.config)

    def set_phase(self, phase: int) -> None:
        self.config["phase"] = str(phase)  # the CLI hands config back as strings sometimes

    def outputs(self) -> dict[str, Any]:
        return dict(self._outputs)

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        phase = int(self.config["phase"])
        self.up_calls.append({"phase": phase, "targets": targets})
        on_output(f"Updating (fake): phase {phase}")
        if self.fail_up:
            raise RuntimeError("boom: kube-apiserver unreachable")
        prev = self._outputs.get("rolloutPhase")
        rollout.check_transition(prev, phase, bool(self.config.get("allowSkip", False)))
        self._outputs = self._outputs_for(phase)
        return UpOutcome(outputs=dict(self._outputs), result="succeeded", summary={"update": 1})

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

    def metric_names(self) -> frozenset[str]:
        if self.fail:
            raise PromError("cannot query Prometheus at http://127.0.0.1:1: connection refused")
        return frozenset(self.names)

    def query_scalar(self, promql: str) -> float | None:
        self.queries.append(promql)
        if promql.startswith("histogram_quantile"):
            return self.values.get("p95_ms")
        if promql.startswith("sum(increase"):
            return self.values.get("request_count")
        return self.values.get("error_ratio")


HEALTHY = {"error_ratio": 0.0, "p95_ms": 120.0, "request_count": 5000.0}


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)
