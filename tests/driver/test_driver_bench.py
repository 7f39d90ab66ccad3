"""The benchmark's report rendering (pure) and its command line."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    return load_script("rollout_bench", ROOT / "bench" / "rollout_bench.py")


def test_render_and_merge() -> None:
    b = _bench()
    res = b.Results(runs=3, stack="local")
    for v in (10.0, 12.0, 11.0):
        res.add("full_deploy", v)
    for v in (2.0, 3.0, 2.5):
        res.add("step_up", v)
    res.notes.append("a note")
    section = b.render_section(res, datetime(2025, 1, 1, tzinfo=UTC), "host")
    assert "| full deploy (`destroy` then `up` at phase 0) | 11.00 | 10.00 | 12.00 | 3 |" in section
    assert "| step / full deploy (goal <= 0.2) | 0.23 |" in section
    assert "| Automation API step / CLI step | n/a |" in section
    doc = b.merge_section("# Benchmarks\n\n## Other\nkeep me\n", section, b.NAME)
    assert "keep me" in doc and doc.count(b.BEGIN) == 1
    res.samples["full_deploy"] = [20.0]
    doc2 = b.merge_section(
        doc + "\n## Tail\nkeep too\n",
        b.render_section(res, datetime(2025, 1, 2, tzinfo=UTC), "h"),
        b.NAME,
    )
    assert doc2.count(b.BEGIN) == 1 and "20.00" in doc2 and "keep me" in doc2 and "keep too" in doc2


def test_help() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rollout_bench.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--runs" in out and "BENCHMARKS.md" in out
