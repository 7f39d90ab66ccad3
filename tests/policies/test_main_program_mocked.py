"""The main program's stacks pass the pack (program run under Pulumi mocks, no CLI).

The real-engine version is tests/integration/test_policy_preview.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policies.engine import evaluate
from policies.pack_config import build_config

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.split(".")[1] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.skipif(not (ROOT / "__main__.py").is_file(), reason="main program not present")
@pytest.mark.parametrize("stack", STACKS)
def test_main_program_stack_passes_the_pack(stack: str) -> None:
    env = {
        **os.environ,
        "VAULT_TOKEN": os.environ.get("VAULT_TOKEN", "mock-token"),
        "CE_POSTGRES_ADMIN_PASSWORD": os.environ.get("CE_POSTGRES_ADMIN_PASSWORD", "mock-password"),
        # staging/prod: edge TLS and backup credentials come from secret config or these
        **{
            k: os.environ.get(k, f"mock-{k.lower()}")
            for k in (
                "CE_TLS_CERTIFICATE",
                "CE_TLS_PRIVATE_KEY",
                "CE_BACKUP_S3_ACCESS_KEY_ID",
                "CE_BACKUP_S3_SECRET_ACCESS_KEY",
            )
        },
    }
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "noncompliant" / "_mockrun.py"), str(ROOT), stack],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    resources = json.loads(r.stdout)
    assert len(resources) > 20
    config = build_config(environment="prod" if stack == "prod" else stack)
    violations = [(v.rule, v.resource_name, v.message) for v in evaluate(resources, config)]
    assert violations == []
