"""`./ce up` hands `pulumi up` the secrets of the platform it has just started (issue 22).

On a fresh machine `./ce up` built every tool, started the platform, then stopped at `pulumi up`:
`vault:token: missing Vault token`. `ce` had sourced toolchain/env.sh, which exports the
platform's secrets from the files `platform/local.sh up` writes, before the platform existed.
Every warm machine had the files from an earlier run. Here the real `ce` and env.sh run with
stand-ins for the bootstrap, the platform (it writes the secret files, as local.sh does) and the
CLI (it records the environment `up` ran in), from a CE_HOME where nothing exists yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_LOCAL_SH = """#!/usr/bin/env bash
set -eu
P="$CE_HOME/platform"; mkdir -p "$P"
echo tok-from-platform >"$P/vault-token"
echo pg-from-platform >"$P/postgres-vault-password"
echo redis-from-platform >"$P/redis-admin-password"
"""
FAKE_PULUMI = """#!/usr/bin/env bash
case "$1" in
  up) printf 'VAULT_TOKEN=%s\\nPG=%s\\nREDIS=%s\\n' "${VAULT_TOKEN:-}" \
        "${CE_POSTGRES_ADMIN_PASSWORD:-}" "${CE_REDIS_ADMIN_PASSWORD:-}" >"$CE_HOME/up-env" ;;
esac
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def test_ce_up_exports_the_secrets_the_platform_writes(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "ce-home"
    (repo / "toolchain").mkdir(parents=True)
    shutil.copy(ROOT / "ce", repo / "ce")
    for f in ("env.sh", "versions.env"):
        shutil.copy(ROOT / "toolchain" / f, repo / "toolchain" / f)
    _executable(repo / "toolchain" / "bootstrap.sh", "#!/usr/bin/env bash\nexit 0\n")
    _executable(repo / "platform" / "local.sh", FAKE_LOCAL_SH)
    version = next(
        line.split("=", 1)[1]
        for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines()
        if line.startswith("PULUMI_VERSION=")
    )
    _executable(home / "tools" / f"pulumi-v{version}" / "bin" / "pulumi", FAKE_PULUMI)
    _executable(home / "venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")  # the rotator's step
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CE_HOME": str(home)}
    r = subprocess.run(
        ["bash", str(repo / "ce"), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home / "up-env").read_text().split() == [
        "VAULT_TOKEN=tok-from-platform",
        "PG=pg-from-platform",
        "REDIS=redis-from-platform",
    ]
