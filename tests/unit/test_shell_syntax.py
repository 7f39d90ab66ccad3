"""Every shell script parses (`bash -n`): a merge that drops a brace must fail here, in seconds,
not when a fresh machine first runs the script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    {
        *ROOT.glob("toolchain/*.sh"),
        *ROOT.glob("platform/*.sh"),
        *ROOT.glob("ci/*.sh"),
        ROOT / "ce",
        ROOT / ".ci" / "run",
    }
)


def test_the_scripts_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    assert {"ce", "toolchain/bootstrap.sh", "platform/build.sh", "platform/local.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_script_parses(script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
