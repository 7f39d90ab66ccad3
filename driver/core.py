"""status / advance / rollback orchestration.

All side effects go through injected collaborators (stack runner, audit log,
Prometheus client factory, clock, output), so the decision logic is tested
with fakes and the same code drives the real stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from components import rollout
from driver import bake
from driver.audit import AuditLog
from driver.gate import GateResult, GateThresholds, evaluate_gate, gate_version_for
from driver.prom import PromAPI, PrometheusClient, collect_gate_inputs
from driver.stack import StackRunner, rollback_targets

# exit codes
OK = 0
ERROR = 1
REFUSED = 2
ROLLED_BACK = 3

Clock = Callable[[], datetime]
Printer = Callable[[str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RolloutConfig:
    phase: int
    phase_weights: tuple[int, ...]
    bake_minutes: dict[str, Any]
    gate: GateThresholds
    allow_skip: bool = False


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise rollout.RolloutError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise rollout.RolloutError(f"{what} must be an integer, got {value!r}")


def parse_rollout_config(raw: Mapping[str, Any]) -> RolloutConfig:
    """Parse the ``claude-enhancer:rollout`` config object (values may be strings)."""
    phase = rollout.validate_phase(_as_int(raw.get("phase", 0), "rollout.phase"))
    weights_raw = raw.get("phaseWeights", list(rollout.PHASE_WEIGHTS))
    weights = rollout.validate_phase_weights(
        tuple(_as_int(w, "rollout.phaseWeights[]") for w in weights_raw)
    )
    bake_raw = raw.get("bakeMinutes") or {}
    if not isinstance(bake_raw, Mapping):
        raise rollout.RolloutError(f"rollout.bakeMinutes must be an object, got {bake_raw!r}")
    gate_raw = raw.get("gate") or {}
    if not isinstance(gate_raw, Mapping):
        raise rollout.RolloutError(f"rollout.gate must be an object, got {gate_raw!r}")
    allow = raw.get("allowSkip", False)
    allow_skip = allow if isinstance(allow, bool) else str(allow).lower() == "true"
    return RolloutConfig(
        phase=phase,
        phase_weights=weights,
        bake_minutes={str(k): v for k, v in bake_raw.items()},
        gate=GateThresholds.from_config(gate_raw),
        allow_skip=allow_skip,
    )


@dataclass
class AdvanceReport:
    code: int
    from_phase: int | None = None
    to_phase: int | None = None
    reason: str = ""
    gate: GateResult | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)


class Driver:
    def __init__(
        self,
        runner: StackRunner,
        audit: AuditLog,
        *,
        clock: Clock = utcnow,
        prom_factory: Callable[[str], PromAPI] = PrometheusClient,
        out: Printer = print,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.audit = audit
        self.clock = clock
        self.prom_factory = prom_factory
        self.out = out
        self.monotonic = monotonic

    # ------------------------------------------------------------------ helpers
    def _config(self) -> RolloutConfig:
        return parse_rollout_config(self.runner.rollout_config())

    def _deployed_phase(self) -> int | None:
        value = self.runner.outputs().get("rolloutPhase")
        if value is None:
            return None
        return rollout.validate_phase(_as_int(value, "output rolloutPhase"))

    def _record(self, **fields: Any) -> dict[str, Any]:
        entry = {
            "ts": bake.format_ts(self.clock()),
            "project": self.runner.project,
            "stack": self.runner.stack_name,
            **fields,
        }
        return self.audit.append(entry)

    def _stream(self, line: str) -> None:
        self.out(line.rstrip("\n"))

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        cfg = self._config()
        deployed = self._deployed_phase()
        outputs = self.runner.outputs()
        current = deployed if deployed is not None else cfg.phase
        weights = rollout.weights_for(current, cfg.phase_weights)
        entries = self.audit.entries()
        entered = bake.phase_entered_at(entries, current)
        bstat = bake.bake_status(
            current, entered, bake.bake_minutes_for(current, cfg.bake_minutes), self.clock()
        )
        nxt = None if current >= rollout.MAX_PHASE else current + 1
        info: dict[str, Any] = {
            "project": self.runner.project,
            "stack": self.runner.stack_name,
            "configPhase": cfg.phase,
            "deployedPhase": deployed,
            "weights": {"stable": weights.stable, "canary": weights.canary},
            "outputs": {
                k: outputs.get(k) for k in ("rolloutPhase", "canaryWeight", "stableWeight")
            },
            "bake": {
                "requiredSeconds": bstat.required_s,
                "enteredAt": bake.format_ts(bstat.entered_at) if bstat.entered_at else None,
                "remainingSeconds": None
                if bstat.remaining_s is None
                else max(0.0, bstat.remaining_s),
                "done": bstat.done,
                "text": bstat.describe(),
            },
            "nextPhase": nxt,
            "nextDecider": rollout.decider_for(current) if nxt is not None else None,
            "audit": entries[-5:],
            "inSync": deployed is None or deployed == cfg.phase,
        }
        return info

    def print_status(self, info: Mapping[str, Any]) -> None:
        o = self.out
        o(f"stack            {info['project']}/{info['stack']}")
        dep = info["deployedPhase"]
        o(f"phase (config)   {info['configPhase']}")
        o(
            f"phase (deployed) {'never deployed' if dep is None else dep}"
            + ("" if info["inSync"] else "   <-- differs from config: run `up` or `rollback`")
        )
        w = info["weights"]
        o(f"weights          stable {w['stable']}% / canary {w['canary']}%")
        outs = info["outputs"]
        if outs.get("canaryWeight") is not None:
            o(
                f"outputs          canaryWeight={outs['canaryWeight']} stableWeight={outs['stableWeight']}"
            )
        o(f"bake             {info['bake']['text']}")
        if info["nextPhase"] is None:
            o("next             final phase reached (100% canary); nothing to advance")
        else:
            o(f"next             phase {info['nextPhase']}, approved by {info['nextDecider']}")
        o("last audit entries:")
        if not info["audit"]:
            o("  (none)")
        for e in info["audit"]:
            o("  " + _audit_line(e))

    # ------------------------------------------------------------------ advance
    def advance(self, approved_by: str, prometheus_url: str) -> AdvanceReport:
        cfg = self._config()
        deployed = self._deployed_phase()
        current = deployed if deployed is not None else cfg.phase
        base = {"action": "advance", "actor": approved_by, "from_phase": current}

        def refuse(reason: str, to_phase: int | None = None) -> AdvanceReport:
            e = self._record(**base, to_phase=to_phase, result="refused", reason=reason)
            self.out(f"REFUSED: {reason}")
            return AdvanceReport(REFUSED, current, to_phase, reason, entries=[e])

        if deployed is not None and deployed != cfg.phase:
            return refuse(
                f"config phase {cfg.phase} differs from deployed phase {deployed}; "
                "finish that update (`pulumi up`) or run `rollback` first"
            )
        if current >= rollout.MAX_PHASE:
            return refuse(f"phase {current} is final (100% canary); nothing to advance")
        target = rollout.next_phase(current)
        rollout.check_transition(current, target, cfg.allow_skip)

        # 1. bake time of the current phase
        entered = bake.phase_entered_at(self.audit.entries(), current)
        bstat = bake.bake_status(
            current, entered, bake.bake_minutes_for(current, cfg.bake_minutes), self.clock()
        )
        if not bstat.done:
            return refuse(f"bake time not over: {bstat.describe()}", target)

        # 2. approval by the SPEC decider of the phase being left
        approval = bake.check_approval(current, approved_by)
        if not approval.ok:
            return refuse(approval.describe(), target)

        # 3. metrics gate through Prometheus
        version = gate_version_for(current, cfg.gate)
        self.out(f"gate: querying {prometheus_url} ({version}, window {cfg.gate.window})")
        inputs = collect_gate_inputs(self.prom_factory(prometheus_url), cfg.gate, version)
        result = evaluate_gate(inputs, cfg.gate)
        for c in result.checks:
            self.out(f"  [{'PASS' if c.passed else 'FAIL'}] {c.reason}")
        gate_audit = {
            **result.as_audit(),
            "version": version,
            "window": cfg.gate.window,
            "prometheus": prometheus_url,
        }
        if not result.passed:
            reason = result.summary()
            e1 = self._record(
                **base, to_phase=target, result="gate_failed", reason=reason, gate=gate_audit
            )
            self.out(f"{reason}\nautomatic rollback to phase 0 (all traffic on stable)")
            rb_code, e2 = self._rollback(
                actor=f"auto:{approval.given}",
                trigger="gate_failed",
                reason=reason,
                from_phase=current,
                targeted=False,
            )
            code = ROLLED_BACK if rb_code == OK else ERROR
            return AdvanceReport(code, current, 0, reason, result, entries=[e1, e2])

        # 4. apply
        self.out(
            f"{approval.describe()}; phase {current} -> {target} "
            f"({rollout.weights_for(target, cfg.phase_weights).canary}% canary)"
        )
        t0 = self.monotonic()
        try:
            self.runner.set_phase(target)
            outcome = self.runner.up(self._stream)
        except Exception as exc:
            wall = self.monotonic() - t0
            reason = f"pulumi up failed: {_short(exc)}"
            e = self._record(
                **base,
                to_phase=target,
                result="error",
                reason=reason,
                gate=gate_audit,
                wall_s=round(wall, 3),
            )
            self.out(
                f"ERROR: {reason}\nconfig is at phase {target}; re-run `pulumi up` or `rollback`"
            )
            return AdvanceReport(ERROR, current, target, reason, result, entries=[e])
        wall = self.monotonic() - t0
        got = outcome.outputs.get("rolloutPhase")
        if got is None or _as_int(got, "output rolloutPhase") != target:
            reason = f"up finished but output rolloutPhase={got!r}, expected {target}"
            e = self._record(
                **base,
                to_phase=target,
                result="error",
                reason=reason,
                gate=gate_audit,
                wall_s=round(wall, 3),
            )
            self.out(f"ERROR: {reason}")
            return AdvanceReport(ERROR, current, target, reason, result, entries=[e])
        e = self._record(
            **base,
            to_phase=target,
            result=bake.APPLIED,
            reason=approval.describe(),
            gate=gate_audit,
            wall_s=round(wall, 3),
            changes=outcome.summary,
        )
        self.out(
            f"phase {target} applied in {wall:.1f} s; canaryWeight={outcome.outputs.get('canaryWeight')}"
            f" stableWeight={outcome.outputs.get('stableWeight')}"
        )
        return AdvanceReport(OK, current, target, approval.describe(), result, entries=[e])

    # ------------------------------------------------------------------ rollback
    def rollback(self, actor: str, reason: str = "manual rollback", targeted: bool = False) -> int:
        deployed = self._deployed_phase()
        current = deployed if deployed is not None else self._config().phase
        code, _ = self._rollback(
            actor=actor, trigger="manual", reason=reason, from_phase=current, targeted=targeted
        )
        return code

    def _rollback(
        self, *, actor: str, trigger: str, reason: str, from_phase: int, targeted: bool
    ) -> tuple[int, dict[str, Any]]:
        base = {
            "action": "rollback",
            "actor": actor,
            "from_phase": from_phase,
            "to_phase": 0,
            "trigger": trigger,
        }
        targets: list[str] | None = None
        mode = "full"
        if targeted:
            targets = rollback_targets(self.runner.resources()) or None
            mode = "targeted" if targets else "full (no VirtualService found to target)"
        t0 = self.monotonic()
        try:
            self.runner.set_phase(0)
            outcome = self.runner.up(self._stream, targets=targets)
        except Exception as exc:
            wall = self.monotonic() - t0
            why = f"rollback up failed after {wall:.1f} s: {_short(exc)}"
            e = self._record(
                **base, result="error", reason=f"{reason}; {why}", mode=mode, wall_s=round(wall, 3)
            )
            self.out(f"ERROR: {why}")
            return ERROR, e
        wall = self.monotonic() - t0
        got = outcome.outputs.get("rolloutPhase")
        ok = got is not None and _as_int(got, "output rolloutPhase") == 0
        e = self._record(
            **base,
            result=bake.APPLIED if ok else "error",
            reason=reason if ok else f"{reason}; output rolloutPhase={got!r} after rollback",
            mode=mode,
            wall_s=round(wall, 3),
            changes=outcome.summary,
        )
        verdict = "within" if wall <= 30 else "OVER"
        self.out(
            f"rollback to phase 0 ({mode}) took {wall:.2f} s wall time "
            f"({verdict} the SPEC's 30 s); canaryWeight={outcome.outputs.get('canaryWeight')} "
            f"stableWeight={outcome.outputs.get('stableWeight')}"
        )
        return (OK if ok else ERROR), e


def _short(exc: BaseException, limit: int = 600) -> str:
    text = str(exc).strip().replace("\n", " | ")
    return text if len(text) <= limit else text[:limit] + "..."


def _audit_line(e: Mapping[str, Any]) -> str:
    return (
        f"{e.get('ts')} {e.get('actor')} {e.get('action')} "
        f"{e.get('from_phase')}->{e.get('to_phase')} {e.get('result')}: {e.get('reason', '')}"
    )
