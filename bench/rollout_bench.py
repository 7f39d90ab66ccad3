"""Rollout benchmark: step vs full deploy, rollback (full vs targeted), preview
with and without the policy pack. Medians of N repeated runs in one invocation.

Runs against the REAL stack (Automation API) and changes it: it moves the
stack between phase 0 and 1, and (unless --skip-full-deploy) destroys and
re-creates it to time a full deploy. It leaves the stack at phase 0.
Needs the toolchain (`source toolchain/env.sh`) and the local platform up.

Writes/replaces the section between the rollout-bench markers in
BENCHMARKS.md (other sections of the file are kept).

    python bench/rollout_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from driver import core  # noqa: E402 (after the sys.path insert above)
from driver.audit import AuditLog  # noqa: E402 (after the sys.path insert above)
from driver.stack import AutomationStack, ToolchainMissing, rollback_targets  # noqa: E402 (after the sys.path insert above)

BEGIN = "<!-- rollout-bench:begin -->"
END = "<!-- rollout-bench:end -->"


@dataclass
class Results:
    runs: int
    stack: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)


METRICS: list[tuple[str, str]] = [
    ("step_up", "advance step 0->1: `up` only"),
    ("step_total", "advance step 0->1: set config + `up`"),
    ("full_deploy", "full deploy (`destroy` then `up` at phase 0)"),
    ("rollback_full", "rollback 1->0, full `up` (driver, end to end)"),
    ("rollback_full_up", "rollback 1->0, full `up` (up only)"),
    ("rollback_targeted", "rollback 1->0, targeted `up` (driver, end to end)"),
    ("rollback_targeted_up", "rollback 1->0, targeted `up` (up only)"),
    ("preview_plain", "`preview` without policy pack"),
    ("preview_policy", "`preview` with policy pack"),
]
RATIOS: list[tuple[str, str, str]] = [
    ("step / full deploy", "step_up", "full_deploy"),
    ("targeted / full rollback", "rollback_targeted", "rollback_full"),
    ("preview with / without policy pack", "preview_policy", "preview_plain"),
]


def _fmt(xs: Sequence[float]) -> tuple[str, str, str]:
    return (f"{statistics.median(xs):.2f}", f"{min(xs):.2f}", f"{max(xs):.2f}")


def render_section(res: Results, when: datetime, host: str) -> str:
    """Markdown for BENCHMARKS.md (pure)."""
    lines = [
        BEGIN,
        "## Rollout driver (bench/rollout_bench.py)",
        "",
        (
            f"Measured {when.strftime('%Y-%m-%d %H:%M UTC')} on {host}, stack `{res.stack}`, "
            f"{res.runs} run(s) each; seconds, wall clock. SPEC goals: rollback <= 30 s "
            "(traffic switch <= 10 s), local goal <= 10 s."
        ),
        "",
        "| measurement | median s | min s | max s | n |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in METRICS:
        xs = res.samples.get(key)
        if xs:
            med, lo, hi = _fmt(xs)
            lines.append(f"| {label} | {med} | {lo} | {hi} | {len(xs)} |")
        else:
            lines.append(f"| {label} | n/a | | | 0 |")
    lines += ["", "| ratio (of medians) | value |", "|---|---:|"]
    for label, num, den in RATIOS:
        a, b = res.samples.get(num), res.samples.get(den)
        if a and b and statistics.median(b) > 0:
            lines.append(f"| {label} | {statistics.median(a) / statistics.median(b):.2f} |")
        else:
            lines.append(f"| {label} | n/a |")
    if res.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in res.notes]
    lines.append(END)
    return "\n".join(lines) + "\n"


def merge_section(existing: str, section: str) -> str:
    """Replace our marked section in ``existing`` (or append it)."""
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + section.rstrip("\n") + tail if tail.strip() else head + section
    if not existing.strip():
        return "# Benchmarks\n\n" + section
    return existing.rstrip("\n") + "\n\n" + section


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    value = fn()
    return time.monotonic() - t0, value


def run(args: argparse.Namespace) -> Results:
    runner = AutomationStack(args.stack, ROOT)
    res = Results(runs=args.runs, stack=args.stack)
    quiet: Callable[[str], None] = (lambda _l: None) if not args.verbose else print
    audit = AuditLog(Path(tempfile.mkdtemp(prefix="ce-bench-")) / "audit.jsonl")
    driver = core.Driver(runner, audit, out=quiet)
    policy = Path(args.policy_pack).resolve()

    def up_at(phase: int, targets: list[str] | None = None) -> float:
        runner.set_phase(phase)
        secs, outcome = _timed(lambda: runner.up(quiet, targets=targets))
        got = outcome.outputs.get("rolloutPhase")
        if got != phase:
            raise RuntimeError(f"after up at phase {phase}: rolloutPhase output is {got!r}")
        return float(secs)

    print(f"baseline: stack {args.stack} at phase 0", flush=True)
    up_at(0)
    for i in range(1, args.runs + 1):
        print(f"run {i}/{args.runs}", flush=True)
        # step 0 -> 1
        t0 = time.monotonic()
        res.add("step_up", up_at(1))
        res.add("step_total", time.monotonic() - t0)
        # full rollback through the driver
        secs, code = _timed(lambda: driver.rollback("bench", "benchmark", targeted=False))
        if code != core.OK:
            raise RuntimeError("full rollback failed")
        res.add("rollback_full", secs)
        res.add("rollback_full_up", float(audit.entries()[-1]["wall_s"]))
        # targeted rollback through the driver
        up_at(1)
        secs, code = _timed(lambda: driver.rollback("bench", "benchmark", targeted=True))
        if code != core.OK:
            raise RuntimeError("targeted rollback failed")
        last = audit.entries()[-1]
        res.add("rollback_targeted", secs)
        res.add("rollback_targeted_up", float(last["wall_s"]))
        # correctness of the targeted rollback: nothing left for a full update to change
        pending = runner.preview(quiet)
        changed = {k: v for k, v in pending.items() if k != "same" and v}
        if i == 1:
            res.notes.append(
                f"targeted rollback mode: {last.get('mode')}; "
                f"{len(rollback_targets(runner.resources()))} target URNs; "
                + (
                    "a full preview afterwards shows no pending changes (targeted rollback is complete)"
                    if not changed
                    else f"a full preview afterwards still shows {changed} (NOT complete)"
                )
            )
        # previews
        secs, _ = _timed(lambda: runner.preview(quiet))
        res.add("preview_plain", secs)
        if policy.exists():
            secs, _ = _timed(lambda: runner.preview(quiet, policy_packs=[str(policy)]))
            res.add("preview_policy", secs)
        elif i == 1:
            res.notes.append(
                f"policy pack {policy} not found: preview with policy pack not measured"
            )
        # full deploy
        if not args.skip_full_deploy:
            stack = runner.auto_stack
            stack.destroy(on_output=quiet, color="never")
            res.add("full_deploy", up_at(0))
    if args.skip_full_deploy:
        res.notes.append("full deploy skipped (--skip-full-deploy)")
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--runs", type=int, default=3, help="repetitions of every measurement (default 3)"
    )
    p.add_argument("--stack", default=os.environ.get("CE_STACK", "local"))
    p.add_argument("--policy-pack", default=str(ROOT / "policies"), help="policy pack directory")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument(
        "--skip-full-deploy",
        action="store_true",
        help="do not destroy + re-create the stack to time a full deploy",
    )
    p.add_argument("--verbose", action="store_true", help="stream Pulumi output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs < 1:
        print("error: --runs must be >= 1", file=sys.stderr)
        return 2
    try:
        res = run(args)
    except ToolchainMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    host = f"{platform.node() or 'host'} ({os.cpu_count()} cores, {platform.system()})"
    section = render_section(res, datetime.now(UTC), host)
    out = Path(args.output)
    out.write_text(merge_section(out.read_text() if out.exists() else "", section))
    print(section)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
