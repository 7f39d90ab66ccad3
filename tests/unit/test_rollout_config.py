"""rollout.config: the only parser of claude-enhancer:rollout; rollout.phases: the one table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rollout import config, phases

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_table() -> None:
    c = config.parse(None)
    assert c.phase == 0 and c.phase_weights == (0, 5, 20, 50, 100)
    assert dict(c.bake_minutes) == {1: 30, 2: 45, 3: 30, 4: 15}
    assert c.interval_s == 15.0 and c.bake_seconds(2) == 2700 and c.bake_seconds(0) == 0


def test_spec_failure_actions_and_deciders() -> None:
    acts = [p.on_failure for p in phases.PHASES]
    assert acts[:4] == [
        phases.FailureAction.REFUSE,
        phases.FailureAction.ROLLBACK,
        phases.FailureAction.PAUSE,
        phases.FailureAction.HOLD,
    ]
    assert phases.DECIDERS == {
        0: "deployment-commander",
        1: "tech-lead",
        2: "sre",
        3: "product-owner",
    }
    assert phases.phase(0).judged_track == "stable"
    assert all(p.judged_track == "canary" for p in phases.PHASES[1:])
    assert all(set(phases.HARD_CHECKS) <= set(p.gate_profile) for p in phases.PHASES)


def test_json_string_and_path_set_strings() -> None:
    c = config.parse('{"phase": "2", "bakeMinutes": {"1": 0.5}, "allowSkip": "true"}')
    assert (c.phase, c.bake_minutes[1], c.bake_minutes[2], c.allow_skip) == (2, 0.5, 45, True)


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        ({"phase": 7}, "claude-enhancer:rollout.phase: unknown phase 7"),
        ({"phase": "x"}, "claude-enhancer:rollout.phase: must be an integer 0..4"),
        ({"phaseWeights": [0, 5, 100]}, "claude-enhancer:rollout.phaseWeights: "),
        ({"bakeMinutes": {"5": 1}}, "claude-enhancer:rollout.bakeMinutes.5: unknown phase"),
        ({"bakeMinutes": {"1": -1}}, "claude-enhancer:rollout.bakeMinutes.1: must be >= 0"),
        ({"gate": {"window": "x"}}, "claude-enhancer:rollout.gate: gate.window"),
        ({"intervalSeconds": 0}, "claude-enhancer:rollout.intervalSeconds: must be > 0"),
        ({"phaseWieghts": []}, "claude-enhancer:rollout.phaseWieghts: unknown setting"),
    ],
)
def test_errors_name_the_key(raw: dict[str, object], msg: str) -> None:
    with pytest.raises(config.RolloutConfigError) as e:
        config.parse(raw)
    assert str(e.value).startswith(msg), str(e.value)


def test_step_uses_configured_weights() -> None:
    c = config.parse({"phase": 1, "phaseWeights": [0, 50, 60, 80, 100]})
    assert c.step(4) == phases.Step(1, phases.Weights(50, 50), 2)
    assert config.parse({"phase": 1}).step(4).canary_replicas == 2  # issue 23: floor 2 (was 1)


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from components import preflight` imports components.preflight too
            mods |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return mods


def test_rollout_package_is_pure_and_components_never_import_the_driver() -> None:
    for f in (ROOT / "rollout").glob("*.py"):
        bad = {m for m in _imports(f) if m.split(".")[0] in ("pulumi", "components", "driver")}
        assert not bad, f"{f.name} imports {bad}"
    for f in (ROOT / "components").rglob("*.py"):
        assert not {m for m in _imports(f) if m.split(".")[0] == "driver"}, f.name


def test_one_parser_of_the_rollout_key() -> None:
    """Nothing but rollout/config.py reads the rollout config's keys."""
    offenders = []
    for f in [*ROOT.glob("components/**/*.py"), *ROOT.glob("driver/*.py")]:
        if re.search(
            r'(get\w*\(|\[)\s*"(phaseWeights|bakeMinutes|allowSkip|intervalSeconds)"', f.read_text()
        ):
            offenders.append(f.name)
    assert offenders == []


def test_stack_files_carry_only_overrides() -> None:
    for name in ("staging", "prod"):
        text = (ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text()
        assert "phaseWeights" not in text and "bakeMinutes" not in text
