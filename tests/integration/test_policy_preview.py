"""`pulumi preview --policy-pack policies` against the non-compliant programs and the main program.

Needs the Pulumi CLI from toolchain/bootstrap.sh (found through toolchain/env.sh).
A missing `pulumi` binary is a FAILURE, not a skip: CI must not go green
without having run the pack through the real engine.

Each tests/noncompliant/<case> is copied to a temp dir with a throw-away file
backend, so nothing in the repo or the user's state is touched; its preview must
be blocked (non-zero exit) naming the case's rule from `expected-rule`. The
`compliant` case and the main program's `local` stack must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.toolchain import pulumi_bin, toolchain_env

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "tests" / "noncompliant"
POLICY_PACK = ROOT / "policies"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "Pulumi.yaml").is_file())
TIMEOUT = int(os.environ.get("CE_PREVIEW_TIMEOUT", "600"))


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pulumi_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def test_pulumi_cli_available() -> None:
    out = subprocess.run(
        [pulumi_bin(), "version"], capture_output=True, text=True, env=toolchain_env(), check=True
    )
    assert out.stdout.strip().startswith("v3.")


@pytest.mark.parametrize("case", CASES)
def test_noncompliant_program_is_blocked(case: str, tmp_path: Path) -> None:
    work = tmp_path / case
    shutil.copytree(CASES_DIR / case, work)
    shutil.copy(CASES_DIR / "_common.py", tmp_path / "_common.py")
    backend = tmp_path / "state"
    backend.mkdir()
    # the cases render YAML offline (renderYamlToDirectory), which refuses a kubeconfig
    env = {k: v for k, v in toolchain_env().items() if k != "KUBECONFIG"}
    env.update({"PULUMI_BACKEND_URL": f"file://{backend}", "PULUMI_CONFIG_PASSPHRASE": "nc"})
    init = run(["stack", "init", "nc", "--non-interactive"], work, env)
    assert init.returncode == 0, init.stdout + init.stderr
    args = ["preview", "--non-interactive", "--stack", "nc", "--policy-pack", str(POLICY_PACK)]
    cfg = work / "policy-config.json"
    if cfg.is_file():
        args += ["--policy-pack-config", str(cfg)]
    res = run(args, work, env)
    output = res.stdout + res.stderr
    expected = (work / "expected-rule").read_text().strip()
    if not expected:
        assert res.returncode == 0, f"compliant program was blocked:\n{output[-6000:]}"
        assert "mandatory" not in output.lower(), output[-6000:]
        return
    assert res.returncode != 0, f"{case}: preview was not blocked:\n{output[-6000:]}"
    assert expected in output, f"{case}: rule {expected!r} not named in output:\n{output[-6000:]}"
    assert "mandatory" in output.lower(), output[-6000:]


def test_main_program_local_stack_passes() -> None:
    env = toolchain_env()
    sel = run(["stack", "select", "local", "--non-interactive"], ROOT, env)
    if sel.returncode != 0:
        sel = run(["stack", "init", "local", "--non-interactive"], ROOT, env)
        assert sel.returncode == 0, sel.stdout + sel.stderr
    res = run(
        ["preview", "--non-interactive", "--stack", "local", "--policy-pack", str(POLICY_PACK)],
        ROOT,
        env,
    )
    output = res.stdout + res.stderr
    assert res.returncode == 0, f"main program's local stack failed the pack:\n{output[-8000:]}"
    assert "mandatory" not in output.lower(), output[-8000:]
