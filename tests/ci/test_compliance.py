"""ci.compliance: the report comes from the engine's policy events, the digest is kept for the diff."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from ci import compliance, policy_config
from tests.ci.test_policy_config import VS, vs_at

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def digest_at(phase: int) -> str:
    """A preview digest as the CLI writes it: only the resources that change are listed."""
    urn = f"urn:pulumi:staging::claude-enhancer::{VS}::api"
    inputs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "api", "namespace": "claude-enhancer"},
    }
    inputs["spec"] = vs_at(phase)
    dep_urn = f"urn:pulumi:staging::claude-enhancer::{DEPLOYMENT}::api-green"
    dep = {
        "metadata": {"name": "api-green", "namespace": "claude-enhancer"},
        "spec": {"replicas": 2},
    }
    steps = [
        {"op": "update", "urn": urn, "newState": {"type": VS, "urn": urn, "inputs": inputs}},
        {
            "op": "update",
            "urn": dep_urn,
            "newState": {"type": DEPLOYMENT, "urn": dep_urn, "inputs": dep},
        },
    ]
    return json.dumps({"steps": steps, "changeSummary": {"update": 2, "same": 60}})


def policy_event(rule: str, message: str) -> str:
    urn = f"urn:pulumi:staging::claude-enhancer::{VS}::api"
    event = {
        "policyPackName": "claude-enhancer-policies",
        "policyName": rule,
        "resourceUrn": urn,
        "message": message,
        "enforcementLevel": "mandatory",
    }
    return json.dumps({"sequence": 7, "policyEvent": event})


def run(
    tmp_path: Path,
    code: int,
    events: list[str],
    stdout: str = "",
    stderr: str = "",
    state: str | None = None,
) -> tuple[int, Path, list[list[str]]]:
    config = tmp_path / "pack-config.json"
    config.write_text(json.dumps(policy_config.policy_config_for_deployed_phase(1, "staging")))
    seen: list[list[str]] = []

    def engine(cmd: Sequence[str]) -> tuple[int, str, str]:
        if cmd[1:3] == ["stack", "export"]:  # the deployed state (None: never deployed)
            return (0, state, "") if state is not None else (255, "", "error: no stack")
        seen.append(list(cmd))
        log = Path(cmd[cmd.index("--event-log") + 1])
        # like the engine: a resourcePreEvent for every step the run registered
        steps = json.loads(stdout)["steps"] if stdout else []
        pre = [
            json.dumps(
                {
                    "resourcePreEvent": {
                        "metadata": {
                            "urn": st["urn"],
                            "op": st["op"],
                            "type": st["newState"]["type"],
                        }
                    }
                }
            )
            for st in steps
        ]
        log.write_text(
            "".join(e + "\n" for e in ['{"sequence": 0, "preludeEvent": {}}', *pre, *events])
        )
        return code, stdout, stderr

    out = tmp_path / "reports"
    argv = ["--stack", "staging", "--config", str(config), "--out-dir", str(out), "--run-id", "77"]
    return compliance.main(argv, runner=engine), out, seen


def status(out: Path, rule: str) -> str:
    report = json.loads((out / "compliance-report.json").read_text())
    return str(next(r["status"] for r in report["rules"] if r["name"] == rule))


def test_the_preview_runs_the_pack_with_the_enforcing_config(tmp_path: Path) -> None:
    _, out, seen = run(tmp_path, 0, [], digest_at(2))
    [cmd] = seen
    assert cmd[:6] == ["pulumi", "preview", "--json", "--non-interactive", "--stack", "staging"]
    assert cmd[cmd.index("--policy-pack") + 1] == "policies"
    assert cmd[cmd.index("--policy-pack-config") + 1] == str(tmp_path / "pack-config.json")
    assert json.loads((out / "preview.json").read_text())["changeSummary"]["update"] == 2


def test_engine_violations_fail_their_rule(tmp_path: Path) -> None:
    skip = policy_event("rollout-phase-step", "rollout phase jumps from 1 (5%) to 3 (50%)")
    code, out, _ = run(tmp_path, 255, [skip], digest_at(3))
    assert code == 0
    assert status(out, "rollout-phase-step") == "fail"
    assert (
        "rollout phase jumps from 1 (5%) to 3 (50%)" in (out / "compliance-report.md").read_text()
    )


def test_unchanged_resources_are_not_reported_missing(tmp_path: Path) -> None:
    # The digest lists a Deployment but not the (unchanged) default-deny NetworkPolicy; the
    # engine saw the whole stack and reported nothing: the report must not invent a violation.
    code, out, _ = run(tmp_path, 0, [], digest_at(2))
    assert code == 0
    assert status(out, "default-deny-networkpolicy") == "pass"
    assert json.loads((out / "compliance-report.json").read_text())["summary"]["failed"] == 0


def test_resources_the_stack_holds_but_the_run_never_judged_are_not_evaluated(
    tmp_path: Path,
) -> None:
    urn = "urn:pulumi:staging::claude-enhancer::kubernetes:core/v1:Secret::never-seen"
    state = json.dumps(
        {"deployment": {"resources": [{"urn": urn, "type": "kubernetes:core/v1:Secret"}]}}
    )
    _, out, _ = run(tmp_path, 0, [], digest_at(2), state=state)
    assert (out / "state.json").is_file()
    assert "NOT EVALUATED" in (out / "compliance-report.md").read_text()


def test_a_failure_the_pack_did_not_cause_gives_no_report(tmp_path: Path) -> None:
    code, out, _ = run(
        tmp_path, 255, [], "", "error: program failed: claude-enhancer:app.replicas\n"
    )
    assert code == 1
    md = (out / "compliance-report.md").read_text()
    assert "No compliance report" in md and "claude-enhancer:app.replicas" in md
    assert not (out / "compliance-report.json").exists()
    assert not (out / "preview.json").exists()


def test_the_real_runner_enables_the_event_log_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pulumi registers --event-log only when PULUMI_DEBUG_COMMANDS is set ("unknown flag" otherwise).
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(
        '#!/usr/bin/env bash\n[ "$PULUMI_DEBUG_COMMANDS" = true ] || { echo "error: unknown flag: --event-log" >&2; exit 1; }\n'
        "echo ok\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.delenv("PULUMI_DEBUG_COMMANDS", raising=False)
    assert compliance.run(compliance.preview_command("local", "c.json", "e.jsonl")) == (
        0,
        "ok\n",
        "",
    )
