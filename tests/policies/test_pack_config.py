"""One channel from a stack to the rollout rules: rollout.config.policy_settings via pack_config."""

from __future__ import annotations

import json

from policies.lib.props import plain
from policies.pack_config import build_config, main
from policies.rules import istio_virtualservice_routing, rollout_phase_step

VS = "kubernetes:networking.istio.io/v1:VirtualService"
HOST = "api.claude-enhancer.svc.cluster.local"


def vs(canary: int) -> dict:
    return plain(
        {
            "spec": {
                "http": [
                    {
                        "route": [
                            {
                                "destination": {"host": HOST, "subset": "stable"},
                                "weight": 100 - canary,
                            },
                            {"destination": {"host": HOST, "subset": "canary"}, "weight": canary},
                        ]
                    }
                ]
            }
        }
    )


def judge(canary: int, cfg: dict) -> list[str]:
    return rollout_phase_step.check(
        VS, vs(canary), cfg["rollout-phase-step"]
    ) + istio_virtualservice_routing.check(VS, vs(canary), cfg["istio-virtualservice-weights"])


def test_the_stacks_phase_weights_and_allow_skip_reach_both_rules() -> None:
    stack = {"phase": 1, "phaseWeights": [0, 10, 25, 50, 100], "allowSkip": False}
    cfg = build_config(
        previous_phase=0, rollout=json.dumps(stack)
    )  # as the engine passes config: JSON
    assert cfg["rollout-phase-step"] == {
        "previousPhase": 0,
        "phaseWeights": [0, 10, 25, 50, 100],
        "allowSkip": False,
    }
    assert judge(10, cfg) == []  # the stack's phase 1
    assert judge(5, cfg)  # the built-in phase 1 is no phase of this stack: an error, not a pass
    assert judge(25, cfg)  # 0 -> 2 skips a phase
    skip = build_config(previous_phase=0, rollout={**stack, "allowSkip": True})
    assert judge(25, skip) == []


def test_defaults_without_a_stack_config() -> None:
    cfg = build_config(previous_phase=None)
    assert cfg["rollout-phase-step"] == {"phaseWeights": [0, 5, 20, 50, 100], "allowSkip": False}


def test_production_environment_ignores_case() -> None:
    for env in ("prod", "Prod", " PRODUCTION "):
        assert build_config(environment=env)["image-provenance"] == {"requireDigest": True}
    assert "image-provenance" not in build_config(environment="staging")


def test_cli_reads_the_stack_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "pc.json"
    assert main(["--stack", "prod", "--previous-phase", "2", "-o", str(out)]) == 0
    cfg = json.loads(out.read_text())
    assert cfg["rollout-phase-step"]["previousPhase"] == 2
    assert (
        cfg["istio-virtualservice-weights"]["phaseWeights"]
        == cfg["rollout-phase-step"]["phaseWeights"]
    )
