"""Canary judge benchmark: false rollbacks, detection power and time to decision,
next to today's fixed-threshold gate on the same seeded data.

Pure CPU, no platform needed. Scenarios come from monitoring/exporter/scenarios.py
(1100 RPS service, stable error rate 0.05 % unless stated, log-normal latency,
median 120 ms). Every run uses its own block of seeds; the table shows the
median and the maximum over the runs, and ratios against the fixed gate
computed inside each run.

1. One window: the judge on a 30 min window (default ``analysis.window``) at
   phase 1 (5 %) and phase 2 (20 %); the fixed gate (error ratio < 0.1 %,
   P95 < 500 ms, P99 < 1 s, >= 100 requests; no comparison with stable) on the
   same counts.
2. A phase-2 bake (45 min, one judgement a minute over the last 30 min, then
   :func:`rollout.judge.decide` with a 15 min extension cap), against the fixed
   gate evaluated once at the end of the bake over the last 5 min, as the
   driver does today. Time to decision is counted in analysis intervals.
3. CPU time of one judgement (phase-2 window) against one fixed-gate evaluation.

Writes/replaces the section between the judge-bench markers in BENCHMARKS.md.

    python bench/judge_bench.py --runs 5 --seeds 50
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sections import markers, merge_section  # noqa: E402
from monitoring.exporter.scenarios import SCENARIOS, Scenario, TrackWindow, generate  # noqa: E402
from rollout import gate  # noqa: E402
from rollout.analysis import AnalysisSettings  # noqa: E402
from rollout.judge import (  # noqa: E402
    Action,
    JudgeInputs,
    Judgement,
    Outcome,
    TrackCounts,
    decide,
    histogram_quantile,
    judge,
)

NAME = "judge-bench"
BEGIN, END = markers(NAME)
SETTINGS = AnalysisSettings()


@dataclass(frozen=True)
class Limits:
    """SPEC service levels = the gate's default thresholds."""

    max_error_ratio: float = 0.001
    max_p95_ms: float = 500.0
    max_p99_ms: float = 1000.0
    min_requests: float = 100.0


LIMITS = Limits()


def fixed_gate_passes(canary: TrackCounts) -> bool:
    """Today's gate: fixed thresholds on the canary alone (rollout.gate / driver.gate)."""
    n = canary.requests
    ratio = canary.errors / n if n else None
    p95 = histogram_quantile(0.95, canary.buckets) if n else None
    p99 = histogram_quantile(0.99, canary.buckets) if n else None
    inputs = gate.GateInputs(
        metric_names=frozenset(gate.REQUIRED_METRICS),
        error_ratio=ratio,
        p95_ms=p95,
        p99_ms=p99,
        request_count=n,
    )
    profile = ("metrics_present", "request_count", "error_ratio", "p95", "p99")
    return bool(gate.evaluate(inputs, gate.GateThresholds(), profile).passed)


def _counts(t: TrackWindow) -> TrackCounts:
    return TrackCounts(t.requests, t.errors, t.buckets)


def _inputs(stable: TrackWindow, canary: TrackWindow, weight: float, window: str) -> JudgeInputs:
    return JudgeInputs(_counts(canary), _counts(stable), weight, window)


# ----------------------------------------------------------------- 1. one window

WINDOW_CASES: list[tuple[str, Scenario, str]] = [
    ("equal", SCENARIOS["equal"], "false"),
    (
        "equal, stable at 0.09 % (near the SLO)",
        SCENARIOS["equal"].with_(stable_error_rate=0.0009),
        "false",
    ),
    ("latency +10 % (allowed: +20 %)", SCENARIOS["latency-1.1x"], "false"),
    ("errors 2x (0.04 -> 0.08 %)", SCENARIOS["errors-2x"], "detect"),
    ("errors 3x under the SLO (0.03 -> 0.09 %)", SCENARIOS["errors-3x-under-slo"], "detect"),
    ("latency +30 % (P95 < 500 ms)", SCENARIOS["latency-1.3x"], "detect"),
    ("errors 4x (over the SLO)", SCENARIOS["errors-over-slo"], "detect"),
]
PHASES: list[tuple[str, float]] = [("phase 1 (5 %)", 5.0), ("phase 2 (20 %)", 20.0)]


@dataclass
class Rates:
    judge_fail: float
    judge_inconclusive: float
    gate_fail: float
    """The fixed gate on the judge's 30 min counts."""
    gate5_fail: float
    """The fixed gate on its own 5 min window (same seed), as the driver runs it."""


def one_window(sc: Scenario, weight: float, seeds: Sequence[int]) -> Rates:
    sc = sc.with_(canary_weight=weight)
    got: Counter[Outcome] = Counter()
    gate_fail = gate5_fail = 0
    for seed in seeds:
        stable, canary = generate(sc, seed)
        got[judge(_inputs(stable, canary, weight, "30m"), LIMITS, SETTINGS).outcome] += 1
        gate_fail += not fixed_gate_passes(_counts(canary))
        _, canary5 = generate(sc.with_(window_s=GATE_WINDOW_MIN * 60.0), seed)
        gate5_fail += not fixed_gate_passes(_counts(canary5))
    n = len(seeds)
    return Rates(
        got[Outcome.FAIL] / n, got[Outcome.INCONCLUSIVE] / n, gate_fail / n, gate5_fail / n
    )


# ----------------------------------------------------------------- 2. a bake

#: (scenario, phase name, canary weight, SPEC bake minutes)
BAKE_CASES: list[tuple[str, Scenario, str, float, int]] = [
    (name, sc, phase, weight, bake_min)
    for phase, weight, bake_min in (("phase 1 (5 %)", 5.0, 30), ("phase 2 (20 %)", 20.0, 45))
    for name, sc in (
        ("equal", SCENARIOS["equal"]),
        ("errors 2x", SCENARIOS["errors-2x"]),
        ("latency +30 %", SCENARIOS["latency-1.3x"]),
        ("errors 4x (over the SLO)", SCENARIOS["errors-over-slo"]),
    )
]
WINDOW_MIN = SETTINGS.window_s // 60
CAP_MIN = SETTINGS.max_extension_s // 60
GATE_WINDOW_MIN = 5  # the gate's default window


@dataclass
class BakeRun:
    action: Action
    intervals: int
    gate_passed: bool


def _sum(windows: Sequence[TrackWindow]) -> TrackCounts:
    les = [le for le, _ in windows[0].buckets]
    cum = np.sum([[c for _, c in w.buckets] for w in windows], axis=0)
    return TrackCounts(
        float(sum(w.requests for w in windows)),
        float(sum(w.errors for w in windows)),
        tuple((le, float(c)) for le, c in zip(les, cum)),
    )


def bake(sc: Scenario, weight: float, bake_min: int, seed: int) -> BakeRun:
    minute = sc.with_(window_s=60.0, canary_weight=weight)
    # one stream of per-minute increases, seen by both the judge and the fixed gate
    data = [generate(minute, seed * 10_000 + i) for i in range(bake_min + CAP_MIN)]
    stable = [s for s, _ in data]
    canary = [c for _, c in data]
    history: list[Judgement] = []
    decision = None
    for interval in range(1, bake_min + CAP_MIN + 1):
        first = max(0, interval - WINDOW_MIN)
        window = f"{interval - first}m"
        history.append(
            judge(
                JudgeInputs(
                    _sum(canary[first:interval]),
                    _sum(stable[first:interval]),
                    weight,
                    window,
                ),
                LIMITS,
                SETTINGS,
            )
        )
        decision = decide(history, interval * 60.0, bake_min * 60.0, CAP_MIN * 60.0)
        if decision.action not in (Action.WAIT, Action.EXTEND):
            break
    assert decision is not None
    # today's driver: one gate evaluation after the bake, over the gate's window
    gate_passed = fixed_gate_passes(_sum(canary[bake_min - GATE_WINDOW_MIN : bake_min]))
    return BakeRun(decision.action, interval, gate_passed)


# ----------------------------------------------------------------- 3. CPU time


def cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


# ----------------------------------------------------------------- report


@dataclass
class Results:
    runs: int
    seeds: int
    bake_seeds: int
    window: dict[tuple[str, str], list[Rates]] = field(default_factory=dict)
    bakes: dict[str, list[list[BakeRun]]] = field(default_factory=dict)
    cpu_judge: list[float] = field(default_factory=list)
    cpu_gate: list[float] = field(default_factory=list)
    min_samples: dict[str, dict[str, float]] = field(default_factory=dict)
    """phase -> check -> minimum canary sample on the equal scenario (last run)."""


def _pct(xs: Sequence[float]) -> str:
    return f"{statistics.median(xs) * 100:.0f} % / {max(xs) * 100:.0f} %"


def _ratio(a: Sequence[float], b: Sequence[float]) -> str:
    ratios = [x / y for x, y in zip(a, b) if y > 0]
    if not ratios:
        return "n/a (gate 0 %)"
    return f"{statistics.median(ratios):.2f}"


def render_section(res: Results, when: datetime, host: str, cpu_s: float) -> str:
    lines = [
        BEGIN,
        "## Canary judge (bench/judge_bench.py)",
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {host}; {res.runs} runs of {res.seeds} seeds "
        f"(bakes: {res.bake_seeds} seeds per run), each run its own seeds; cells show "
        f"median / max over the runs. Settings: defaults of `rollout.analysis` (confidence "
        f"{SETTINGS.confidence:.0%}, power {SETTINGS.power:.0%}, maxErrorIncrease "
        f"{SETTINGS.max_error_increase:g}, maxLatencyIncrease {SETTINGS.max_latency_increase:g}, "
        f"maxBurnRateIncrease {SETTINGS.max_burn_rate_increase:g}). Load: 1100 RPS, "
        f"stable error rate 0.05 % unless stated, log-normal latency (median 120 ms, P95 ~ 300 ms). "
        f"Bench CPU time {cpu_s:.0f} s.",
        "",
        "### One 30 min window, judge vs fixed gate on the same counts",
        "",
        "False rollback = a fail on a canary as good as stable (or within the allowed "
        "increase); detection = a fail on a worse canary. Inconclusive is neither: the "
        "controller extends the bake, then pauses.",
        "",
        "| scenario | phase | kind | judge fail | judge inconclusive | fixed gate fail, "
        "same 30 min | fixed gate fail, its 5 min | judge / gate fail (30 min, median of runs) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, _sc, kind in WINDOW_CASES:
        for phase_name, _ in PHASES:
            rs = res.window[(name, phase_name)]
            lines.append(
                f"| {name} | {phase_name} | {'false rollback' if kind == 'false' else 'detection'} "
                f"| {_pct([r.judge_fail for r in rs])} | {_pct([r.judge_inconclusive for r in rs])} "
                f"| {_pct([r.gate_fail for r in rs])} | {_pct([r.gate5_fail for r in rs])} "
                f"| {_ratio([r.judge_fail for r in rs], [r.gate_fail for r in rs])} |"
            )
    lines += [
        "",
        f"### A bake (SPEC bake time, judged every minute over the counts since the phase "
        f"began, up to {WINDOW_MIN} min; extension cap {CAP_MIN} min) vs the fixed gate once "
        f"after the bake (last {GATE_WINDOW_MIN} min)",
        "",
        "Time to decision in analysis intervals (1 min); a pass cannot come before the bake "
        "is over, a fail acts at once.",
        "",
        "| scenario | phase | judge: rollback / proceed / pause | judge intervals to decision "
        "(median / max) | fixed gate: rollback / proceed | fixed gate intervals |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, _, phase_name, _, bake_min in BAKE_CASES:
        runs = res.bakes[f"{name} @ {phase_name}"]
        flat = [b for run in runs for b in run]
        n = len(flat)
        acts = Counter(b.action for b in flat)
        gate_fail = sum(not b.gate_passed for b in flat)
        iv = [b.intervals for b in flat]
        lines.append(
            f"| {name} | {phase_name} | {acts[Action.ROLLBACK] / n:.0%} / "
            f"{acts[Action.PROCEED] / n:.0%} / {acts[Action.PAUSE] / n:.0%} "
            f"| {statistics.median(iv):.0f} / {max(iv)} "
            f"| {gate_fail / n:.0%} / {(n - gate_fail) / n:.0%} | {bake_min} |"
        )
    lines += [
        "",
        "### Minimum canary sample (power analysis, equal scenario) and the time it takes",
        "",
        "| phase | check | canary requests | minutes of canary traffic at 1100 RPS |",
        "|---|---|---:|---:|",
    ]
    for phase_name, weight in PHASES:
        for check, need in res.min_samples[phase_name].items():
            minutes = need / (1100.0 * weight / 100.0) / 60.0
            lines.append(f"| {phase_name} | {check} | {need:.0f} | {minutes:.1f} |")
    cj, cg = res.cpu_judge, res.cpu_gate
    lines += [
        "",
        "### CPU time of one judgement (phase-2 window: ~396 000 canary, ~1 584 000 stable "
        "requests)",
        "",
        "| measurement | median ms | max ms |",
        "|---|---:|---:|",
        f"| judge (6 checks, scipy) | {statistics.median(cj) * 1e3:.1f} | {max(cj) * 1e3:.1f} |",
        f"| fixed gate | {statistics.median(cg) * 1e3:.3f} | {max(cg) * 1e3:.3f} |",
        f"| ratio judge / gate (median of per-run ratios) | "
        f"{statistics.median([a / b for a, b in zip(cj, cg)]):.0f} | |",
        "",
        END,
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Results:
    res = Results(args.runs, args.seeds, args.bake_seeds)
    for r in range(args.runs):
        seeds = range(r * args.seeds, (r + 1) * args.seeds)
        for name, sc, _ in WINDOW_CASES:
            for phase_name, weight in PHASES:
                res.window.setdefault((name, phase_name), []).append(one_window(sc, weight, seeds))
        bake_seeds = range(r * args.bake_seeds, (r + 1) * args.bake_seeds)
        for name, sc, phase_name, weight, bake_min in BAKE_CASES:
            res.bakes.setdefault(f"{name} @ {phase_name}", []).append(
                [bake(sc, weight, bake_min, s) for s in bake_seeds]
            )
        for phase_name, weight in PHASES:
            st, ca = generate(SCENARIOS["equal"].with_(canary_weight=weight), 20_000 + r)
            j = judge(_inputs(st, ca, weight, "30m"), LIMITS, SETTINGS)
            res.min_samples[phase_name] = {c.name: c.min_sample for c in j.checks}
        stable, canary = generate(SCENARIOS["equal"], 10_000 + r)
        inputs = _inputs(stable, canary, 20.0, "30m")
        res.cpu_judge.append(cpu_per_call(partial(judge, inputs, LIMITS, SETTINGS), 20))
        res.cpu_gate.append(cpu_per_call(partial(fixed_gate_passes, inputs.canary), 200))
        print(f"run {r + 1}/{args.runs} done", file=sys.stderr, flush=True)
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seeds", type=int, default=50, help="seeds per run (one-window part)")
    p.add_argument("--bake-seeds", type=int, default=10, help="seeds per run (bake part)")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs < 1 or args.seeds < 1 or args.bake_seeds < 1:
        print("error: --runs, --seeds and --bake-seeds must be >= 1", file=sys.stderr)
        return 2
    t0 = time.process_time()
    res = run(args)
    host = f"{platform.node() or 'host'} ({os.cpu_count()} cores, {platform.system()})"
    section = render_section(res, datetime.now(UTC), host, time.process_time() - t0)
    out = Path(args.output)
    out.write_text(merge_section(out.read_text() if out.exists() else "", section, NAME))
    print(section)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
