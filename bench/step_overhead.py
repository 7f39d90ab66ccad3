"""Where does a driver step lose time outside the engine? (issue 10, item 4)

Times one phase step (0 -> 1 -> 0) three ways on the real stack and lists every
Pulumi CLI process each path starts, with its wall time:

  cli         `pulumi config set` + `pulumi up --skip-preview` (what a person types)
  automation  the driver's AutomationStack: select_stack, get_all_config, set_config,
              outputs, up (the SDK's up also runs `stack output` x2 and `stack history`)
  runner      driver.stack.CliStack: one `pulumi up --config-path -c ... --json` per step,
              outputs taken from the same run's engine events

Leaves the stack at phase 0. Needs the toolchain env and the local platform.

    python bench/step_overhead.py [--stack local] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from driver.stack import AutomationStack, CliStack  # noqa: E402 (after the sys.path insert)

Calls = list[tuple[str, float]]


def _instrument_automation(stack: AutomationStack, calls: Calls) -> None:
    cmd = stack.auto_stack.workspace.pulumi_command
    orig = cmd.run

    def run(args: list[str], *a: Any, **kw: Any) -> Any:
        t0 = time.monotonic()
        try:
            return orig(args, *a, **kw)
        finally:
            calls.append((" ".join(args[:3]), time.monotonic() - t0))

    cmd.run = run  # type: ignore[method-assign]


def _cli(stack: str, *args: str, calls: Calls) -> None:
    t0 = time.monotonic()
    subprocess.run(
        ["pulumi", *args, "--stack", stack, "--non-interactive"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    calls.append((" ".join(args[:3]), time.monotonic() - t0))


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def cli_step(stack: str, phase: int, calls: Calls) -> None:
    _cli(stack, "config", "set", "--path", "claude-enhancer:rollout.phase", str(phase), calls=calls)
    _cli(stack, "up", "--yes", "--skip-preview", calls=calls)


def automation_step(stack: str, phase: int, calls: Calls) -> None:
    t0 = time.monotonic()
    st = AutomationStack(stack, ROOT)  # select_stack (+ project settings)
    calls.append(("(AutomationStack(), all CLI calls inside)", time.monotonic() - t0))
    _instrument_automation(st, calls)
    st.rollout_config()
    st.outputs()
    st.set_phase(phase)
    st.up(lambda _l: None)


def runner_step(runner: CliStack, phase: int, calls: Calls) -> None:
    runner.on_call = lambda name, secs: calls.append((name, secs))
    runner.rollout_config()
    runner.outputs()
    runner.set_phase(phase)
    runner.up(lambda _l: None)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stack", default=os.environ.get("CE_STACK", "local"))
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    runner = CliStack(args.stack, ROOT)
    steps: dict[str, Callable[[int, Calls], None]] = {
        "cli": functools.partial(cli_step, args.stack),
        "automation": functools.partial(automation_step, args.stack),
        "runner": functools.partial(runner_step, runner),
    }
    totals: dict[str, list[float]] = {k: [] for k in steps}
    per_call: dict[str, dict[str, list[float]]] = {k: {} for k in steps}
    for _ in range(args.runs):
        for path, step in steps.items():
            for phase in (1, 0):
                calls: Calls = []
                totals[path].append(_timed(functools.partial(step, phase, calls)))
                for name, secs in calls:
                    per_call[path].setdefault(name, []).append(secs)
    for path, xs in totals.items():
        print(
            f"\n{path}: step median {statistics.median(xs):.2f} s, max {max(xs):.2f} s "
            f"({len(xs)} steps)"
        )
        for name, ys in per_call[path].items():
            n = len(ys) / len(xs)
            print(f"    {name:44s} x{n:g} per step, median {statistics.median(ys):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
