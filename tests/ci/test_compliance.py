"""ci.compliance: the JSON preview is kept for the comment and the report uses the enforcing config."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ci import compliance, policy_config
from tests.ci.test_policy_config import VS, weighted_vs


def digest_at(phase: int) -> str:
    urn = f"urn:pulumi:staging::claude-enhancer::{VS}::api"
    inputs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "api"},
    }
    inputs.update(weighted_vs(phase))
    step = {"op": "update", "urn": urn, "newState": {"type": VS, "urn": urn, "inputs": inputs}}
    return json.dumps({"steps": [step], "changeSummary": {"update": 1}})


def run(
    tmp_path: Path, deployed: int, code: int, stdout: str, stderr: str = ""
) -> tuple[int, Path, list[list[str]]]:
    config = tmp_path / "pack-config.json"
    config.write_text(
        json.dumps(policy_config.policy_config_for_deployed_phase(deployed, "staging"))
    )
    seen: list[list[str]] = []

    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(cmd))
        return code, stdout, stderr

    out = tmp_path / "reports"
    argv = [
        "--stack",
        "staging",
        "--config",
        str(config),
        "--out-dir",
        str(out),
        "--run-id",
        "77-abc",
    ]
    return compliance.main(argv, runner=runner), out, seen


def rule_status(out: Path, name: str) -> str:
    report = json.loads((out / "compliance-report.json").read_text())
    return str(next(r["status"] for r in report["rules"] if r["name"] == name))


@pytest.mark.parametrize(("deployed", "status"), [(1, "fail"), (2, "pass")])
def test_report_judges_with_the_deployed_phase(tmp_path: Path, deployed: int, status: str) -> None:
    code, out, seen = run(tmp_path, deployed, 0, digest_at(3))
    assert code == 0
    assert seen == [["pulumi", "preview", "--json", "--non-interactive", "--stack", "staging"]]
    assert json.loads((out / "preview.json").read_text())["changeSummary"] == {"update": 1}
    assert rule_status(out, "rollout-phase-step") == status
    assert "77-abc" in (out / "compliance-report.json").read_text()
    assert (out / "compliance-report.md").read_text().startswith("#")


def test_a_preview_without_a_digest_is_said_where_the_report_would_be(tmp_path: Path) -> None:
    code, out, _ = run(
        tmp_path, 0, 255, "", "error: program failed: settings: claude-enhancer:app.replicas\n"
    )
    assert code == 1
    md = (out / "compliance-report.md").read_text()
    assert "No compliance report" in md and "claude-enhancer:app.replicas" in md
    assert not (out / "preview.json").exists()
