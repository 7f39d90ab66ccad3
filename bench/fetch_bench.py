"""Fetch phase from empty caches (issue 8): what a fresh machine downloads before any build.

    python bench/fetch_bench.py [--runs 3] [--output BENCHMARKS.md]

Each cold run gets an empty Go module cache, Go build cache, CE_HOME and HOME (so pip's cache is
empty too) and runs `toolchain/bootstrap.sh --fetch-only --test-tools` for the `local` stack with
the CLI build forced, as on a machine without Pulumi. The baseline, measured in the same
invocation, is the same command again over the caches the cold run just filled (a warm machine).
Writes the `fetch-bench` section of BENCHMARKS.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sections import markers, median_max, merge_section  # noqa: E402 (after sys.path)
from tests.toolchain import fresh_machine_env  # noqa: E402

NAME = "fetch-bench"


def fresh_env(root: Path) -> dict[str, str]:
    # as on a machine without Pulumi: the CLI is built, plugins are not downloaded
    return fresh_machine_env(root, CE_BUILD_PULUMI="1", CE_PLUGIN_DOWNLOAD="0")


def fetch(env: dict[str, str]) -> float:
    t0 = time.monotonic()
    r = subprocess.run(
        ["bash", str(ROOT / "toolchain" / "bootstrap.sh"), "--fetch-only", "--test-tools"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"fetch phase failed after {secs:.0f}s:\n{r.stderr[-3000:]}")
    return secs


def du_mib(path: Path) -> float:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True).stdout
    return float(out.split()[0]) if out else 0.0


def render(cold: list[float], warm: list[float], mod_mib: float, when: datetime) -> str:
    begin, end = markers(NAME)
    (cm, cx), (wm, wx) = median_max(cold), median_max(warm)
    host = f"{platform.node() or 'host'} ({os.cpu_count()} cores)"
    return "\n".join(
        [
            begin,
            "## Fetch phase from empty caches (bench/fetch_bench.py)",
            "",
            f"Measured {when.strftime('%Y-%m-%d %H:%M UTC')} on {host}, {len(cold)} run(s); "
            "`toolchain/bootstrap.sh --fetch-only --test-tools`, stack `local` (no Vault), CLI build "
            f"forced. Downloads: Go modules {mod_mib:.0f} MiB, plus the Python wheels.",
            "",
            "| measurement | median s | max s | n |",
            "|---|---:|---:|---:|",
            f"| cold: empty module cache, build cache, CE_HOME, pip cache | {cm:.1f} | {cx:.1f} | {len(cold)} |",
            f"| baseline: the same, caches warm | {wm:.1f} | {wx:.1f} | {len(warm)} |",
            "",
            f"cold / warm (medians): **{cm / wm:.1f}x**. The test suite runs the cold fetch once "
            "(`tests/integration/test_fresh_machine.py`).",
            end,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    cold: list[float] = []
    warm: list[float] = []
    mod_mib = 0.0
    for i in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="ce-fetch-bench-"))
        try:
            env = fresh_env(root)
            cold.append(fetch(env))
            warm.append(fetch(env))
            mod_mib = du_mib(root / "gomod")
            print(f"run {i + 1}: cold {cold[-1]:.1f}s, warm {warm[-1]:.1f}s", flush=True)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
            shutil.rmtree(root, ignore_errors=True)
    section = render(cold, warm, mod_mib, datetime.now(UTC))
    out = Path(args.output)
    out.write_text(merge_section(out.read_text() if out.exists() else "", section, NAME))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
