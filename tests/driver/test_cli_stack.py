"""driver.stack.CliStack with the real Pulumi CLI on a throwaway project and file backend:
a step is two CLI processes (config set, up --json) and the outputs come from the update's
own engine events. Needs the toolchain (a missing CLI fails with a message)."""

from __future__ import annotations

from pathlib import Path

from driver.stack import CliStack
from tests.toolchain import toolchain_env

PROGRAM = """\
import pulumi
cfg = pulumi.Config("claude-enhancer")
rollout = cfg.get_object("rollout") or {}
pulumi.export("rolloutPhase", int(rollout.get("phase", 0)))
pulumi.export("trafficTargets", {"stable": {"destination": {"destination_version": "5.0.3"}}})
"""


def test_step_is_config_set_plus_one_up(tmp_path: Path) -> None:
    env = toolchain_env()
    venv = str(Path(env["CE_PYTHON"]).parent.parent)
    (tmp_path / "Pulumi.yaml").write_text(
        "name: claude-enhancer\nstackConfigDir: stacks\n"
        f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    )
    (tmp_path / "__main__.py").write_text(PROGRAM)
    (tmp_path / "stacks").mkdir()
    state = tmp_path / "state"
    state.mkdir()
    env.update(PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="test")
    s = CliStack("t", tmp_path, env=env)
    s._run("stack", "init")
    calls: list[str] = []
    s.on_call = lambda name, _secs: calls.append(name)
    s.set_phase(1)
    out = s.up(lambda _l: None)
    assert out.outputs["rolloutPhase"] == 1 and out.result == "succeeded"
    assert out.outputs["trafficTargets"]["stable"]["destination"]["destination_version"] == "5.0.3"
    assert calls == ["config set --path", "up --yes --skip-preview"]
    assert s.rollout_config() == {"phase": 1}  # read from the stack file, no CLI process
    assert s.outputs()["rolloutPhase"] == 1 and len(calls) == 2  # cached from the up
