"""Policy pack cost in a real CLI preview: bench/preview_pack_bench.py (issue 25's goal).

`pulumi preview --stack local` of the deployed local stack, with and without
``--policy-pack policies``, alternated in one invocation so both see the same machine load;
the preview without the pack is the baseline. Needs the local platform and a deployed `local`
stack (`./ce up`); it changes nothing (previews only). The in-process breakdown of the pack's
share is bench/policy_bench.py.

``--advisory`` runs the pack with every rule advisory (CE_POLICY_ENFORCEMENT=advisory): the same
rules on the same resources, but a mandatory finding in the deployed stack no longer fails the
preview (nor stops it at the first invalid resource, which would shorten the measured run).

    python bench/preview_pack_bench.py [--runs 5] [--advisory] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from sections import median_max, merge_section  # noqa: E402

from tests.toolchain import toolchain_env  # noqa: E402

SECTION = "preview-pack-bench"


def preview(env: dict[str, str], with_pack: bool) -> float:
    args = ["pulumi", "preview", "--stack", "local", "--non-interactive"]
    if with_pack:
        args += ["--policy-pack", "policies"]
    t0 = time.monotonic()
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(
            f"preview {'with' if with_pack else 'without'} the pack failed:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--write", default="", help="merge the results into this BENCHMARKS.md")
    p.add_argument(
        "--advisory", action="store_true", help="every rule advisory (see the module doc)"
    )
    a = p.parse_args(argv)
    env = toolchain_env()
    if a.advisory:
        env["CE_POLICY_ENFORCEMENT"] = "advisory"
    preview(env, True)  # warm-up: the pack's venv and the plugins' first start
    bare: list[float] = []
    packed: list[float] = []
    for i in range(a.runs):
        # alternate which goes first, so drift in the machine's load favours neither
        for with_pack in (i % 2 == 0, i % 2 != 0):
            (packed if with_pack else bare).append(preview(env, with_pack))
    (bm, bx), (pm, px) = median_max(bare), median_max(packed)
    ratio = pm / bm
    ratios = sorted(w / b for w, b in zip(packed, bare))
    print(
        f"without pack {bm:.2f}s (max {bx:.2f}), with pack {pm:.2f}s (max {px:.2f}); ratio {ratio:.2f} "
        f"(per-pair ratios {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    if a.write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = "\n".join(
            [
                f"<!-- {SECTION}:begin -->",
                "## Policy pack cost in a real CLI preview (bench/preview_pack_bench.py)",
                "",
                f"Measured {when} on {platform.node()} ({os.cpu_count()} cores), {a.runs} pairs alternated in one "
                "invocation, `pulumi preview --stack local` of the deployed stack"
                f"{' (pack run with every rule advisory, --advisory)' if a.advisory else ''}; seconds. Goal "
                "(issue 25): with the pack / without <= 1.3.",
                "",
                "| preview | median | max |",
                "|---|---|---|",
                f"| without the pack (baseline) | {bm:.2f} | {bx:.2f} |",
                f"| with `--policy-pack policies` | {pm:.2f} | {px:.2f} |",
                f"| **ratio of medians** | **{ratio:.2f}** | per-pair max {max(ratios):.2f} |",
                f"<!-- {SECTION}:end -->",
                "",
            ]
        )
        path = Path(a.write)
        path.write_text(merge_section(path.read_text() if path.exists() else "", section, SECTION))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
