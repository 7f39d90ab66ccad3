"""Rollout benchmark (issue 10): fault onset -> all traffic on stable, canary signal lost ->
all traffic on stable (issue 29), decision -> weights switched, one step's `up` against a full deploy, and the driver's step through the CLI runner
against the Automation API runner. Median and max of N runs in one invocation; ratios are
taken against a baseline measured in the same run.

Runs against the REAL stack and changes it: it moves the stack between phase 0 and 1, runs
`./ce rollout run` against a private Prometheus + synthetic Istio exporter (scrape 5 s, as the
local platform) with a fault injected mid-bake, and (unless --skip-full-deploy) destroys and
re-creates the stack to time a full deploy. It restores the stack file's bytes and leaves the
stack at phase 0. Needs the toolchain (`source toolchain/env.sh`) and the local platform up.

Writes/replaces the section between the rollout-bench markers in BENCHMARKS.md.

    python bench/rollout_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sections import markers, merge_section  # noqa: E402
from driver.identities import ensure_role_identities  # noqa: E402
from driver.stack import (  # noqa: E402 (after the sys.path insert above)
    AutomationStack,
    CliStack,
    StackRunner,
    ToolchainMissing,
)
from driver.traffic import KubectlTraffic  # noqa: E402

NAME = "rollout-bench"
BEGIN, END = markers(NAME)


@dataclass
class Results:
    runs: int
    stack: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)


METRICS: list[tuple[str, str]] = [
    ("fault_to_stable", "fault onset -> all traffic on stable (live VirtualService), goal <= 20 s"),
    (
        "signal_lost_to_stable",
        "canary signal lost -> all traffic on stable (live VirtualService), goal <= 15 s",
    ),
    ("decision_to_switch", "rollback decision -> weights switched (audit), goal <= 2 s"),
    ("step_up", "step 0->1: `up` only (CLI runner)"),
    ("step_total", "step 0->1: config set + `up` (CLI runner)"),
    ("step_automation", "step 1->0: config set + `up` (Automation API runner)"),
    ("full_deploy", "full deploy (`destroy` then `up` at phase 0)"),
]
RATIOS: list[tuple[str, str, str]] = [
    ("step / full deploy (goal <= 0.2)", "step_up", "full_deploy"),
    ("Automation API step / CLI step", "step_automation", "step_total"),
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
            f"{res.runs} run(s) each, one invocation; seconds, wall clock. Goals (issue 10): "
            "fault onset -> all traffic on stable <= 20 s (SPEC 30 s), decision -> weights "
            "switched <= 2 s (SPEC 10 s), one step's `up` <= 0.2 of a full deploy."
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
    lines += ["", "| ratio (of medians, same run) | value |", "|---|---:|"]
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


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    value = fn()
    return time.monotonic() - t0, value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


class Telemetry:
    """A private synthetic exporter + Prometheus (platform/telemetry.sh on free ports)."""

    def __init__(self, home: Path) -> None:
        self.env = {
            **os.environ,
            "CE_HOME": str(home),
            "CE_PROMETHEUS_PORT": str(_free_port()),
            "CE_EXPORTER_PORT": str(_free_port()),
            "CE_ROLLOUT_METRICS_PORT": str(_free_port()),
            "CE_PYTHON": sys.executable,
        }
        self.url = f"http://127.0.0.1:{self.env['CE_PROMETHEUS_PORT']}"
        self.exporter = f"http://127.0.0.1:{self.env['CE_EXPORTER_PORT']}"

    def __enter__(self) -> Telemetry:
        subprocess.run(
            ["bash", str(ROOT / "platform" / "telemetry.sh"), "up"], env=self.env, check=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(
            ["bash", str(ROOT / "platform" / "telemetry.sh"), "down"], env=self.env, check=False
        )

    def control(self, **kw: object) -> None:
        _get(f"{self.exporter}/control?" + urllib.parse.urlencode(kw))


def _canary_weight(kubectl: str) -> int:
    out = subprocess.run(
        [kubectl, "get", "virtualservice.networking.istio.io/claude-enhancer", "-n",
         "claude-enhancer", "-o", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    route = next(r for r in json.loads(out)["spec"]["http"] if r["name"] == "weighted")
    return int(next(d["weight"] for d in route["route"] if d["destination"]["subset"] == "canary"))


#: the faults injected in the exporter once phase 1 is green, and what clears them
CANARY_5XX: tuple[dict[str, object], dict[str, object]] = (
    {"canary_error_rate": 0.05},
    {"canary_error_rate": 0},
)
#: issue 29: the canary's sidecar stops reporting (its request series vanish; its traffic,
#: the gateway's reports and the app's metrics go on)
SIGNAL_LOST: tuple[dict[str, object], dict[str, object]] = (
    {"canary_reports": 0},
    {"canary_reports": 1},
)


def fault_run(
    args: argparse.Namespace,
    tel: Telemetry,
    audit: Path,
    kubectl: str,
    fault: tuple[dict[str, object], dict[str, object]] = CANARY_5XX,
) -> tuple[float, float]:
    """Controller at phase 1 (healthy), then ``fault``: seconds to all-stable and
    decision->switch."""
    env = {**os.environ, "CE_AUDIT_DIR": str(audit.parent)}
    base = [sys.executable, "-m", "driver", "--stack", args.stack, "--audit-log", str(audit)]
    proc = subprocess.Popen(
        [*base, "run", "--prometheus", tel.url, "--metrics-port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    t_fault: float | None = None
    for line in proc.stdout:
        lines.append(line)
        if "waiting for the GO/NO-GO" in line:
            ensure_role_identities()
            subprocess.run(
                [*base, "approve", "--identity", "deployment-commander"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
        if "phase 1: gate green" in line and t_fault is None:
            tel.control(**fault[0])
            t_fault = time.monotonic()
            while _canary_weight(kubectl) != 0:
                if time.monotonic() - t_fault > 120:
                    raise RuntimeError("no rollback within 120 s:\n" + "".join(lines[-40:]))
                time.sleep(0.05)
            on_stable = time.monotonic() - t_fault
    code = proc.wait()
    tel.control(**fault[1])
    if code != 3 or t_fault is None:
        raise RuntimeError(
            f"controller exit {code}, expected a rollback (3):\n" + "".join(lines[-40:])
        )
    entries = [json.loads(x) for x in audit.read_text().splitlines() if x.strip()]
    from driver.bake import parse_ts

    decided = parse_ts(
        next(e for e in reversed(entries) if e["result"] in ("gate_failed", "judge_failed"))["ts"]
    )
    switched = parse_ts(
        next(e for e in reversed(entries) if e["result"] == "traffic_switched")["ts"]
    )
    return on_stable, (switched - decided).total_seconds()


def run(args: argparse.Namespace) -> Results:
    res = Results(runs=args.runs, stack=args.stack)
    quiet: Callable[[str], None] = (lambda _l: None) if not args.verbose else print
    stack_file = ROOT / "stacks" / f"Pulumi.{args.stack}.yaml"
    original = stack_file.read_bytes()
    runner = CliStack(args.stack, ROOT)
    kubectl = KubectlTraffic().kubectl
    tmp = Path(tempfile.mkdtemp(prefix="ce-bench-"))
    modes: dict[tuple[str, int], list[str]] = defaultdict(list)

    def up_at(r: StackRunner, phase: int) -> tuple[float, float]:
        t0 = time.monotonic()
        targets = r.step_targets()  # as the driver's step decides it
        modes[type(r).__name__, phase].append("targeted" if targets else "full")
        r.set_phase(phase)
        secs, outcome = _timed(lambda: r.up(quiet, targets=targets))
        if outcome.outputs.get("rolloutPhase") != phase:
            raise RuntimeError(
                f"after up at phase {phase}: {outcome.outputs.get('rolloutPhase')!r}"
            )
        return float(secs), time.monotonic() - t0

    try:
        # a short gate window so consecutive fault runs start from a clean window
        runner.set_config_value("claude-enhancer:rollout.gate.window", "15s")
        print(f"baseline: stack {args.stack} at phase 0", flush=True)
        up_at(runner, 0)
        with Telemetry(tmp / "telemetry") as tel:
            time.sleep(20)  # a full window of healthy traffic
            for i in range(1, args.runs + 1):
                print(f"run {i}/{args.runs}", flush=True)
                up_s, total_s = up_at(runner, 1)
                res.add("step_up", up_s)
                res.add("step_total", total_s)
                auto = AutomationStack(args.stack, ROOT)
                _, auto_total = up_at(auto, 0)
                res.add("step_automation", auto_total)
                on_stable, switch = fault_run(args, tel, tmp / f"audit-{i}.jsonl", kubectl)
                res.add("fault_to_stable", on_stable)
                res.add("decision_to_switch", switch)
                # the canary's 5xx must leave the gate window first, or they decide phase 1
                time.sleep(16)
                lost, _ = fault_run(
                    args, tel, tmp / f"audit-lost-{i}.jsonl", kubectl, fault=SIGNAL_LOST
                )
                res.add("signal_lost_to_stable", lost)
                if not args.skip_full_deploy:
                    runner._run("destroy", "--yes", "--skip-preview")
                    res.add("full_deploy", up_at(runner, 0)[0])
                time.sleep(16)  # let the injected errors leave the gate window
        if args.skip_full_deploy:
            res.notes.append("full deploy skipped (--skip-full-deploy)")
        steps = modes["CliStack", 1]
        res.notes.append(
            f"step 0->1 (CLI runner): {steps.count('targeted')} of {len(steps)} targeted "
            "(the driver targets a step when nothing but the phase changed since its last `up`)"
        )
        res.notes.append(
            "fault runs: `./ce rollout run` (CLI runner) at phase 1, local stack interval 2 s, "
            "Prometheus scrape 5 s, gate window 15 s, 5 % canary 5xx injected in the exporter, "
            "whose 400 requests/s follow the applied VirtualService (20/s to the canary at "
            "phase 1); on-stable time polled on the live VirtualService every 50 ms"
        )
        res.notes.append(
            "signal-lost runs (issue 29): the same, with the canary's sidecar reports "
            '(`reporter="destination"` request series) dropped from the exporter once phase 1 '
            "is green (a few seconds into the phase, inside the 60 s data grace); the gate "
            "window still holds their last samples"
        )
    finally:
        stack_file.write_bytes(original)
        up_at(runner, 0)
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--runs", type=int, default=5, help="repetitions of every measurement (default 5)"
    )
    p.add_argument("--stack", default=os.environ.get("CE_STACK", "local"))
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
    out.write_text(merge_section(out.read_text() if out.exists() else "", section, NAME))
    print(section)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
