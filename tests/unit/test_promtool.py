"""promtool check/test of the rule files (Debian package `prometheus`)."""

from __future__ import annotations

import shutil
import subprocess

from components.alerting import RULE_FILES
from tests.unit.conftest import ROOT

MON = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")
TEST_FILES = ("rules_test.yaml", "slo_test.yaml", "escalation_test.yaml")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, (
        "promtool not found on PATH: the platform part `telemetry` installs Debian's prometheus (./ce bootstrap)"
    )
    return subprocess.run(
        [PROMTOOL, *args], cwd=MON, capture_output=True, text=True, timeout=300, check=False
    )


def test_promtool_check_rules() -> None:
    r = _run("check", "rules", *(f.name for f in RULE_FILES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_test_rules() -> None:
    r = _run("test", "rules", *TEST_FILES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(TEST_FILES)
