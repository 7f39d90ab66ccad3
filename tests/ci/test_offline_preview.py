"""ci/offline_preview.sh with a fake source-built `pulumi`: same config, pack and report as on GitHub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ci.test_compliance import digest_at
from tests.ci.test_workflows import VERSIONS

ROOT = Path(__file__).resolve().parents[2]

FAKE_PULUMI = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "stack select"*) exit 0 ;;
  "stack output --json --stack local") echo '{"rolloutPhase": 1}' ;;
  "preview --json"*)
    args="$*"; log=${args##*--event-log }
    printf '%s\n' '{"policyEvent": {"policyName": "rollout-phase-step", "resourceUrn": "urn:x", "message": "jump 1 -> 3"}}' > "$log"
    cat "$FAKE_DIGEST"; exit 255 ;;
  "preview --non-interactive --diff"*) printf 'Policies:\\n    x claude-enhancer-guardrails\\n'; exit 255 ;;
  *) echo "fake pulumi: unexpected $*" >&2; exit 99 ;;
esac
"""


def test_offline_preview_runs_the_pack_with_the_deployed_phase_config(tmp_path: Path) -> None:
    ce_home = tmp_path / "ce"
    bin_dir = ce_home / "tools" / f"pulumi-v{VERSIONS['PULUMI_VERSION'].strip()}" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    venv_bin = ce_home / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv_bin / "python").chmod(0o755)
    digest = tmp_path / "digest.json"
    digest.write_text(digest_at(3))  # phase 3 previewed after phase 1 was deployed: a skip
    out = tmp_path / "reports"
    log = tmp_path / "pulumi.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CE_HOME": str(ce_home),
        "CE_REPORT_DIR": str(out),
        "FAKE_LOG": str(log),
        "FAKE_DIGEST": str(digest),
    }
    r = subprocess.run(
        ["bash", str(ROOT / "ci" / "offline_preview.sh"), "local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 255, r.stdout + r.stderr  # the preview's status
    config = json.loads((out / "pack-config.json").read_text())
    assert config["rollout-phase-step"]["previousPhase"] == 1
    calls = log.read_text().splitlines()
    preview = next(c for c in calls if c.startswith("preview --non-interactive --diff"))
    assert f"--policy-pack policies --policy-pack-config {out}/pack-config.json" in preview
    assert "Policies:" in (out / "preview.txt").read_text()
    report = json.loads((out / "compliance-report.json").read_text())
    [rule] = [x for x in report["rules"] if x["name"] == "rollout-phase-step"]
    assert rule["status"] == "fail"
