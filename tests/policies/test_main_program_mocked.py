"""The main program's stacks pass the pack (program run under Pulumi mocks, no CLI).

The real-engine version is tests/integration/test_policy_preview.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policies.engine import evaluate
from policies.pack_config import build_config

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.split(".")[1] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def mock_resources(stack: str, overlay: dict[str, object] | None = None) -> list[dict[str, object]]:
    env = {
        **os.environ,
        "VAULT_TOKEN": os.environ.get("VAULT_TOKEN", "mock-token"),
        "CE_POSTGRES_ADMIN_PASSWORD": os.environ.get("CE_POSTGRES_ADMIN_PASSWORD", "mock-password"),
        "CE_MOCKRUN_CONFIG": json.dumps(overlay or {}),
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
    return list(resources)


def with_digests(stack: str) -> dict[str, object]:
    """The stack's app config with a (synthetic) digest for every service image it deploys."""
    app = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"][
        "claude-enhancer:app"
    ]
    for name, svc in app["services"].items():
        svc["digests"] = {
            v: "sha256:" + hashlib.sha256(f"{name}:{v}".encode()).hexdigest()
            for v in (app["stableVersion"], app["canaryVersion"])
        }
    vault = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"][
        "claude-enhancer:vault"
    ]
    vault.setdefault("redis", {})["rotatorImageDigest"] = (
        "sha256:" + hashlib.sha256(b"redis-rotator").hexdigest()
    )
    return {"claude-enhancer:app": app, "claude-enhancer:vault": vault}


@pytest.mark.skipif(not (ROOT / "__main__.py").is_file(), reason="main program not present")
@pytest.mark.parametrize("stack", STACKS)
def test_main_program_stack_passes_the_pack(stack: str) -> None:
    config = build_config(environment="prod" if stack == "prod" else stack)
    resources = mock_resources(stack, with_digests(stack) if stack == "prod" else None)
    violations = [
        (v.rule, v.resource_name, v.message)
        for v in evaluate(resources, config)
        if v.level == "mandatory"
    ]
    assert violations == []


def test_prod_requires_image_digests() -> None:
    """Production pack config refuses tag-only images: each of the 6 Deployments and the
    Redis rotator's CronJob is named."""
    resources = mock_resources("prod")
    violations = [
        v for v in evaluate(resources, build_config(environment="prod")) if v.level == "mandatory"
    ]
    assert {v.rule for v in violations} == {"image-provenance"}
    workloads = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:CronJob")
    assert sorted(v.resource_name for v in violations) == sorted(
        r["name"] for r in resources if r["type"] in workloads
    )
    assert len(violations) == 7
    assert all("must be pinned by digest" in v.message for v in violations)
