"""status / approve / advance / rollback / promote: the rollout's single steps.

All side effects go through injected collaborators (stack runner, audit log,
Prometheus client factory, traffic switch, notifier, metrics, clock, output),
so the decisions are tested with fakes and the same code drives the real stack.
The unattended loop that calls these is :mod:`driver.controller`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driver import bake, report
from driver.approval_store import ApprovalError, ApprovalRefused, ApprovalStore
from driver.audit import AuditLog
from driver.metrics import RolloutMetrics, controller_judgement
from driver.notify import Notifier, NullNotifier
from driver.prom import PromAPI, PrometheusClient, collect_gate_inputs
from driver.stack import StackRunner, rollback_targets
from driver.traffic import TrafficError, TrafficSwitch
from rollout import approvals as approval_model
from rollout import config as rollout_config
from rollout import phases
from rollout import signal as canary_signal
from rollout.gate import GateConfigError, GateResult, GateTarget, evaluate, track_matchers
from rollout.judge import (
    SLO_CHECKS,
    JudgeInputs,
    Judgement,
    Outcome,
    TrackCounts,
    collect_inputs,
    collect_track,
)
from rollout.judge import judge as judge_canary

# exit codes
OK = 0
ERROR = 1
REFUSED = 2
ROLLED_BACK = 3
PAUSED = 4

Clock = Callable[[], datetime]
Printer = Callable[[str], None]

APP_KEY = "claude-enhancer:app"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise phases.RolloutError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise phases.RolloutError(f"{what} must be an integer, got {value!r}")


def targets_from_outputs(outputs: Mapping[str, Any]) -> dict[str, GateTarget]:
    """Pure: the gate's per-track selectors from the stack output ``trafficTargets``."""
    raw = outputs.get("trafficTargets")
    if not isinstance(raw, Mapping) or not {"stable", "canary"} <= set(raw):
        raise GateConfigError(
            "stack output trafficTargets is missing: deploy this program version once "
            "(`./ce pulumi up`) so the gate knows the Istio labels of each track"
        )
    return {
        track: GateTarget(
            track=track,
            labels={str(k): str(v) for k, v in raw[track]["destination"].items()},
            pod_labels={str(k): str(v) for k, v in raw[track].get("pod", {}).items()},
        )
        for track in ("stable", "canary")
    }


@dataclass(frozen=True)
class ReportTarget:
    """Where the rollout report goes at the end of a rollout, and the Prometheus it reads."""

    out_dir: Path
    prometheus_url: str


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
        traffic: TrafficSwitch | None = None,
        notifier: Notifier | None = None,
        metrics: RolloutMetrics | None = None,
        report_to: ReportTarget | None = None,
        range_factory: Callable[[str], report.RangeAPI] = PrometheusClient,
        approvals: ApprovalStore | None = None,
    ) -> None:
        self.runner = runner
        self.audit = audit
        self.clock = clock
        self.prom_factory = prom_factory
        self.out = out
        self.monotonic = monotonic
        self.traffic = traffic
        self.notifier = notifier or NullNotifier()
        self.metrics = metrics
        self.report_to = report_to
        self.range_factory = range_factory
        self.approvals = approvals

    # ------------------------------------------------------------------ reading
    def config(self) -> rollout_config.RolloutConfig:
        return rollout_config.parse(self.runner.rollout_config())

    def deployed_phase(self) -> int | None:
        value = self.runner.outputs().get("rolloutPhase")
        if value is None:
            return None
        return phases.validate_phase(_as_int(value, "output rolloutPhase"))

    def current_phase(self, cfg: rollout_config.RolloutConfig | None = None) -> int:
        deployed = self.deployed_phase()
        return deployed if deployed is not None else (cfg or self.config()).phase

    def entered_at(self, phase: int) -> datetime | None:
        return bake.phase_entered_at(self.audit.entries(), phase)

    def bake_status(self, phase: int, cfg: rollout_config.RolloutConfig) -> bake.BakeStatus:
        return bake.bake_status(
            phase, self.entered_at(phase), cfg.bake_seconds(phase), self.clock()
        )

    def gate_decision(self, phase: int) -> approval_model.GateDecision:
        """The approvals that count at the gate leaving ``phase``: the one check of every path
        that advances (``run``, ``advance``, ``promote``). The API server decided who could
        create them; :func:`rollout.approvals.decide` decides which count, here.

        Without an entry time for the phase, approvals count only after the last applied
        change, so an approval from an earlier rollout never starts a new one; an audit log
        that knows no change (another machine, a fresh log) falls back to the cluster's own
        record: the last write of the traffic objects.
        """
        entries = self.audit.entries()
        since = bake.phase_entered_at(entries, phase)
        if since is None:
            applied = [e for e in entries if e.get("result") in (bake.APPLIED, "promoted")]
            since = bake.parse_ts(str(applied[-1]["ts"])) if applied else None
        snap = (
            self.approvals.snapshot() if self.approvals is not None else approval_model.Snapshot(())
        )
        if since is None:
            since = snap.traffic_written
        return approval_model.decide(snap, self.runner.stack_name, phase, since)

    def decisions(self, phase: int) -> list[dict[str, Any]]:
        """The counted approvals of :meth:`gate_decision` as audit-shaped entries (oldest first)."""
        return [
            {
                "ts": bake.format_ts(a.created),
                "action": "approve",
                "phase": a.phase,
                "actor": a.approver,
                "decision": a.decision,
                "approval": a.name,
                "rollout": a.rollout,
                "result": "recorded",
            }
            for a in self.gate_decision(phase).counted
        ]

    def approved_by(self, phase: int) -> str | None:
        """Who approved continuing past ``phase`` (the latest counted), else None."""
        given = [e for e in self.decisions(phase) if e["decision"] == "continue"]
        return str(given[-1]["actor"]) if given else None

    # ------------------------------------------------------------------ effects
    def record(
        self, *, notify: bool = True, event: str = "rollout.decision", **fields: Any
    ) -> dict[str, Any]:
        """Append an audit entry; every decision (not the ``started`` markers) is notified.
        An entry that ends the rollout (promoted, rolled back, paused) writes its report."""
        entry = {
            "ts": bake.format_ts(self.clock()),
            "project": self.runner.project,
            "stack": self.runner.stack_name,
            **fields,
        }
        clean = self.audit.append(entry)
        if notify and fields.get("result") != "started":
            self.notifier.send({"event": event, **clean})
        how = report.ends_rollout(clean)
        if how is not None and self.report_to is not None:
            self._report_at_end(how, self.report_to)
        return clean

    def write_report(self, prometheus_url: str, out_dir: Path, which: int = -1) -> Path | None:
        """The report of the audit log's rollout ``which`` (default the latest; None: there
        is no such rollout)."""
        found = report.rollouts(self.audit.entries())
        if not -len(found) <= which < len(found):
            return None
        cfg = self.config()
        try:
            targets = targets_from_outputs(self.runner.outputs())
        except GateConfigError:
            targets = {}  # the rollout's own entries may still name them
        data = report.collect(
            self.range_factory(prometheus_url),
            project=self.runner.project,
            stack=self.runner.stack_name,
            rollout=found[which],
            targets=targets,
            thresholds=cfg.gate,
            weights=report.phase_weights(cfg.weights),
            now=self.clock(),
        )
        return report.write(data, out_dir)

    def _report_at_end(self, how: str, to: ReportTarget) -> None:
        """Write the report; its path goes into the audit log and the webhook. A report that
        fails is a warning: the rollout's decision stands."""
        try:
            path = self.write_report(to.prometheus_url, to.out_dir)
        except Exception as exc:  # never let the report undo a decision
            self.out(f"warning: rollout report not written: {_short(exc)}")
            return
        if path is None:
            return
        self.out(f"rollout report ({how}): {path}")
        self.record(
            event="rollout.report",
            action=report.REPORT_ACTION,
            actor="controller",
            result="reported",
            outcome=how,
            report=str(path),
            reason=f"report of the rollout ({how})",
        )

    def _stream(self, line: str) -> None:
        self.out(line.rstrip("\n"))

    def _publish(self, phase: int, cfg: rollout_config.RolloutConfig) -> None:
        if self.metrics is not None:
            self.metrics.set_phase(phase, cfg.weights(phase).canary)

    # ------------------------------------------------------------------ gate
    def judge(
        self, phase: int, prometheus_url: str, skip: tuple[str, ...] = ()
    ) -> tuple[GateResult, dict[str, Any]]:
        """Evaluate ``phase``'s gate profile (less the ``skip`` checks) on the track it judges."""
        cfg = self.config()
        row = phases.phase(phase)
        target = targets_from_outputs(self.runner.outputs())[row.judged_track]
        inputs = collect_gate_inputs(self.prom_factory(prometheus_url), cfg.gate, target)
        profile = tuple(c for c in row.gate_profile if c not in skip)
        result = evaluate(inputs, cfg.gate, profile)
        if self.metrics is not None:
            self.metrics.gate(phase, result)
        audit = {
            **result.as_audit(),
            "track": target.track,
            "version": target.version,
            "window": cfg.gate.window,
            "prometheus": prometheus_url,
        }
        return result, audit

    def judge_canary(self, phase: int, prometheus_url: str, relative: bool = True) -> Judgement:
        """The canary judge at ``phase``: canary against the SLO over the gate's window,
        and against stable over the phase's analysis window, capped at the time since the
        phase began (traffic from before the step says nothing about this weight).

        ``relative=False``: the SLO layer only (the canary's queries over the gate window).
        Raises :class:`driver.prom.PromError` when Prometheus does not answer.
        """
        cfg = self.config()
        s = cfg.analysis.for_phase(phase)
        targets = targets_from_outputs(self.runner.outputs())
        sel = cfg.gate.selector
        canary = track_matchers(sel, targets["canary"].labels)
        api = self.prom_factory(prometheus_url)
        weight = cfg.weights(phase).canary
        slo: TrackCounts = collect_track(api.query, canary, cfg.gate.window)
        if relative:
            entered = self.entered_at(phase)
            age = s.window_s if entered is None else (self.clock() - entered).total_seconds()
            window = f"{max(1, min(s.window_s, int(age)))}s"
            stable = track_matchers(sel, targets["stable"].labels)
            inputs = collect_inputs(api.query, canary, stable, window, weight)
        else:
            inputs = JudgeInputs(slo, TrackCounts(0, 0), weight, cfg.gate.window)
        return judge_canary(
            inputs, cfg.gate, s, slo=slo, slo_window=cfg.gate.window, relative=relative
        )

    def signal(
        self, phase: int, prometheus_url: str, gate: GateResult
    ) -> canary_signal.SignalDecision:
        """Is the canary's telemetry there (:mod:`rollout.signal`)? The snapshot is read from
        Prometheus and the audit log each time, so a restarted controller decides the same.
        Raises :class:`driver.prom.PromError` when Prometheus does not answer."""
        cfg = self.config()
        targets = targets_from_outputs(self.runner.outputs())
        entered = self.entered_at(phase)
        age = None if entered is None else (self.clock() - entered).total_seconds()
        q = canary_signal.build_queries(
            track_matchers(cfg.gate.selector, targets["canary"].labels),
            track_matchers(cfg.gate.selector, targets["stable"].labels),
            age,
            cfg.gate.window,
        )
        snap = canary_signal.collect(
            self.prom_factory(prometheus_url).query,
            q,
            phase_age_s=age,
            grace_s=cfg.data_grace_s,
            canary_weight=cfg.weights(phase).canary,
            gate=gate,
        )
        return canary_signal.decide(snap)

    # ------------------------------------------------------------------ status
    def status(self, controller_url: str | None = None) -> dict[str, Any]:
        """The status snapshot: what ``status`` prints, ``--json`` dumps and ``--watch`` draws.

        The judge's last outcome comes from a running controller's ``/metrics`` at
        ``controller_url`` (it judges every turn, and records a judgement only with a
        decision), else from the last decision's judgement in the audit log."""
        cfg = self.config()
        deployed = self.deployed_phase()
        outputs = self.runner.outputs()
        current = deployed if deployed is not None else cfg.phase
        weights = cfg.weights(current)
        entries = self.audit.entries()
        bstat = self.bake_status(current, cfg)
        nxt = None if current >= phases.MAX_PHASE else current + 1
        last_judged = next(
            (e for e in reversed(entries) if isinstance(e.get("judge"), Mapping)), None
        )
        last_gated = next(
            (e for e in reversed(entries) if isinstance(e.get("gate"), Mapping)), None
        )
        paused = bake.paused_since(entries, current, bstat.entered_at)
        return {
            "project": self.runner.project,
            "stack": self.runner.stack_name,
            "now": bake.format_ts(self.clock()),
            "configPhase": cfg.phase,
            "deployedPhase": deployed,
            "weights": {"stable": weights.stable, "canary": weights.canary},
            "outputs": {
                k: outputs.get(k) for k in ("rolloutPhase", "canaryWeight", "stableWeight")
            },
            "bake": {
                "requiredSeconds": bstat.required_s,
                "enteredAt": bake.format_ts(bstat.entered_at) if bstat.entered_at else None,
                "elapsedSeconds": bstat.elapsed_s,
                "remainingSeconds": None
                if bstat.remaining_s is None
                else max(0.0, bstat.remaining_s),
                "done": bstat.done,
                "text": bstat.describe(),
            },
            "nextPhase": nxt,
            "nextDecider": phases.decider_for(current) if nxt is not None else None,
            "onFailure": phases.phase(current).on_failure.value,
            "paused": paused,
            "pending": self._pending(current, bstat, paused),
            "judgement": self._live_judgement(controller_url, current)
            or _judgement_view(last_judged),
            "gate": _gate_view(last_gated),
            "audit": entries[-5:],
            "inSync": deployed is None or deployed == cfg.phase,
        }

    def _live_judgement(self, url: str | None, phase: int) -> dict[str, Any] | None:
        live = controller_judgement(url, self.runner.stack_name) if url else None
        if live is None or live["phase"] != phase:
            return None  # no controller, or its judgement is of another phase
        return {
            **live,
            "ts": bake.format_ts(self.clock()),
            "decision": "controller judging",
            "summary": None,
        }

    def _pending(
        self, phase: int, bstat: bake.BakeStatus, paused: str | None
    ) -> dict[str, Any] | None:
        """The approval the rollout waits for, and who may give it (None: none yet)."""
        role = phases.approver_for(phase)
        since = None if paused is None else bake.parse_ts(paused).replace(microsecond=0)
        try:
            decided = self.decisions(phase)
        except ApprovalError as exc:  # the rest of the status is still worth showing
            return {"role": role, "waiting": False, "what": f"approvals unreadable: {_short(exc)}"}
        given = [e for e in decided if since is None or bake.parse_ts(str(e["ts"])) >= since]
        if given:
            return {"role": role, "waiting": False, "what": f"{given[-1]['actor']} decided "
                    f"{given[-1].get('decision')} at {given[-1]['ts']}"}  # fmt: skip
        if paused is not None:
            what = f"paused since {paused}: continue or rollback"
        elif phase == 0:
            what = "GO/NO-GO to start the rollout"
        elif not bstat.done:
            return None
        elif phase == phases.MAX_PHASE:
            what = "baked: promote the canary to stable"
        else:
            what = f"baked: approve phase {phase + 1}"
        return {
            "role": role,
            "waiting": True,
            "what": what,
            "command": f"./ce rollout approve (as the {role})",
        }

    # ------------------------------------------------------------------ approve
    def approve(self, decision: str = "continue", reason: str = "") -> int:
        """Create a RolloutApproval for the current phase with the store's own credentials: the
        API server decides whether this person may approve it (RBAC verb ``approve`` on the
        gate, four eyes) and records them as the approver."""
        current = self.current_phase()
        if decision not in ("continue", "rollback"):
            self.out(f"REFUSED: decision must be continue or rollback, got {decision!r}")
            return REFUSED
        if self.approvals is None:
            self.out("ERROR: no approval store (a kubeconfig for the rollout's namespace)")
            return ERROR
        stack = self.runner.stack_name
        # a GO starts a new rollout; every later gate belongs to the latest GO's rollout
        rollout = (
            f"{stack}-{uuid.uuid4().hex[:10]}"
            if current == 0
            else approval_model.current_rollout(self.approvals.snapshot(), stack)
        )
        base: dict[str, Any] = {"action": "approve", "phase": current, "decision": decision}
        try:
            a = self.approvals.create(
                stack=stack, rollout=rollout, phase=current, decision=decision, reason=reason
            )
        except ApprovalRefused as exc:
            self.record(**base, actor=exc.user, result="refused", reason=_short(exc))
            self.out(f"REFUSED by the API server: {exc}")
            return REFUSED
        except ApprovalError as exc:
            self.out(f"ERROR: {exc}")
            return ERROR
        what = f"{a.approver} decided {decision} at phase {current}"
        self.record(
            **base, actor=a.approver, approval=a.name, rollout=a.rollout, result="recorded",
            reason=what,
        )  # fmt: skip
        self.out(f"recorded: {what} ({approval_model.KIND} {a.name})")
        return OK

    # ------------------------------------------------------------------ advance
    def advance(self, prometheus_url: str) -> AdvanceReport:
        """One gated step up on the phase's approval (manual use; the controller calls
        :meth:`step`)."""
        cfg = self.config()
        deployed = self.deployed_phase()
        current = deployed if deployed is not None else cfg.phase
        base: dict[str, Any] = {"action": "advance", "from_phase": current}

        def refuse(reason: str, to_phase: int | None = None, **extra: Any) -> AdvanceReport:
            e = self.record(**base, to_phase=to_phase, result="refused", reason=reason, **extra)
            self.out(f"REFUSED: {reason}")
            return AdvanceReport(REFUSED, current, to_phase, reason, entries=[e])

        if deployed is not None and deployed != cfg.phase:
            return refuse(
                f"config phase {cfg.phase} differs from deployed phase {deployed}; "
                "finish that update (`pulumi up`) or run `rollback` first"
            )
        if current >= phases.MAX_PHASE:
            return refuse(f"phase {current} is final (100% canary); `promote` after the bake")
        target = phases.next_phase(current)
        phases.check_transition(current, target, cfg.allow_skip)

        bstat = self.bake_status(current, cfg)
        if not bstat.done:
            return refuse(f"bake time not over: {bstat.describe()}", target)
        approver = self.approved_by(current)
        if approver is None:
            return refuse(
                f"no approval of phase-{current} by a {phases.decider_for(current)} "
                "(`./ce rollout approve` with their own kubeconfig)",
                target,
            )
        base["actor"] = approver

        self.out(f"gate: querying {prometheus_url} (window {cfg.gate.window})")
        # As `rollout run` decides: past phase 0, the judge's absolute layer replaces the
        # gate's point estimates of the SLOs, and its relative layer compares canary with
        # stable (phase 0 has no canary traffic to compare).
        skip = SLO_CHECKS if current > 0 else ()
        result, gate_audit = self.judge(current, prometheus_url, skip=skip)
        for c in result.checks:
            self.out(f"  [{'PASS' if c.passed else 'FAIL'}] {c.reason}")
        if not result.passed:
            return self.on_gate_failure(current, result, gate_audit, actor=approver)
        judgement = self.judge_canary(current, prometheus_url) if current > 0 else None
        if judgement is not None:
            for jc in judgement.checks:
                self.out(f"  [{jc.outcome.value.upper()}] {jc.text}")
            if judgement.outcome is Outcome.FAIL:
                return self.on_gate_failure(
                    current, result, gate_audit, actor=approver, judgement=judgement
                )
            if judgement.outcome is Outcome.INCONCLUSIVE:
                # What a decider's "continue" does to a paused controller: the person who
                # approves this step has seen the numbers; they are in the audit entry.
                self.out(f"note: {judgement.summary()}; advancing on {approver}'s approval")
        code, e = self.step(
            current,
            target,
            actor=approver,
            reason=f"approved by {approver}",
            gate=gate_audit,
            judge=judgement.to_dict() if judgement is not None else None,
        )
        return AdvanceReport(code, current, target, f"approved by {approver}", result, entries=[e])

    def on_gate_failure(
        self,
        current: int,
        result: GateResult,
        gate_audit: dict[str, Any],
        actor: str,
        judgement: Judgement | None = None,
    ) -> AdvanceReport:
        """Apply the phase's failure action (hard SLO breaches always roll back).

        With a failed ``judgement`` (the gate passed), the judge's verdict is the reason;
        its absolute layer is the SLO guard, so a failure there is hard.
        """
        row = phases.phase(current)
        failing: GateResult | Judgement = result if judgement is None else judgement
        reason = failing.summary()
        action = row.on_failure
        if current > 0 and failing.hard_failure:
            action = phases.FailureAction.ROLLBACK
        explained: dict[str, Any] = {"gate": gate_audit}
        if judgement is not None:
            explained["judge"] = judgement.to_dict()
        if action is phases.FailureAction.ROLLBACK:
            failed = "gate_failed" if judgement is None else "judge_failed"
            e1 = self.record(
                action="gate",
                actor=actor,
                from_phase=current,
                result=failed,
                reason=reason,
                **explained,
            )
            self.out(f"{reason}\nautomatic rollback to phase 0 (all traffic on stable)")
            code, e2 = self.do_rollback(
                actor=f"auto:{actor}", trigger=failed, reason=reason, from_phase=current
            )
            return AdvanceReport(
                ROLLED_BACK if code == OK else ERROR, current, 0, reason, result, entries=[e1, e2]
            )
        result_name = {
            phases.FailureAction.REFUSE: "refused",
            phases.FailureAction.PAUSE: "paused",
            phases.FailureAction.HOLD: "held",
        }[action]
        e = self.record(
            action="gate",
            actor=actor,
            from_phase=current,
            to_phase=None,
            result=result_name,
            reason=reason,
            **explained,
        )
        self.out(f"{result_name.upper()}: {reason}")
        if action is phases.FailureAction.PAUSE and self.metrics is not None:
            self.metrics.paused.labels(self.metrics.stack).set(1)
        code = REFUSED if action is not phases.FailureAction.PAUSE else PAUSED
        return AdvanceReport(code, current, None, reason, result, entries=[e])

    def step(
        self,
        current: int,
        target: int,
        *,
        actor: str,
        reason: str,
        gate: dict[str, Any] | None = None,
        action: str = "advance",
        judge: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Config phase = ``target`` and one ``up``; audit entries bracket the step."""
        cfg = self.config()
        op = uuid.uuid4().hex[:12]
        base: dict[str, Any] = {
            "action": action,
            "actor": actor,
            "from_phase": current,
            "to_phase": target,
            "op": op,
        }
        tracks = None
        if current == 0 and action == "advance":  # the report charts the tracks as they began
            try:
                found = targets_from_outputs(self.runner.outputs())
                tracks = {t: dict(g.labels) for t, g in found.items()}
            except GateConfigError:
                pass  # the report falls back to the outputs it finds then
        extra: dict[str, Any] = {"targets": tracks} if tracks else {}
        self.record(**base, result="started", reason=reason, notify=False, **extra)
        t0 = self.monotonic()
        targets = self.runner.step_targets()
        try:
            self.runner.set_phase(target)
            outcome = self.up(targets)
        except Exception as exc:
            wall = self.monotonic() - t0
            why = f"pulumi up failed: {_short(exc)}"
            e = self.record(**base, result="error", reason=why, gate=gate, wall_s=round(wall, 3))
            self.out(f"ERROR: {why}\nconfig is at phase {target}; re-run `up` or `rollback`")
            return ERROR, e
        wall = self.monotonic() - t0
        got = outcome.outputs.get("rolloutPhase")
        if got is None or _as_int(got, "output rolloutPhase") != target:
            why = f"up finished but output rolloutPhase={got!r}, expected {target}"
            e = self.record(**base, result="error", reason=why, gate=gate, wall_s=round(wall, 3))
            self.out(f"ERROR: {why}")
            return ERROR, e
        e = self.record(
            **base,
            result=bake.APPLIED,
            reason=reason,
            gate=gate,
            judge=judge,
            mode=_mode(targets),
            wall_s=round(wall, 3),
            changes=outcome.summary,
        )
        self._publish(target, cfg)
        if action == "advance" and self.metrics is not None:
            self.metrics.completed.labels(self.metrics.stack, str(current)).inc()
        self.out(
            f"phase {current} -> {target} applied in {wall:.1f} s; "
            f"canaryWeight={outcome.outputs.get('canaryWeight')}"
        )
        return OK, e

    def up(self, targets: list[str] | None = None) -> Any:
        """``up`` (targeted when given URNs); a lock left by a killed ``up`` is removed once
        and the update retried."""
        try:
            return self.runner.up(self._stream, targets=targets)
        except Exception as exc:
            if "locked" in str(exc).lower() and self.runner.cancel_stale_lock():
                self.out("removed a stale update lock left by a killed `up`; retrying")
                return self.runner.up(self._stream, targets=targets)
            raise

    # ------------------------------------------------------------------ rollback
    def rollback(self, actor: str, reason: str = "manual rollback", targeted: bool = False) -> int:
        current = self.current_phase()
        code, _ = self.do_rollback(
            actor=actor, trigger="manual", reason=reason, from_phase=current, targeted=targeted
        )
        return code

    def switch_traffic_to_stable(self) -> float | None:
        """Apply phase 0's VirtualService now; seconds taken, or None when not possible."""
        manifest = self.runner.outputs().get("trafficRollback")
        if self.traffic is None or not isinstance(manifest, Mapping):
            return None
        try:
            return self.traffic.apply(manifest)
        except TrafficError as exc:
            self.out(f"warning: immediate traffic switch failed ({exc}); `up` will switch it")
            return None

    def do_rollback(
        self, *, actor: str, trigger: str, reason: str, from_phase: int, targeted: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Weights to stable first (server-side apply), then ``up`` at phase 0 scales green down."""
        op = uuid.uuid4().hex[:12]
        base: dict[str, Any] = {
            "action": "rollback",
            "actor": actor,
            "from_phase": from_phase,
            "to_phase": 0,
            "trigger": trigger,
            "op": op,
        }
        self.record(**base, result="started", reason=reason, notify=False)
        t0 = self.monotonic()
        switched = self.switch_traffic_to_stable() if from_phase > 0 else None
        if switched is not None:
            self.out(f"traffic on stable after {self.monotonic() - t0:.2f} s (server-side apply)")
            self.record(
                **base,
                result="traffic_switched",
                reason=reason,
                wall_s=round(self.monotonic() - t0, 3),
            )
        # nothing but the phase changed since the last `up`: only the phase's resources;
        # --targeted forces it from the deployed resources
        targets = self.runner.step_targets()
        mode = _mode(targets)
        if targeted and targets is None:
            targets = rollback_targets(self.runner.resources()) or None
            mode = "targeted" if targets else "full (no VirtualService found to target)"
        try:
            self.runner.set_phase(0)
            outcome = self.up(targets)
        except Exception as exc:
            wall = self.monotonic() - t0
            why = f"rollback up failed after {wall:.1f} s: {_short(exc)}"
            e = self.record(
                **base, result="error", reason=f"{reason}; {why}", mode=mode, wall_s=round(wall, 3)
            )
            self.out(f"ERROR: {why}")
            return ERROR, e
        wall = self.monotonic() - t0
        got = outcome.outputs.get("rolloutPhase")
        ok = got is not None and _as_int(got, "output rolloutPhase") == 0
        e = self.record(
            **base,
            result=bake.APPLIED if ok else "error",
            reason=reason if ok else f"{reason}; output rolloutPhase={got!r} after rollback",
            mode=mode,
            wall_s=round(wall, 3),
            traffic_switch_s=None if switched is None else round(switched, 3),
            changes=outcome.summary,
        )
        if ok and self.metrics is not None:
            if trigger == "promote":
                self.metrics.completed.labels(self.metrics.stack, str(from_phase)).inc()
            else:
                self.metrics.rollbacks.labels(self.metrics.stack, trigger).inc()
            self.metrics.paused.labels(self.metrics.stack).set(0)
            self._publish(0, self.config())
        self.out(
            f"rollback to phase 0 ({mode}) took {wall:.2f} s wall time; "
            f"canaryWeight={outcome.outputs.get('canaryWeight')}"
        )
        return (OK if ok else ERROR), e

    # ------------------------------------------------------------------ promote
    def promote(self) -> int:
        """After phase 4's bake: the new version becomes the stable track, green scales down.

        Two steps so no request meets a pod that is not Ready: (1) blue rolls to the new
        version while green still carries 100 %; (2) weights move to blue (server-side
        apply), then ``up`` at phase 0 scales green down.
        """
        cfg = self.config()
        current = self.current_phase(cfg)
        given = self.approved_by(current) if current == phases.MAX_PHASE else None
        base: dict[str, Any] = {"action": "promote", "actor": given, "from_phase": current}
        if current != phases.MAX_PHASE:
            reason = f"promote needs phase {phases.MAX_PHASE} (100% canary), stack is at {current}"
            self.record(**base, result="refused", reason=reason)
            self.out(f"REFUSED: {reason}")
            return REFUSED
        bstat = self.bake_status(current, cfg)
        if not bstat.done:
            reason = f"bake time not over: {bstat.describe()}"
            self.record(**base, result="refused", reason=reason)
            self.out(f"REFUSED: {reason}")
            return REFUSED
        if given is None:
            reason = f"no approval of phase-{current} (the promotion) by a {phases.PROMOTE_DECIDER}"
            self.record(**base, result="refused", reason=reason)
            self.out(f"REFUSED: {reason}")
            return REFUSED
        app = self.runner.config_value(APP_KEY) or {}
        canary = app.get("canaryVersion") if isinstance(app, Mapping) else None
        if not canary:
            self.out(f"ERROR: {APP_KEY}.canaryVersion is not set")
            return ERROR
        t0 = self.monotonic()
        base["op"] = uuid.uuid4().hex[:12]  # a controller restarted mid-promotion finishes it
        self.record(
            **base, to_phase=current, result="started", reason=f"stable := {canary}", notify=False
        )
        try:
            self.runner.set_config_value(f"{APP_KEY}.stableVersion", str(canary))
            self.up()
        except Exception as exc:
            self.record(**base, result="error", reason=f"promote up failed: {_short(exc)}")
            self.out(f"ERROR: promote up failed: {_short(exc)}")
            return ERROR
        code, _ = self.do_rollback(
            actor=given,
            trigger="promote",
            reason=f"promoted {canary} to stable",
            from_phase=current,
        )
        wall = self.monotonic() - t0
        self.record(
            **base,
            to_phase=0,
            result="promoted" if code == OK else "error",
            reason=f"{canary} is the stable track",
            wall_s=round(wall, 3),
        )
        self.out(f"promoted {canary} to stable in {wall:.1f} s" if code == OK else "promote failed")
        return code


def _mode(targets: list[str] | None) -> str:
    """Audit wording: a phase step over its own resources, or the whole program."""
    return f"targeted ({len(targets)} resources)" if targets else "full"


def _short(exc: BaseException, limit: int = 600) -> str:
    text = str(exc).strip().replace("\n", " | ")
    return text if len(text) <= limit else text[:limit] + "..."


def _judgement_view(e: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last judgement in the audit log, as the status shows it."""
    if e is None:
        return None
    j = e["judge"]
    keep = ("name", "layer", "outcome", "value", "threshold", "unit", "window", "p_value")
    return {
        "ts": e.get("ts"),
        "decision": e.get("result"),
        "phase": e.get("from_phase", e.get("phase")),
        "outcome": j.get("outcome"),
        "summary": j.get("summary"),
        "checks": [{k: c.get(k) for k in keep} for c in j.get("checks", [])],
    }


def _gate_view(e: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last gate evaluation in the audit log (its checks the judge does not cover)."""
    if e is None:
        return None
    g = e["gate"]
    keep = ("name", "passed", "value", "threshold", "hard")
    return {
        "ts": e.get("ts"),
        "passed": g.get("passed"),
        "checks": [{k: c.get(k) for k in keep} for c in g.get("checks", [])],
    }
