"""promtool check/test of monitoring/rules.yaml (Debian package `prometheus`)."""

from __future__ import annotations

import shutil
import subprocess

from tests.unit.conftest import ROOT

MON = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, (
        "promtool not found on PATH: install Debian's prometheus package (toolchain/bootstrap.sh does)"
    )
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
