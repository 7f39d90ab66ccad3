"""ruff (lint + format) and mypy over the repository, as CI runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
        [
            "mypy",
            "--config-file",
            "policies/mypy.ini",
            "policies",
            "--cache-dir",
            "{cache}-policies",
        ],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "mypy-policies"],
)
def test_lint(args: list[str]) -> None:
    # one mypy cache per configuration (toolchain/env.sh: MYPY_CACHE_DIR), or they evict each other
    cache = os.environ.get("MYPY_CACHE_DIR", ".mypy_cache")
    args = [a.replace("{cache}", cache) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
