"""Command line: ``python -m driver {status,advance,rollback}``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from components import rollout
from driver import core
from driver.audit import AuditLog, default_audit_path
from driver.gate import GateConfigError
from driver.stack import (
    DEFAULT_WORK_DIR,
    AutomationStack,
    StackRunner,
    ToolchainMissing,
)

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"

EPILOG = """\
phases: 0 stable only | 1 canary 5% | 2 canary 20% | 3 blue/green prep 50% | 4 full switch 100%
deciders (--approved-by): leaving 0 deployment-commander (GO/NO-GO), 1 tech-lead, 2 sre, 3 product-owner

advance = bake time of the current phase over (audit log + config rollout.bakeMinutes)
        + approval by the phase's decider
        + Prometheus gate (config rollout.gate: maxErrorRatio 0.001, maxP95Ms 500, minRequests,
          window, selector); a failing gate rolls back to phase 0 automatically
        + config rollout.phase = next and `pulumi up` (Automation API).
audit log: $CE_AUDIT_DIR or $CE_HOME/audit/<project>-<stack>.jsonl (JSON lines, UTC).
exit codes: 0 ok, 1 error, 2 refused (nothing changed), 3 gate failed and rolled back.
Needs the toolchain environment: `source toolchain/env.sh`.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m driver",
        description="Rollout driver for the claude-enhancer stack (canary 5% -> 20% -> 50% -> 100%).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--stack",
        default=os.environ.get("CE_STACK", "local"),
        help="stack name (default: $CE_STACK or 'local')",
    )
    p.add_argument(
        "--work-dir",
        default=str(DEFAULT_WORK_DIR),
        help="Pulumi project directory (default: %(default)s)",
    )
    p.add_argument(
        "--audit-log",
        default=None,
        help="audit log path (default: $CE_AUDIT_DIR or $CE_HOME/audit/<project>-<stack>.jsonl)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{status,advance,rollback}")

    s = sub.add_parser(
        "status", help="current phase, weights, bake time remaining, last audit entries"
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")

    a = sub.add_parser("advance", help="gate + approval + bake check, then move to the next phase")
    a.add_argument(
        "--approved-by",
        required=True,
        metavar="ROLE",
        help="role approving: " + ", ".join(rollout.DECIDERS[k] for k in sorted(rollout.DECIDERS)),
    )
    a.add_argument(
        "--prometheus",
        default=os.environ.get("CE_PROMETHEUS_URL", DEFAULT_PROMETHEUS),
        metavar="URL",
        help="Prometheus base URL (default: $CE_PROMETHEUS_URL or %(default)s)",
    )

    r = sub.add_parser(
        "rollback", help="phase 0 (all traffic on stable) in one update; prints wall time"
    )
    r.add_argument(
        "--by", default=os.environ.get("USER") or "operator", help="who rolls back (audit)"
    )
    r.add_argument("--reason", default="manual rollback", help="reason recorded in the audit log")
    r.add_argument(
        "--targeted",
        action="store_true",
        help="`up --target` only the VirtualService(s), canary resources and the stack "
        "outputs instead of a full update (falls back to full if none found)",
    )
    return p


RunnerFactory = Callable[[str, str], StackRunner]


def _real_runner(stack: str, work_dir: str) -> StackRunner:
    return AutomationStack(stack, work_dir)


def main(argv: Sequence[str] | None = None, runner_factory: RunnerFactory = _real_runner) -> int:
    args = build_parser().parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        runner = runner_factory(args.stack, args.work_dir)
    except ToolchainMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.ERROR
    audit_path = (
        Path(args.audit_log)
        if args.audit_log
        else default_audit_path(runner.project, runner.stack_name)
    )
    driver = core.Driver(runner, AuditLog(audit_path), out=out)
    try:
        if args.command == "status":
            info = driver.status()
            if args.json:
                print(json.dumps({**info, "auditLog": str(audit_path)}, indent=2, default=str))
            else:
                driver.print_status(info)
                out(f"audit log        {audit_path}")
            return core.OK
        if args.command == "advance":
            return driver.advance(args.approved_by, args.prometheus).code
        if args.command == "rollback":
            return driver.rollback(args.by, args.reason, targeted=args.targeted)
    except (rollout.RolloutError, GateConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.REFUSED
    except ToolchainMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return core.ERROR
    return core.ERROR  # pragma: no cover - argparse enforces the command
