"""Command line: ``./ce rollout {status,run,approve,advance,rollback,promote,report}``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from driver import core, identities, status_view
from driver.approval_store import ApprovalError, ApprovalStore, KubectlApprovals
from driver.audit import AuditLog, ce_home, default_audit_path
from driver.controller import Controller
from driver.identities import ensure_role_identities
from driver.lock import LockHeld, StackLock, default_lock_path
from driver.metrics import RolloutMetrics
from driver.notify import Notifier, WebhookNotifier
from driver.report import rollouts
from driver.stack import (
    DEFAULT_WORK_DIR,
    AutomationStack,
    CliStack,
    StackRunner,
    ToolchainMissing,
)
from driver.traffic import KubectlTraffic, TrafficError, TrafficSwitch
from rollout import phases
from rollout.gate import GateConfigError

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
DEFAULT_METRICS_PORT = 9465

EPILOG = """\
phases: 0 stable only | 1 canary 5% | 2 canary 20% | 3 blue/green prep 50% | 4 full switch 100%
deciders: leaving 0 deployment-commander (GO/NO-GO), 1 tech-lead, 2 sre, 3 product-owner;
          promote after phase 4: deployment-commander
on a failing gate: phase 0 refuses (nothing changes), 1 rolls back, 2 pauses, 3 and 4 hold;
          hard SLO breaches (error ratio, P95, P99, no data) always roll back.

run      the unattended controller: judges the gate every rollout.intervalSeconds (default 15),
         rolls back at once on a breach, waits for `approve` after each bake, steps, promotes.
approve  create a RolloutApproval of the current phase with YOUR kubeconfig (--kubeconfig,
         --identity ROLE for the local platform's users): the API server checks the RBAC verb
         `approve` on phases/phase-N and four eyes, and records you as the approver.
advance  one gated step by hand (bake over + an approval + gate + the judge), then `pulumi up`.
identities  the local platform's users, one per role: $CE_HOME/identities/<role>.kubeconfig.
status   --watch: a live view redrawn in place (plain lines when stdout is not a terminal).
report   the latest rollout as one self-contained HTML page; also written at the end of every
         rollout (promoted, rolled back, paused) by run/advance/rollback/promote.
audit log: $CE_AUDIT_DIR or $CE_HOME/audit/<project>-<stack>.jsonl (JSON lines, UTC).
reports:   $CE_REPORT_DIR or $CE_HOME/reports/<project>-<stack>-<start>.html
exit codes: 0 ok, 1 error, 2 refused (nothing changed), 3 rolled back, 4 paused.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./ce rollout",
        description="Rollout controller for the claude-enhancer stack (5% -> 20% -> 50% -> 100%).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", default=os.environ.get("CE_STACK", "local"))
    p.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR))
    p.add_argument("--audit-log", default=None)
    p.add_argument(
        "--runner",
        choices=("cli", "automation"),
        default=os.environ.get("CE_ROLLOUT_RUNNER", "cli"),
        help="cli: one `up --json` per step (default); automation: the Pulumi Automation API "
        "(about 6 s more per step, see BENCHMARKS.md)",
    )
    p.add_argument(
        "--namespace",
        default=os.environ.get("CE_ROLLOUT_NAMESPACE"),
        help="the rollout's namespace, where approvals live ($CE_ROLLOUT_NAMESPACE; default: "
        "the stack output namespace)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("status", help="phase, weights, bake time remaining, last audit entries")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--watch",
        action="store_true",
        help="redraw in place every --interval s until Ctrl-C (plain lines into a pipe)",
    )
    metrics_port = int(os.environ.get("CE_ROLLOUT_METRICS_PORT", DEFAULT_METRICS_PORT))
    s.add_argument(
        "--controller",
        default=f"http://127.0.0.1:{metrics_port}",
        metavar="URL",
        help="a running `run`'s /metrics: the judge's live numbers (default %(default)s; "
        "else the last decision's from the audit log)",
    )
    s.add_argument("--interval", type=float, default=2.0, metavar="S", help="default %(default)s")
    s.add_argument("--frames", type=int, default=None, help=argparse.SUPPRESS)

    prom_help = "Prometheus base URL (default: $CE_PROMETHEUS_URL or %(default)s)"
    prom_default = os.environ.get("CE_PROMETHEUS_URL", DEFAULT_PROMETHEUS)
    webhook_default = os.environ.get("CE_ROLLOUT_WEBHOOK")
    report_default = os.environ.get("CE_REPORT_DIR") or str(ce_home() / "reports")

    def reports(sp: argparse.ArgumentParser, prometheus: bool = True) -> None:
        if prometheus:
            sp.add_argument("--prometheus", default=prom_default, metavar="URL", help=prom_help)
        sp.add_argument(
            "--report-dir",
            default=report_default,
            metavar="DIR",
            help="where the rollout report goes at the end of the rollout "
            "($CE_REPORT_DIR, default %(default)s)",
        )

    rep = sub.add_parser("report", help="the latest rollout as one HTML page (charts, decisions)")
    rep.add_argument("--out", default=report_default, metavar="DIR", help="default %(default)s")
    rep.add_argument("--prometheus", default=prom_default, metavar="URL", help=prom_help)
    rep.add_argument("--all", action="store_true", help="every rollout in the audit log")

    r = sub.add_parser("run", help="the unattended controller (see below)")
    r.add_argument("--prometheus", default=prom_default, metavar="URL", help=prom_help)
    r.add_argument(
        "--webhook",
        default=webhook_default,
        metavar="URL",
        help="POST each decision as JSON (default: $CE_ROLLOUT_WEBHOOK)",
    )
    r.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("CE_ROLLOUT_METRICS_PORT", DEFAULT_METRICS_PORT)),
        help="serve /metrics on 127.0.0.1:PORT (0 = off; default %(default)s)",
    )
    r.add_argument(
        "--until-phase",
        type=int,
        default=None,
        help="stop once this phase is reached (demos, tests)",
    )
    r.add_argument("--max-turns", type=int, default=None, help=argparse.SUPPRESS)
    reports(r, prometheus=False)

    a = sub.add_parser("approve", help="approve (or roll back) the current phase, as yourself")
    a.add_argument("--decision", default="continue", choices=("continue", "rollback"))
    a.add_argument("--reason", default="")
    who = a.add_mutually_exclusive_group()
    who.add_argument("--kubeconfig", default=None, help="your credentials (default: $KUBECONFIG)")
    who.add_argument(
        "--identity",
        metavar="ROLE",
        default=None,
        help="the local platform's user for ROLE ($CE_HOME/identities/ROLE.kubeconfig)",
    )
    sub.add_parser("identities", help="make the local platform's per-role users (idempotent)")

    adv = sub.add_parser("advance", help="one gated step by hand, on the phase's approval")
    adv.add_argument("--webhook", default=webhook_default, metavar="URL")
    reports(adv)

    rb = sub.add_parser("rollback", help="phase 0 now: weights first, then `up` scales green down")
    rb.add_argument("--by", default=os.environ.get("USER") or "operator")
    rb.add_argument("--reason", default="manual rollback")
    rb.add_argument(
        "--targeted",
        action="store_true",
        help="`up --target` only the VirtualService, canary Deployments and outputs",
    )
    rb.add_argument("--webhook", default=webhook_default, metavar="URL")
    reports(rb)

    pr = sub.add_parser("promote", help="after phase 4's bake: new version becomes stable")
    pr.add_argument("--webhook", default=webhook_default, metavar="URL")
    reports(pr)
    return p


RunnerFactory = Callable[[str, str, str], StackRunner]
TrafficFactory = Callable[[], TrafficSwitch | None]
#: (namespace or a resolver of it, kubeconfig) -> the approvals' reader/writer
ApprovalsFactory = Callable[[str | Callable[[], str], str | None], ApprovalStore]


def _real_runner(stack: str, work_dir: str, kind: str) -> StackRunner:
    return AutomationStack(stack, work_dir) if kind == "automation" else CliStack(stack, work_dir)


def _real_traffic() -> TrafficSwitch | None:
    try:
        return KubectlTraffic()
    except TrafficError as exc:
        print(f"warning: {exc}; rollbacks switch traffic through `up` only", file=sys.stderr)
        return None


def rollout_namespace(runner: StackRunner) -> str:
    """The app's namespace (stack output ``namespace``): the rollout's, where approvals live."""
    ns = runner.outputs().get("namespace")
    if not ns:
        raise ApprovalError("stack output namespace is missing: pass --namespace")
    return str(ns)


def main(
    argv: Sequence[str] | None = None,
    runner_factory: RunnerFactory = _real_runner,
    traffic_factory: TrafficFactory = _real_traffic,
    approvals_factory: ApprovalsFactory = KubectlApprovals,
) -> int:
    args = build_parser().parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    if args.command == "identities":
        for role, kc in ensure_role_identities().items():
            out(f"{role:22} {identities.user_name(role):45} {kc}")
        return core.OK

    try:
        runner = runner_factory(args.stack, args.work_dir, args.runner)
    except ToolchainMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.ERROR
    audit_path = (
        Path(args.audit_log)
        if args.audit_log
        else default_audit_path(runner.project, runner.stack_name)
    )
    webhook = getattr(args, "webhook", None)
    notifier: Notifier | None = WebhookNotifier(webhook, warn=out) if webhook else None
    metrics = RolloutMetrics(runner.stack_name) if args.command == "run" else None
    changes = args.command in ("run", "advance", "rollback", "promote")
    report_to = (
        core.ReportTarget(Path(args.report_dir), args.prometheus)
        if changes and args.report_dir
        else None
    )
    kubeconfig = getattr(args, "kubeconfig", None)
    if getattr(args, "identity", None):
        own = identities.kubeconfig_for(args.identity)
        if not own.exists():
            print(f"error: {own} is missing: run `./ce rollout identities`", file=sys.stderr)
            return core.ERROR
        kubeconfig = str(own)
    driver = core.Driver(
        runner,
        AuditLog(audit_path),
        out=out,
        notifier=notifier,
        metrics=metrics,
        traffic=traffic_factory() if changes else None,
        report_to=report_to,
        approvals=approvals_factory(
            args.namespace or (lambda: rollout_namespace(runner)), kubeconfig
        ),
    )
    lock = StackLock(
        default_lock_path(runner.project, runner.stack_name), holder=f"./ce rollout {args.command}"
    )
    try:
        if args.command == "status":
            if args.watch:
                return status_view.watch(
                    lambda: driver.status(args.controller),
                    Console(),
                    args.interval,
                    max_frames=args.frames,
                    audit_log=str(audit_path),
                )
            info = driver.status(args.controller)
            if args.json:
                print(json.dumps({**info, "auditLog": str(audit_path)}, indent=2, default=str))
            else:
                for line in status_view.plain_lines(info, str(audit_path)):
                    out(line)
            return core.OK
        if args.command == "report":
            which = range(len(rollouts(AuditLog(audit_path).entries()))) if args.all else [-1]
            paths = [driver.write_report(args.prometheus, Path(args.out), i) for i in which]
            if not paths or None in paths:
                print(f"error: no rollout in {audit_path}", file=sys.stderr)
                return core.ERROR
            for path in paths:
                out(str(path))
            return core.OK
        if args.command == "approve":
            return driver.approve(args.decision, args.reason)
        with lock:
            if args.command == "run":
                assert metrics is not None
                if args.metrics_port:
                    port = metrics.serve(args.metrics_port)
                    out(f"controller metrics on http://127.0.0.1:{port}/metrics")
                try:
                    return Controller(
                        driver,
                        args.prometheus,
                        until_phase=args.until_phase,
                        max_turns=args.max_turns,
                    ).run()
                finally:
                    metrics.close()
            if args.command == "advance":
                return driver.advance(args.prometheus).code
            if args.command == "rollback":
                return driver.rollback(args.by, args.reason, targeted=args.targeted)
            if args.command == "promote":
                return driver.promote()
    except LockHeld as exc:
        print(f"REFUSED: {exc}", file=sys.stderr)
        return core.REFUSED
    except (phases.RolloutError, GateConfigError, ApprovalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.REFUSED
    except ToolchainMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.ERROR
    return core.ERROR  # pragma: no cover - argparse enforces the command
