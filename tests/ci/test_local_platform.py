"""ci/local_platform.sh: starts the platform through ./ce and exports only the local stack's settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fake_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "toolchain").mkdir(parents=True)
    (repo / "platform").mkdir()
    for f in ("toolchain/env.sh", "toolchain/versions.env"):
        shutil.copy(ROOT / f, repo / f)
    calls = tmp_path / "calls"
    for script in ("ce", "platform/build.sh"):
        path = repo / script
        path.write_text(f'#!/usr/bin/env bash\necho "{script} $*" >> "{calls}"\n')
        path.chmod(0o755)
    return repo


def test_starts_the_platform_and_exports_the_local_backend(tmp_path: Path) -> None:
    repo = fake_repo(tmp_path)
    gh_env = tmp_path / "github_env"
    home = tmp_path / "ce-home"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CE_REPO": str(repo),
        "CE_HOME": str(home),
        "GITHUB_ENV": str(gh_env),
    }
    r = subprocess.run(
        ["bash", str(ROOT / "ci" / "local_platform.sh")], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "ce platform up" in calls
    exported = dict(line.split("=", 1) for line in gh_env.read_text().splitlines())
    assert exported == {
        "PULUMI_BACKEND_URL": f"file://{home}/state",
        "PULUMI_CONFIG_PASSPHRASE": "ce-local-passphrase",
        "KUBECONFIG": f"{home}/platform/kubeconfig",
        "VAULT_ADDR": "http://127.0.0.1:8200",
    }
