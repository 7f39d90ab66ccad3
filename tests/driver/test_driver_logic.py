"""Unit tests: pure gate / bake / approval logic, audit log, and the driver with fakes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from components import rollout
from driver import bake, cli, core
from driver.audit import REDACTED, AuditLog, default_audit_path, redact
from driver.gate import (
    GateConfigError,
    GateInputs,
    GateThresholds,
    build_queries,
    evaluate_gate,
    gate_version_for,
)
from driver.prom import collect_gate_inputs
from driver.stack import Resource, rollback_targets
from tests.driver.driver_fakes import HEALTHY, Clock, FakeProm, FakeStack

NAMES = frozenset({"istio_requests_total", "istio_request_duration_milliseconds_bucket"})
T = GateThresholds(min_requests=100)


def inputs(**kw: object) -> GateInputs:
    base: dict[str, object] = {
        "metric_names": NAMES,
        "error_ratio": 0.0,
        "p95_ms": 120.0,
        "request_count": 5000.0,
    }
    base.update(kw)
    return GateInputs(**base)  # type: ignore[arg-type]


def failed(result: object) -> dict[str, str]:
    return {c.name: c.reason for c in result.failures}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- gate (pure)
class TestGate:
    def test_healthy_passes(self) -> None:
        r = evaluate_gate(inputs(), T)
        assert r.passed, r.summary()
        assert {c.name for c in r.checks} == {
            "metrics_present",
            "request_count",
            "error_ratio",
            "p95_latency",
        }

    def test_two_percent_errors_fail_with_value_and_threshold(self) -> None:
        r = evaluate_gate(inputs(error_ratio=0.02), T)
        assert not r.passed
        assert failed(r) == {"error_ratio": "error_ratio: 2.000% >= 0.100% (canary)"}

    def test_error_ratio_threshold_is_strict(self) -> None:
        assert not evaluate_gate(inputs(error_ratio=0.001), T).passed
        assert evaluate_gate(inputs(error_ratio=0.000999), T).passed

    def test_p95_800ms_fails(self) -> None:
        r = evaluate_gate(inputs(p95_ms=800.0), T)
        assert failed(r) == {"p95_latency": "p95_latency: 800.0 ms >= 500 ms (canary)"}

    def test_p95_threshold_is_strict(self) -> None:
        assert not evaluate_gate(inputs(p95_ms=500.0), T).passed
        assert evaluate_gate(inputs(p95_ms=499.9), T).passed

    @pytest.mark.parametrize("missing", [None, math.nan, math.inf])
    def test_no_data_never_passes(self, missing: float | None) -> None:
        r = evaluate_gate(inputs(error_ratio=missing, p95_ms=missing, request_count=missing), T)
        assert not r.passed
        assert set(failed(r)) == {"request_count", "error_ratio", "p95_latency"}
        assert "no data" in failed(r)["request_count"]

    def test_too_few_requests_fail(self) -> None:
        r = evaluate_gate(inputs(request_count=99.0), T)
        assert failed(r) == {"request_count": "request_count: 99 < 100 (canary, 5m)"}
        assert evaluate_gate(inputs(request_count=100.0), T).passed

    def test_missing_metric_names_fail(self) -> None:
        r = evaluate_gate(inputs(metric_names=frozenset({"istio_requests_total"})), T)
        assert (
            "missing ['istio_request_duration_milliseconds_bucket']" in failed(r)["metrics_present"]
        )

    def test_prometheus_unreachable_fails(self) -> None:
        r = evaluate_gate(
            inputs(
                metric_names=None,
                error_ratio=None,
                p95_ms=None,
                request_count=None,
                errors=("connection refused",),
            ),
            T,
        )
        assert not r.passed
        assert "could not list metric names" in failed(r)["metrics_present"]
        assert "connection refused" in failed(r)["prometheus_api"]

    def test_min_requests_zero_rejected(self) -> None:
        with pytest.raises(GateConfigError, match="no data must never pass"):
            GateThresholds(min_requests=0)

    def test_from_config(self) -> None:
        t = GateThresholds.from_config(
            {
                "maxErrorRatio": "0.005",
                "maxP95Ms": 300,
                "minRequests": 10,
                "window": "30s",
                "selector": 'job="x"',
            }
        )
        assert (t.max_error_ratio, t.max_p95_ms, t.min_requests, t.window) == (
            0.005,
            300,
            10,
            "30s",
        )
        assert GateThresholds.from_config(None) == GateThresholds()
        with pytest.raises(GateConfigError, match=r"unknown rollout\.gate keys"):
            GateThresholds.from_config({"maxErrors": 1})
        with pytest.raises(GateConfigError, match="window"):
            GateThresholds.from_config({"window": "5 minutes"})
        with pytest.raises(GateConfigError, match="selector"):
            GateThresholds.from_config({"selector": "job=x"})

    def test_queries_use_istio_names_selector_and_window(self) -> None:
        q = build_queries(GateThresholds(window="30s", selector='reporter="destination",job="a"'))
        sel = '{reporter="destination",job="a",destination_version="canary"'
        assert q.request_count == f"sum(increase(istio_requests_total{sel}}}[30s]))"
        assert f'istio_requests_total{sel},response_code=~"5.."}}[30s]' in q.error_ratio
        assert "or vector(0)" in q.error_ratio
        assert q.p95_ms.startswith(
            "histogram_quantile(0.95, sum by (le) (rate(istio_request_duration_milliseconds_bucket"
        )
        assert 'destination_version="stable"' in build_queries(GateThresholds(), "stable").p95_ms

    def test_go_no_go_judges_stable(self) -> None:
        assert gate_version_for(0, T) == "stable"
        assert [gate_version_for(p, T) for p in (1, 2, 3)] == ["canary"] * 3

    def test_audit_form_is_json_safe(self) -> None:
        r = evaluate_gate(inputs(p95_ms=math.nan), T)
        json.dumps(r.as_audit(), allow_nan=False)


class TestCollect:
    def test_collect_uses_all_queries(self) -> None:
        prom = FakeProm(values=HEALTHY)
        gi = collect_gate_inputs(prom, T, "canary")
        assert (gi.error_ratio, gi.p95_ms, gi.request_count) == (0.0, 120.0, 5000.0)
        assert len(prom.queries) == 3

    def test_missing_metrics_skip_queries(self) -> None:
        prom = FakeProm(names={"up"}, values=HEALTHY)
        gi = collect_gate_inputs(prom, T, "canary")
        assert prom.queries == [] and gi.request_count is None
        assert not evaluate_gate(gi, T).passed

    def test_nan_becomes_no_data(self) -> None:
        gi = collect_gate_inputs(FakeProm(values={**HEALTHY, "p95_ms": math.nan}), T, "canary")
        assert gi.p95_ms is None

    def test_unreachable(self) -> None:
        gi = collect_gate_inputs(FakeProm(fail=True), T, "canary")
        assert gi.metric_names is None and gi.errors


# ---------------------------------------------------------------- bake + approval (pure)
class TestBake:
    def entries(self) -> list[dict[str, object]]:
        return [
            {"ts": "2025-01-01T10:00:00.000Z", "result": "applied", "to_phase": 1},
            {"ts": "2025-01-01T10:20:00.000Z", "result": "refused", "to_phase": 2},
            {"ts": "2025-01-01T10:40:00.000Z", "result": "applied", "to_phase": 2},
        ]

    def test_entered_at_is_last_applied(self) -> None:
        assert bake.phase_entered_at(self.entries(), 2) == bake.parse_ts("2025-01-01T10:40:00Z")
        assert bake.phase_entered_at(self.entries(), 1) is None  # left phase 1 since
        assert bake.phase_entered_at([], 0) is None

    def test_remaining_and_done(self) -> None:
        entered = bake.parse_ts("2025-01-01T10:40:00Z")
        s = bake.bake_status(2, entered, 45, bake.parse_ts("2025-01-01T11:00:00Z"))
        assert (s.required_s, s.elapsed_s, s.remaining_s, s.done) == (2700, 1200, 1500, False)
        assert "1500 s of 2700 s" in s.describe()
        assert bake.bake_status(2, entered, 45, bake.parse_ts("2025-01-01T11:25:00Z")).done

    def test_unknown_entry_time_is_not_done(self) -> None:
        s = bake.bake_status(1, None, 30, bake.parse_ts("2025-01-01T11:25:00Z"))
        assert not s.done and "entry time unknown" in s.describe()

    def test_phase_zero_and_zero_minutes_need_no_bake(self) -> None:
        assert bake.bake_status(0, None, 0, bake.parse_ts("2025-01-01T00:00:00Z")).done

    def test_bake_minutes_from_config_with_spec_fallback(self) -> None:
        assert bake.bake_minutes_for(2, {"2": 0.1}) == 0.1
        assert [bake.bake_minutes_for(p, {}) for p in (0, 1, 2, 3, 4)] == [0, 30, 45, 30, 15]
        with pytest.raises(rollout.RolloutError):
            bake.bake_minutes_for(1, {"1": -1})

    @pytest.mark.parametrize(
        ("phase", "role"),
        [(0, "deployment-commander"), (1, "tech-lead"), (2, "sre"), (3, "product-owner")],
    )
    def test_deciders(self, phase: int, role: str) -> None:
        assert bake.check_approval(phase, role).ok
        assert bake.check_approval(phase, role.upper()).ok
        wrong = bake.check_approval(phase, "intern")
        assert not wrong.ok and role in wrong.describe()

    def test_no_decider_for_final_phase(self) -> None:
        with pytest.raises(rollout.RolloutError):
            bake.check_approval(4, "sre")


# ---------------------------------------------------------------- audit
class TestAudit:
    def test_default_path(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.delenv("CE_AUDIT_DIR", raising=False)
        monkeypatch.setenv("CE_HOME", str(tmp_path))
        assert (
            default_audit_path("claude-enhancer", "local")
            == tmp_path / "audit" / "claude-enhancer-local.jsonl"
        )
        monkeypatch.setenv("CE_AUDIT_DIR", str(tmp_path / "x"))
        assert default_audit_path("p", "org/s") == tmp_path / "x" / "p-org_s.jsonl"

    def test_append_and_redact(self, tmp_path: Path) -> None:
        log = AuditLog(tmp_path / "a" / "log.jsonl")
        log.append(
            {
                "actor": "sre",
                "token": "abc",
                "prometheus": "http://u:pw@127.0.0.1:9090",
                "reason": "vault hvs.CAESIabc123 leaked",
            }
        )
        log.append({"actor": "sre", "n": 2})
        (e1, e2) = log.entries()
        assert (
            e1["token"] == REDACTED and "pw" not in e1["prometheus"] and "hvs." not in e1["reason"]
        )
        assert e2["n"] == 2 and log.tail(1) == [e2]
        assert redact({"nested": {"password": "x"}}) == {"nested": {"password": REDACTED}}


# ---------------------------------------------------------------- driver with fakes
def make_driver(
    tmp_path: Path, stack: FakeStack, prom: FakeProm | None = None, clock: Clock | None = None
) -> tuple[core.Driver, list[str], Clock]:
    lines: list[str] = []
    clk = clock or Clock()
    p = prom or FakeProm(values=HEALTHY)
    d = core.Driver(
        stack,
        AuditLog(tmp_path / "audit.jsonl"),
        clock=clk,
        prom_factory=lambda url: p,
        out=lines.append,
    )
    return d, lines, clk


CFG = {"phase": 0, "bakeMinutes": {"1": 30, "2": 45, "3": 30, "4": 15}}


class TestDriver:
    def test_full_rollout_0_to_4(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, lines, clk = make_driver(tmp_path, stack)
        roles = ["deployment-commander", "tech-lead", "sre", "product-owner"]
        bakes = [0, 30, 45, 30]
        for phase, (role, minutes) in enumerate(zip(roles, bakes, strict=True)):
            clk.advance(minutes)
            rep = d.advance(role, "http://prom")
            assert rep.code == core.OK, lines
            assert stack.outputs()["rolloutPhase"] == phase + 1
        assert stack.outputs()["canaryWeight"] == 100
        log = d.audit.entries()
        assert [(e["from_phase"], e["to_phase"], e["result"], e["actor"]) for e in log] == [
            (0, 1, "applied", "deployment-commander"),
            (1, 2, "applied", "tech-lead"),
            (2, 3, "applied", "sre"),
            (3, 4, "applied", "product-owner"),
        ]
        assert log[0]["gate"]["version"] == "stable" and log[1]["gate"]["version"] == "canary"
        assert all(e["gate"]["passed"] and e["ts"].endswith("Z") for e in log)
        assert d.advance("product-owner", "http://prom").code == core.REFUSED  # final
        info = d.status()
        assert info["deployedPhase"] == 4 and info["weights"] == {"stable": 0, "canary": 100}

    def test_bake_time_enforced(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, _lines, clk = make_driver(tmp_path, stack)
        assert d.advance("deployment-commander", "u").code == core.OK
        clk.advance(29)
        rep = d.advance("tech-lead", "u")
        assert (
            rep.code == core.REFUSED
            and "bake time not over" in rep.reason
            and "60 s of 1800 s" in rep.reason
        )
        assert stack.outputs()["rolloutPhase"] == 1 and len(stack.up_calls) == 1
        clk.advance(1)
        assert d.advance("tech-lead", "u").code == core.OK

    def test_unknown_entry_time_refused(self, tmp_path: Path) -> None:
        stack = FakeStack(config={**CFG, "phase": 2}, deployed=2)
        d, _, _ = make_driver(tmp_path, stack)
        rep = d.advance("sre", "u")
        assert rep.code == core.REFUSED and "entry time unknown" in rep.reason

    def test_wrong_approver_refused_without_touching_stack(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        prom = FakeProm(values=HEALTHY)
        d, _, _ = make_driver(tmp_path, stack, prom)
        rep = d.advance("tech-lead", "u")
        assert rep.code == core.REFUSED and "deployment-commander" in rep.reason
        assert stack.up_calls == [] and prom.queries == []
        assert d.audit.entries()[-1]["result"] == "refused"

    @pytest.mark.parametrize(
        ("values", "check"),
        [
            ({**HEALTHY, "error_ratio": 0.02}, "error_ratio"),
            ({**HEALTHY, "p95_ms": 800.0}, "p95_latency"),
            ({}, "request_count"),
        ],
    )
    def test_gate_failure_rolls_back(
        self, tmp_path: Path, values: dict[str, float], check: str
    ) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        good = FakeProm(values=HEALTHY)
        bad = FakeProm(values=values)
        current = {"p": good}
        lines: list[str] = []
        clk = Clock()
        d = core.Driver(
            stack,
            AuditLog(tmp_path / "a.jsonl"),
            clock=clk,
            prom_factory=lambda url: current["p"],
            out=lines.append,
        )
        assert d.advance("deployment-commander", "u").code == core.OK
        clk.advance(30)
        current["p"] = bad
        rep = d.advance("tech-lead", "u")
        assert rep.code == core.ROLLED_BACK
        assert stack.outputs()["rolloutPhase"] == 0 and stack.outputs()["canaryWeight"] == 0
        assert [c["phase"] for c in stack.up_calls] == [1, 0]
        gate_e, rb_e = d.audit.entries()[-2:]
        assert (gate_e["result"], gate_e["from_phase"], gate_e["to_phase"]) == ("gate_failed", 1, 2)
        assert any(c["name"] == check and not c["passed"] for c in gate_e["gate"]["checks"])
        assert (rb_e["action"], rb_e["result"], rb_e["to_phase"], rb_e["trigger"]) == (
            "rollback",
            "applied",
            0,
            "gate_failed",
        )
        assert rb_e["actor"] == "auto:tech-lead" and "wall_s" in rb_e
        assert any(f"[FAIL] {check}" in line for line in lines)
        assert any("rollback to phase 0" in line and "wall time" in line for line in lines)

    def test_config_output_mismatch_refused(self, tmp_path: Path) -> None:
        stack = FakeStack(config={**CFG, "phase": 2}, deployed=1)
        d, _, _ = make_driver(tmp_path, stack)
        rep = d.advance("tech-lead", "u")
        assert rep.code == core.REFUSED and "differs from deployed" in rep.reason

    def test_up_failure_reported(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0, fail_up=True)
        d, _lines, _ = make_driver(tmp_path, stack)
        rep = d.advance("deployment-commander", "u")
        assert rep.code == core.ERROR and "boom" in rep.reason
        assert d.audit.entries()[-1]["result"] == "error"

    def test_manual_rollback_full_and_targeted(self, tmp_path: Path) -> None:
        stack = FakeStack(config={**CFG, "phase": 3}, deployed=3)
        d, _lines, _ = make_driver(tmp_path, stack)
        assert d.rollback("sre", targeted=True) == core.OK
        assert stack.outputs()["rolloutPhase"] == 0
        targets = stack.up_calls[-1]["targets"]
        assert targets is not None and any(t.endswith("::virtual-service") for t in targets)
        assert any(t.endswith("::api-green") for t in targets)
        assert any(t.endswith("::claude-enhancer-test") for t in targets)
        assert not any(t.endswith(("::api-blue", "::dr-api")) or "providers" in t for t in targets)
        e = d.audit.entries()[-1]
        assert (e["action"], e["from_phase"], e["to_phase"], e["mode"]) == (
            "rollback",
            3,
            0,
            "targeted",
        )
        assert d.rollback("sre") == core.OK and stack.up_calls[-1]["targets"] is None

    def test_rollback_targets_need_a_virtualservice(self) -> None:
        assert (
            rollback_targets([Resource("urn:a::x-canary", "kubernetes:apps/v1:Deployment")]) == []
        )
        state = {
            "urn": "urn:a::vs",
            "type": "kubernetes:networking.istio.io/v1:VirtualService",
            "inputs": {"kind": "VirtualService", "metadata": {"labels": {"a": "b"}}},
        }
        assert Resource.from_state(state).kind == "VirtualService"
        assert rollback_targets([Resource.from_state(state)]) == ["urn:a::vs"]

    def test_status(self, tmp_path: Path) -> None:
        stack = FakeStack(config=dict(CFG), deployed=0)
        d, lines, clk = make_driver(tmp_path, stack)
        d.advance("deployment-commander", "u")
        clk.advance(10)
        info = d.status()
        assert info["deployedPhase"] == 1 and info["weights"] == {"stable": 95, "canary": 5}
        assert info["bake"]["remainingSeconds"] == 1200 and not info["bake"]["done"]
        assert info["nextDecider"] == "tech-lead" and len(info["audit"]) == 1
        d.print_status(info)
        assert any("1200 s of 1800 s" in line for line in lines)


class TestCli:
    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc:
            cli.main(["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "advance" in out and "rollback" in out and "deployment-commander" in out

    def test_status_json_and_advance_with_fake_runner(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        stack = FakeStack(config={**CFG, "gate": {"minRequests": 1}}, deployed=0)
        log = tmp_path / "audit.jsonl"
        code = cli.main(
            ["--stack", "test", "--audit-log", str(log), "status", "--json"],
            runner_factory=lambda s, w: stack,
        )
        assert code == 0
        info = json.loads(capsys.readouterr().out)
        assert info["deployedPhase"] == 0 and info["auditLog"] == str(log)
        # no Prometheus listening there: the gate fails closed and rolls back (already at 0)
        code = cli.main(
            [
                "--audit-log",
                str(log),
                "advance",
                "--approved-by",
                "deployment-commander",
                "--prometheus",
                "http://127.0.0.1:9",
            ],
            runner_factory=lambda s, w: stack,
        )
        assert code == core.ROLLED_BACK
        out = capsys.readouterr().out
        assert "[FAIL] metrics_present" in out and stack.outputs()["rolloutPhase"] == 0

    def test_bad_gate_config_is_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        stack = FakeStack(config={**CFG, "gate": {"window": "forever"}}, deployed=0)
        code = cli.main(
            ["--audit-log", str(tmp_path / "a"), "status"], runner_factory=lambda s, w: stack
        )
        assert code == core.REFUSED and "window" in capsys.readouterr().err
