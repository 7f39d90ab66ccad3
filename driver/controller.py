"""``./ce rollout run``: the unattended controller.

Every interval it judges the current phase's gate. A breach rolls back at once
(hard SLO breaches always; soft ones per the phase's failure action: phase 1 rolls
back, phase 2 pauses, phase 3 holds at 50 %). After the bake, with the gate green,
it waits for the phase's decider (a RolloutApproval, ``./ce rollout approve``) and steps.
It keeps no state of its own: everything is re-read from the stack outputs and the
audit log each turn, so a restart after ``kill -9`` resumes without double-stepping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from driver import bake, core
from driver.prom import PromError
from rollout import phases
from rollout.judge import SLO_CHECKS, Action, Judgement, Outcome, combine, decide
from rollout.signal import Signal, SignalDecision, no_data_only, with_signal

TERMINAL = frozenset({bake.APPLIED, "error", "promoted", "abandoned"})
#: audit ``action`` of the entries that open (``waiting``) and close (``waited``) a wait for
#: the canary's first data at a new weight
WAIT_ACTION = "await_data"
#: why a wait ended, by what the signal became (audit ``ended_by``)
ENDED_BY = {
    Signal.FLOWING: "data_arrived",
    Signal.ABSENT: "grace_over",
    Signal.LOST: "signal_lost",
    Signal.STUCK: "counter_stuck",
}


class Controller:
    def __init__(
        self,
        driver: core.Driver,
        prometheus_url: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_turns: int | None = None,
        until_phase: int | None = None,
    ) -> None:
        self.d = driver
        self.prom = prometheus_url
        self.sleep = sleep
        self.max_turns = max_turns
        self.until_phase = until_phase
        self._said: set[str] = set()
        self._holding: int | None = None
        #: the last full judgement (with the comparison against stable): phase, time, judgement
        self._compared: tuple[int, float, Judgement] | None = None

    def say_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.d.out(text)

    # ------------------------------------------------------------------ resume
    def open_ops(self) -> list[dict[str, Any]]:
        """``started`` entries whose op never ended (the controller died inside them)."""
        open_: dict[str, dict[str, Any]] = {}
        for e in self.d.audit.entries():
            op = e.get("op")
            if not op:
                continue
            if e.get("result") == "started":
                open_[str(op)] = e
            elif e.get("result") in TERMINAL:
                open_.pop(str(op), None)
        return list(open_.values())

    def pending_op(self) -> dict[str, Any] | None:
        """The last step started but never finished (the controller died inside it)."""
        ops = [e for e in self.open_ops() if e.get("action") != "promote"]
        return ops[-1] if ops else None

    def resume(self) -> int | None:
        """Finish what a killed controller left half done; an exit code if it ended the run."""
        cfg = self.d.config()
        deployed = self.d.deployed_phase()
        promo = next((e for e in reversed(self.open_ops()) if e.get("action") == "promote"), None)
        if promo is not None:
            return self._resume_promote(promo, deployed)
        pending = self.pending_op()
        if pending is None and (deployed is None or deployed == cfg.phase):
            return None
        self.d.out(
            f"resuming: config phase {cfg.phase}, deployed {deployed}, "
            f"unfinished step {pending and (pending.get('action'), pending.get('to_phase'))}"
        )
        if pending is not None and pending.get("action") == "rollback":
            code, _ = self.d.do_rollback(
                actor=str(pending.get("actor")),
                trigger=str(pending.get("trigger", "resume")),
                reason=f"resumed after restart: {pending.get('reason', '')}",
                from_phase=int(pending.get("from_phase") or 0),
            )
            self._close(pending, "resumed as a new rollback")
            return core.ROLLED_BACK if code == core.OK else core.ERROR
        if deployed != cfg.phase:
            # the config names the step's target: run its `up` again, never a further step
            frm = deployed if deployed is not None else cfg.phase
            code, _ = self.d.step(
                frm,
                cfg.phase,
                actor=str((pending or {}).get("actor", "controller")),
                reason="resumed after restart",
                action=str((pending or {}).get("action", "advance")),
            )
            if pending is not None:
                self._close(pending, "finished by the resumed step")
            return None if code == core.OK else core.ERROR
        assert pending is not None
        if pending.get("to_phase") == deployed:
            # the up finished but its audit entry was never written
            self.d.record(
                **{k: pending[k] for k in ("action", "actor", "from_phase", "to_phase", "op")},
                result=bake.APPLIED,
                reason="recovered after restart (up had finished)",
            )
        else:
            self._close(pending, "config never changed; nothing was applied")
        return None

    def _resume_promote(self, promo: dict[str, Any], deployed: int | None) -> int:
        """A promotion the controller died inside: finish it, never promote twice."""
        d, actor = self.d, str(promo.get("actor"))
        d.out(f"resuming an unfinished promotion (deployed phase {deployed})")
        switch = self.pending_op()
        if switch is not None and switch.get("trigger") == "promote":
            # died while moving traffic to the new stable: move it again (idempotent)
            code, _ = d.do_rollback(
                actor=actor,
                trigger="promote",
                reason=f"resumed after restart: {switch.get('reason', '')}",
                from_phase=int(switch.get("from_phase") or phases.MAX_PHASE),
            )
            self._close(switch, "resumed as a new traffic switch")
        elif deployed == phases.MAX_PHASE:
            # died before or inside the first `up` (blue to the new version): run it again
            self._close(promo, "resumed as a new promotion")
            return d.promote()
        else:
            code = core.OK  # the switch had finished; only its record was missing
        d.record(
            op=promo["op"],
            action="promote",
            actor=actor,
            from_phase=promo.get("from_phase"),
            to_phase=0,
            result="promoted" if code == core.OK else "error",
            reason="promotion finished after restart",
        )
        return core.OK if code == core.OK else core.ERROR

    def _close(self, pending: dict[str, Any], why: str) -> None:
        self.d.record(
            op=pending["op"],
            action=pending.get("action"),
            result="abandoned",
            reason=why,
            notify=False,
        )

    def paused_since(self, phase: int) -> str | None:
        """Timestamp of the pause in force at ``phase`` (from the audit log), else None."""
        return bake.paused_since(self.d.audit.entries(), phase, self.d.entered_at(phase))

    # ------------------------------------------------------------------ loop
    def run(self) -> int:
        code = self.resume()
        if code is not None:
            return code
        turns = 0
        while True:
            code = self.turn()
            if code is not None:
                return code
            turns += 1
            if self.max_turns is not None and turns >= self.max_turns:
                return core.OK
            self.sleep(self.d.config().interval_s)

    def turn(self) -> int | None:
        """One evaluation; an exit code when the run is over."""
        d = self.d
        cfg = d.config()
        phase = d.current_phase(cfg)
        d._publish(phase, cfg)
        if self.until_phase is not None and phase >= self.until_phase and phase > 0:
            d.out(f"reached phase {phase} (--until-phase); stopping")
            return core.OK
        decisions = d.decisions(phase)
        rollback_decided = phase > 0 and any(
            e.get("decision") == "rollback" and e.get("result") == "recorded" for e in decisions
        )
        if phase == 0 or rollback_decided:
            self._end_wait(
                "phase_left", f"the rollout is {'at' if phase == 0 else 'leaving'} phase {phase}"
            )
        if rollback_decided:
            code, _ = d.do_rollback(
                actor=str(decisions[-1]["actor"]),
                trigger="decision",
                reason=f"rolled back by decision of {decisions[-1]['actor']}",
                from_phase=phase,
            )
            return core.ROLLED_BACK if code == core.OK else core.ERROR
        approved = [
            e
            for e in decisions
            if e.get("decision") == "continue" and e.get("result") == "recorded"
        ]

        if phase == 0:
            return self._go_no_go(approved)

        # the judge's absolute layer replaces the gate's point estimates of the SLOs
        result, gate_audit = d.judge(phase, self.prom, skip=SLO_CHECKS)
        try:
            sig: SignalDecision | None = d.signal(phase, self.prom, result)
        except PromError as exc:
            # Prometheus gone: its own gate failure (prometheus_api, hard) acts below. Only
            # a gate short of data is held, as the judge's turn is: if Prometheus stays
            # silent, the next turn's gate fails hard.
            d.out(f"warning: canary signal unknown this turn: {exc}")
            if no_data_only(result):
                return None
            sig = None
        if sig is not None and sig.signal is Signal.AWAITING:
            self._wait(phase, sig, cfg.data_grace_s)
            return None
        if sig is not None:
            self._end_wait(ENDED_BY[sig.signal], sig.reason)
        if sig is not None and sig.acts:  # lost or stuck: the phase's failure action, now
            result = with_signal(result, sig)
            gate_audit = {**gate_audit, **result.as_audit()}
        j: Judgement | None = None
        if result.passed:
            try:
                j = self._judgement(phase, cfg.analysis.for_phase(phase).interval_s)
            except PromError as exc:  # the next turn's gate fails hard if it persists
                d.out(f"warning: no judgement this turn: {exc}")
                return None
            self.say_once(f"judge-{phase}-{j.outcome.value}", f"phase {phase}: {j.summary()}")
        failed = j if j is not None and j.outcome is Outcome.FAIL else None
        if not result.passed or failed is not None:
            row = phases.phase(phase)
            hard = (failed or result).hard_failure
            if hard or row.on_failure is phases.FailureAction.ROLLBACK:
                rep = d.on_gate_failure(
                    phase, result, gate_audit, actor="controller", judgement=failed
                )
                return rep.code
            if row.on_failure is phases.FailureAction.PAUSE:
                if self.paused_since(phase) is None:
                    d.on_gate_failure(
                        phase, result, gate_audit, actor="controller", judgement=failed
                    )
                    d.out(
                        f"PAUSED at phase {phase}: traffic held. Decide with "
                        f"`./ce rollout approve [--decision rollback]` (a {row.decider})"
                    )
                return None
            if self._holding != phase:  # HOLD: stay at this weight, keep judging
                d.on_gate_failure(phase, result, gate_audit, actor="controller", judgement=failed)
                self._holding = phase
            return None
        assert j is not None
        self._holding = None
        paused = self.paused_since(phase)
        if paused is not None:
            # approvals carry the API server's whole-second creationTimestamp
            lifted = bake.parse_ts(paused).replace(microsecond=0)
            after = [e for e in approved if bake.parse_ts(str(e["ts"])) >= lifted]
            if not after:
                self.say_once(
                    f"paused-wait-{phase}",
                    "paused: traffic held until a decision is recorded (continue or rollback)",
                )
                return None
            if d.metrics is not None:
                d.metrics.paused.labels(d.metrics.stack).set(0)
            d.record(
                action="resume",
                actor=str(after[-1]["actor"]),
                phase=phase,
                result="continued",
                reason="pause lifted by decision",
            )

        bstat = d.bake_status(phase, cfg)
        if not bstat.done:
            self.say_once(f"bake-{phase}", f"phase {phase}: gate green; {bstat.describe()}")
            return None
        cap_s = cfg.analysis.for_phase(phase).max_extension_s
        if (
            j.outcome is Outcome.INCONCLUSIVE
            and not self.continued(phase)
            and self._inconclusive(phase, j, bstat, cap_s)
        ):
            return None
        if phase == phases.MAX_PHASE:
            if not approved:
                self.say_once(
                    f"approve-{phase}",
                    f"phase {phase} baked; waiting for "
                    f"`./ce rollout approve` by a {phases.PROMOTE_DECIDER} to promote",
                )
                return None
            return d.promote()
        decider = phases.decider_for(phase)
        if not approved:
            self.say_once(
                f"approve-{phase}",
                f"phase {phase} baked, gate green; waiting for "
                f"`./ce rollout approve` by a {decider}",
            )
            return None
        code, _ = d.step(
            phase,
            phase + 1,
            actor=str(approved[-1]["actor"]),
            reason=f"approved by {approved[-1]['actor']}",
            gate=gate_audit,
            judge=j.to_dict(),
        )
        return None if code == core.OK else code

    def _judgement(self, phase: int, interval_s: float) -> Judgement:
        """The SLO layer every turn; the comparison with stable every analysis interval
        (the last comparison is reused in between, its numbers and window unchanged)."""
        now = self.d.clock().timestamp()  # the injected clock: bakes use it too
        last = self._compared
        if last is None or last[0] != phase or now - last[1] >= interval_s:
            j = self.d.judge_canary(phase, self.prom)
            self._compared = (phase, now, j)
        else:
            j = combine(self.d.judge_canary(phase, self.prom, relative=False), last[2])
        if self.d.metrics is not None:
            self.d.metrics.judge(phase, j)
        return j

    # ------------------------------------------------------------------ waiting for data
    def open_wait(self) -> dict[str, Any] | None:
        """The wait for data in progress (its ``waiting`` entry), from the audit log: a
        restarted controller continues it instead of starting another."""
        last: dict[str, Any] | None = None
        for e in self.d.audit.entries():
            if e.get("action") == WAIT_ACTION:
                last = e
        return last if last is not None and last.get("result") == "waiting" else None

    def _wait(self, phase: int, sig: SignalDecision, grace_s: float) -> None:
        """Hold the phase for its first data; a wait starts with one line and one entry."""
        d = self.d
        w = self.open_wait()
        entered = d.entered_at(phase)
        if w is not None and (
            w.get("phase") != phase
            or (entered is not None and bake.parse_ts(str(w["ts"])) < entered)
        ):
            self._end_wait("phase_left", f"phase {w.get('phase')} was left while waiting")
            w = None
        if w is None:
            age = None if entered is None else (d.clock() - entered).total_seconds()
            d.record(
                action=WAIT_ACTION,
                actor="controller",
                phase=phase,
                result="waiting",
                reason=sig.reason,
                grace_s=grace_s,
                phase_age_s=None if age is None else round(age, 3),
            )
            d.out(f"phase {phase}: waiting for data (up to {grace_s:.0f} s): {sig.reason}")
        if d.metrics is not None:
            d.metrics.awaiting_data.labels(d.metrics.stack).set(1)

    def _end_wait(self, ended_by: str, why: str) -> None:
        """Close the wait in progress, if any, with how long it took and why it ended."""
        d = self.d
        w = self.open_wait()
        if w is None:
            return
        waited = (d.clock() - bake.parse_ts(str(w["ts"]))).total_seconds()
        d.record(
            action=WAIT_ACTION,
            actor="controller",
            phase=w.get("phase"),
            result="waited",
            ended_by=ended_by,
            waited_s=round(waited, 3),
            reason=why,
        )
        d.out(
            f"phase {w.get('phase')}: wait for data ended after {waited:.1f} s ({ended_by}): {why}"
        )
        if d.metrics is not None:
            d.metrics.awaiting_data.labels(d.metrics.stack).set(0)

    def continued(self, phase: int) -> bool:
        """A decider lifted a pause at ``phase`` since it began: an inconclusive judgement
        no longer holds the phase (a human looked and said continue); a fail still acts."""
        since = self.d.entered_at(phase)
        return any(
            e.get("result") == "continued"
            and e.get("phase") == phase
            and (since is None or bake.parse_ts(str(e["ts"])) >= since)
            for e in self.d.audit.entries()
        )

    def _inconclusive(
        self, phase: int, j: Judgement, bstat: bake.BakeStatus, max_extension_s: float
    ) -> bool:
        """Bake over, judgement inconclusive: extend up to the cap, then pause for a human.
        True while the phase is held."""
        d = self.d
        elapsed = bstat.elapsed_s if bstat.elapsed_s is not None else bstat.required_s
        dec = decide([j], elapsed, bstat.required_s, max_extension_s)
        if dec.action is Action.EXTEND:
            if f"extend-{phase}" not in self._said:
                d.record(
                    action="judge",
                    actor="controller",
                    phase=phase,
                    result="extended",
                    reason=dec.reason,
                    judge=j.to_dict(),
                )
            self.say_once(f"extend-{phase}", f"phase {phase}: {dec.reason}")
            return True
        if dec.action is Action.PAUSE:
            if self.paused_since(phase) is None:
                d.record(
                    action="judge",
                    actor="controller",
                    from_phase=phase,
                    to_phase=None,
                    result="paused",
                    reason=dec.reason,
                    judge=j.to_dict(),
                )
                if d.metrics is not None:
                    d.metrics.paused.labels(d.metrics.stack).set(1)
                d.out(
                    f"PAUSED at phase {phase}: {dec.reason}. Decide with `./ce rollout approve "
                    f"[--decision rollback]` (a {phases.approver_for(phase)})"
                )
            return True
        return False

    def _go_no_go(self, approved: list[dict[str, Any]]) -> int | None:
        d = self.d
        if not approved:
            self.say_once(
                "approve-0",
                "phase 0: waiting for the GO/NO-GO "
                "(`./ce rollout approve` by a deployment-commander)",
            )
            return None
        result, gate_audit = d.judge(0, self.prom)
        for c in result.checks:
            d.out(f"  [{'PASS' if c.passed else 'FAIL'}] {c.reason}")
        if not result.passed:
            # NO-GO: nothing changes, no `up`
            return d.on_gate_failure(0, result, gate_audit, actor=str(approved[-1]["actor"])).code
        code, _ = d.step(0, 1, actor=str(approved[-1]["actor"]), reason="GO", gate=gate_audit)
        return None if code == core.OK else code
