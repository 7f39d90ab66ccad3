"""ci.policy_config: the deployed rollout phase (from the stack's state) -> the pack config CI passes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ci import policy_config
from ci.stacks import STACKS
from components.mesh import virtual_service_spec
from components.settings import MeshSettings
from components.state import Runner
from policies.lib.props import plain
from policies.rules import prod_replicas, rollout_phase_step
from rollout import phases as rollout

VS = "kubernetes:networking.istio.io/v1:VirtualService"
MESH = MeshSettings(
    host="ce.example",
    tls_credential_name="ce-tls",
    hsts_max_age=31536000,
    root_namespace="istio-system",
    manage_root_namespace=False,
    session_cookie="ce-track",
    cookie_ttl_seconds=3600,
    ingress_service_account="istio-ingressgateway",
)


def fake_pulumi(code: int, stdout: str = "", stderr: str = "") -> tuple[list[list[str]], Runner]:
    seen: list[list[str]] = []

    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(cmd))
        return code, stdout, stderr

    return seen, runner


@pytest.fixture(autouse=True)
def _summary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)


def write_config(tmp_path: Path, stack: str, runner: Runner) -> dict:
    out = tmp_path / "pack-config.json"
    assert policy_config.main(["--stack", stack, "--output", str(out)], runner=runner) == 0
    cfg: dict = json.loads(out.read_text())
    return cfg


def vs_at(phase: int) -> dict:
    """The VirtualService the program renders at ``phase`` (its own pure builder)."""
    spec: dict = plain(
        virtual_service_spec(rollout.weights_for(phase), MESH, "claude-enhancer", "ce-gateway")
    )
    return spec


def test_reads_the_deployed_phase_from_the_stack_outputs(tmp_path: Path) -> None:
    seen, runner = fake_pulumi(0, json.dumps({"rolloutPhase": 2, "canaryWeight": 20}))
    cfg = write_config(tmp_path, "prod", runner)
    assert seen == [["pulumi", "stack", "output", "--json", "--stack", "prod"]]
    assert cfg["rollout-phase-step"]["previousPhase"] == 2
    assert cfg["prod-min-replicas"]["environment"] == "prod"
    assert "deployed rollout phase **2**" in (tmp_path / "summary.md").read_text()


TRANSITIONS = [(1, 2, False), (1, 3, True), (2, 3, False), (3, 0, False), (0, 2, True)]


@pytest.mark.parametrize(("deployed", "next_phase", "blocked"), TRANSITIONS)
def test_the_config_makes_the_rollout_rule_judge_from_the_deployed_phase(
    tmp_path: Path, deployed: int, next_phase: int, blocked: bool
) -> None:
    _, runner = fake_pulumi(0, json.dumps({"rolloutPhase": deployed}))
    cfg = write_config(tmp_path, "staging", runner)
    # the program's whole VirtualService: sticky routes first, then the weighted split
    violations = rollout_phase_step.check(
        VS, {"spec": vs_at(next_phase)}, cfg["rollout-phase-step"]
    )
    assert bool(violations) is blocked, violations


def test_a_stack_never_deployed_has_no_previous_phase(tmp_path: Path) -> None:
    _, runner = fake_pulumi(255, "", "error: no stack named 'local' found\n")
    cfg = write_config(tmp_path, "local", runner)
    assert "previousPhase" not in cfg["rollout-phase-step"]
    assert rollout_phase_step.check(VS, {"spec": vs_at(4)}, cfg["rollout-phase-step"]) == []
    assert "none (never deployed)" in (tmp_path / "summary.md").read_text()


def test_only_prod_is_a_production_environment() -> None:
    for stack, enforced in (("local", False), ("staging", False), ("prod", True)):
        cfg = policy_config.policy_config_for_deployed_phase(None, STACKS[stack].environment)
        env = cfg["prod-min-replicas"]["environment"]
        assert (
            env in prod_replicas.RULE.resolve_config(cfg["prod-min-replicas"])["prodEnvironments"]
        ) is enforced


def test_unreadable_state_fails_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, runner = fake_pulumi(255, "", "error: 401 Unauthorized\n")
    out = tmp_path / "c.json"
    assert policy_config.main(["--stack", "prod", "--output", str(out)], runner=runner) == 1
    assert not out.exists()
    assert "401 Unauthorized" in capsys.readouterr().err
