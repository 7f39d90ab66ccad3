"""rollout.gate: pure verdicts with numbers, profiles, hard vs soft checks, PromQL text."""

from __future__ import annotations

import json
import math

import pytest

from components.app import traffic_targets
from rollout import phases
from rollout.gate import (
    GateConfigError,
    GateInputs,
    GateTarget,
    GateThresholds,
    Verdict,
    build_queries,
    evaluate,
)
from tests.unit.conftest import settings_for

NAMES = frozenset({"istio_requests_total", "istio_request_duration_milliseconds_bucket"})
T = GateThresholds(min_requests=100)


def inputs(**kw: object) -> GateInputs:
    base: dict[str, object] = {
        "metric_names": NAMES,
        "error_ratio": 0.0,
        "p95_ms": 120.0,
        "p99_ms": 300.0,
        "request_count": 5000.0,
        "agents_down": 0.0,
        "workflow_failure_ratio": 0.0,
    }
    base.update(kw)
    return GateInputs(**base)  # type: ignore[arg-type]


def failed(result: object) -> dict[str, str]:
    return {c.name: c.reason for c in result.failures}  # type: ignore[attr-defined]


def test_healthy_passes_every_profile() -> None:
    for p in phases.PHASES:
        r = evaluate(inputs(), T, p.gate_profile)
        assert r.verdict is Verdict.PASS, r.summary()
        assert [c.name for c in r.checks] == list(p.gate_profile)


def test_error_ratio_fails_with_value_and_threshold() -> None:
    r = evaluate(inputs(error_ratio=0.02), T)
    assert r.verdict is Verdict.FAIL and r.hard_failure
    assert failed(r) == {"error_ratio": "error_ratio: 2.000% >= 0.100% (canary)"}


def test_p99_over_1000ms_is_a_hard_failure() -> None:
    r = evaluate(inputs(p99_ms=1200.0), T)
    assert failed(r) == {"p99": "p99: 1200.0 ms >= 1000.0 ms (canary)"} and r.hard_failure


@pytest.mark.parametrize("field", ["error_ratio", "p95_ms", "p99_ms", "request_count"])
@pytest.mark.parametrize("missing", [None, math.nan])
def test_no_data_never_passes_and_is_hard(field: str, missing: float | None) -> None:
    r = evaluate(inputs(**{field: missing}), T)
    assert r.verdict is Verdict.FAIL and r.hard_failure
    assert "no data" in r.summary()


def test_agents_down_is_soft() -> None:
    r = evaluate(inputs(agents_down=5.0), T)
    assert failed(r) == {"agents_up": "agents_up: 5 agents down > 3 (canary)"}
    assert r.verdict is Verdict.FAIL and not r.hard_failure
    assert evaluate(inputs(agents_down=3.0), T).passed  # the SPEC tolerates 3 of 61


def test_workflow_failures_are_soft_and_judged_where_the_spec_asks() -> None:
    """SPEC phase 2: "workflow state correct" (SRE) -> else pause; success >= 98 %."""
    r = evaluate(inputs(workflow_failure_ratio=0.05), T)
    assert failed(r) == {"workflows": "workflows: 5.000% >= 2.000% (canary)"}
    assert r.verdict is Verdict.FAIL and not r.hard_failure
    assert evaluate(inputs(workflow_failure_ratio=0.019), T).passed
    no_data = evaluate(inputs(workflow_failure_ratio=None), T)
    assert "no data" in failed(no_data)["workflows"] and not no_data.hard_failure
    assert "workflows" in phases.phase(2).gate_profile
    assert "workflows" in phases.phase(0).gate_profile  # GO/NO-GO: stable's workflows
    assert (
        GateThresholds.from_config({"maxWorkflowFailureRatio": 0.05}).max_workflow_failure_ratio
        == 0.05
    )


def test_thresholds_are_strict() -> None:
    assert not evaluate(inputs(error_ratio=0.001), T).passed
    assert not evaluate(inputs(p95_ms=500.0), T).passed


def test_unknown_check_in_profile() -> None:
    with pytest.raises(GateConfigError, match="unknown gate checks"):
        evaluate(inputs(), T, ("vibes",))


def test_audit_form_is_json_safe() -> None:
    r = evaluate(inputs(p95_ms=math.nan), T)
    json.dumps(r.as_audit(), allow_nan=False)
    assert r.as_audit()["verdict"] == "fail"


def test_thresholds_from_config() -> None:
    t = GateThresholds.from_config({"maxErrorRatio": "0.005", "maxP99Ms": 900, "window": "30s"})
    assert (t.max_error_ratio, t.max_p99_ms, t.window) == (0.005, 900, "30s")
    for bad, msg in (
        ({"maxErrors": 1}, r"unknown rollout\.gate keys"),
        ({"window": "5 minutes"}, "window"),
        ({"selector": "job=x"}, "selector"),
        ({"minRequests": 0}, "no data must never pass"),
        ({"canaryVersion": "canary"}, r"unknown rollout\.gate keys"),  # versions come from app
    ):
        with pytest.raises(GateConfigError, match=msg):
            GateThresholds.from_config(bad)


def test_queries_select_the_programs_istio_labels() -> None:
    """Defect 3 of issue 9: the gate selects the pods' version label (5.1.0), not "canary"."""
    s = settings_for("local", 1, None)
    targets = traffic_targets(s.app, s.namespaces.app)
    canary = GateTarget("canary", targets["canary"]["destination"], targets["canary"]["pod"])
    q = build_queries(GateThresholds(window="30s"), canary)
    sel = (
        '{reporter="destination",destination_app="api",destination_version="5.1.0",'
        'destination_workload="api-green",destination_workload_namespace="claude-enhancer"'
    )
    assert q.request_count == f"sum(increase(istio_requests_total{sel}}}[30s]))"
    assert f'istio_requests_total{sel},response_code=~"5.."}}[30s]' in q.error_ratio
    assert q.p99_ms.startswith("histogram_quantile(0.99, sum by (le) (rate(")
    assert 'ce_agent_up{namespace="claude-enhancer",version="5.1.0"}' in q.agents_down
    assert '"canary"' not in q.error_ratio + q.p95_ms + q.request_count
