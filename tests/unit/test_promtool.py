"""promtool check/test of monitoring/rules.yaml (Debian package `prometheus`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.unit.conftest import ROOT

MON = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None and os.environ.get("CE_REQUIRE_PROMTOOL") != "1",
    reason="promtool not installed (apt-get install prometheus)",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is required (CE_REQUIRE_PROMTOOL=1)"
    return subprocess.run(
        [PROMTOOL, *args], cwd=MON, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules() -> None:
    r = _run("check", "rules", "rules.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_promtool_test_rules() -> None:
    r = _run("test", "rules", "rules_test.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
