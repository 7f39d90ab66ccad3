"""Each tests/noncompliant/<case> program breaks exactly its rule (checked via Pulumi mocks).

This needs no Pulumi CLI: the program runs under pulumi.runtime mocks, the
registered inputs go through the same rules the pack wraps. The CLI-level check
(`pulumi preview --policy-pack policies`) is tests/integration/test_policy_preview.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from policies.engine import evaluate
from policies.rules import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "tests" / "noncompliant"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "Pulumi.yaml").is_file())


def _run(case: str) -> list[dict[str, Any]]:
    r = subprocess.run(
        [sys.executable, str(CASES_DIR / "_mockrun.py"), str(CASES_DIR / case)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"{case}: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


@cache
def _all_resources() -> dict[str, list[dict[str, Any]]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(_run, CASES), strict=True))


def test_cases_exist_and_name_known_rules() -> None:
    assert "compliant" in CASES and len(CASES) >= 20
    for case in CASES:
        rule = (CASES_DIR / case / "expected-rule").read_text().strip()
        assert case == "compliant" or rule in BY_NAME, case


@pytest.mark.parametrize("case", CASES)
def test_case_breaks_exactly_its_rule(case: str) -> None:
    expected = (CASES_DIR / case / "expected-rule").read_text().strip()
    cfg_file = CASES_DIR / case / "policy-config.json"
    config = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    resources = _all_resources()[case]
    assert resources, case
    blocking = [v for v in evaluate(resources, config) if v.level == "mandatory"]
    # checkov's checks overlap the hand rules on purpose (a second reading of the same risk)
    failing = sorted({v.rule for v in blocking} - {"kubernetes-checkov"})
    assert failing == ([expected] if expected else []), [(v.rule, v.message) for v in blocking]
