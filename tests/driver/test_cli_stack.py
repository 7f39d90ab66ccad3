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


def _project(tmp_path: Path, program: str) -> CliStack:
    """A throwaway project running ``program`` on a file backend, its stack ``t`` created."""
    env = toolchain_env()
    venv = str(Path(env["CE_PYTHON"]).parent.parent)
    (tmp_path / "Pulumi.yaml").write_text(
        "name: claude-enhancer\nstackConfigDir: stacks\n"
        f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    )
    (tmp_path / "__main__.py").write_text(program)
    (tmp_path / "stacks").mkdir()
    state = tmp_path / "state"
    state.mkdir()
    env.update(PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="test")
    s = CliStack("t", tmp_path, env=env)
    s._run("stack", "init")
    return s


def test_step_is_config_set_plus_one_up(tmp_path: Path) -> None:
    s = _project(tmp_path, PROGRAM)
    calls: list[str] = []
    s.on_call = lambda name, _secs: calls.append(name)
    s.set_phase(1)
    out = s.up(lambda _l: None)
    assert out.outputs["rolloutPhase"] == 1 and out.result == "succeeded"
    assert out.outputs["trafficTargets"]["stable"]["destination"]["destination_version"] == "5.0.3"
    assert calls == ["config set --path", "up --yes --skip-preview"]
    assert s.rollout_config() == {"phase": 1}  # read from the stack file, no CLI process
    assert s.outputs()["rolloutPhase"] == 1 and len(calls) == 2  # cached from the up


STEP_PROGRAM = """\
import pulumi
cfg = pulumi.Config("claude-enhancer")
rollout = cfg.get_object("rollout") or {}

class VirtualService(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("test:index:VirtualService", name, None, None)
        self.register_outputs({})

VirtualService("virtual-service")
pulumi.export("rolloutPhase", int(rollout.get("phase", 0)))
"""


def test_a_step_targets_its_resources_only_when_nothing_else_changed(tmp_path: Path) -> None:
    """After this runner's own `up`, a change of the phase alone is a targeted step; any
    other change since (a program file, another config key, an update by someone else) makes
    it a full `up` again, so a targeted step never leaves drift behind."""
    s = _project(tmp_path, STEP_PROGRAM)
    main = tmp_path / "__main__.py"
    quiet = lambda _l: None  # noqa: E731
    assert s.step_targets() is None  # no `up` of this runner yet
    s.set_phase(0)
    s.up(quiet)
    targets = s.step_targets()
    assert targets is not None and [t.rsplit("::", 1)[-1] for t in targets] == [
        "claude-enhancer-t",
        "virtual-service",
    ]
    s.set_phase(1)
    assert s.step_targets() == targets  # the phase alone changed
    assert s.up(quiet, targets=targets).outputs["rolloutPhase"] == 1
    assert s.step_targets() == targets  # still converged after a targeted step

    main.write_text(STEP_PROGRAM + "# changed\n")
    assert s.step_targets() is None  # a program file changed
    main.write_text(STEP_PROGRAM)
    assert s.step_targets() == targets

    s.set_config_value("claude-enhancer:app.replicas", "3")
    assert s.step_targets() is None  # another config key changed
    s.up(quiet)
    assert s.step_targets() == targets

    s._run("refresh", "--yes", "--skip-preview")
    assert s.step_targets() is None  # the state changed outside this runner


def test_outputs_follow_an_up_by_another_process(tmp_path: Path) -> None:
    """`status --watch` (one process) while the controller (another) steps: the watcher's
    outputs follow the backend's checkpoint instead of staying as first read."""
    controller = _project(tmp_path, PROGRAM)
    controller.set_phase(1)
    controller.up(lambda _l: None)
    watcher = CliStack("t", tmp_path, env=controller.env)
    assert watcher.outputs()["rolloutPhase"] == 1
    calls: list[str] = []
    watcher.on_call = lambda name, _secs: calls.append(name)
    assert watcher.outputs()["rolloutPhase"] == 1 and calls == []  # unchanged: no CLI call
    controller.set_phase(2)
    controller.up(lambda _l: None)
    assert watcher.outputs()["rolloutPhase"] == 2
