"""A user's mistake in the stack config is one line from `pulumi preview`, never a traceback.

The real CLI and language host run the program from a copy of the project (its stack file is
the only thing changed, and the backend is a temporary directory), so the shared `local` stack
and the platform are not touched: the program stops in its settings, before any resource.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.toolchain import toolchain_env

ROOT = Path(__file__).resolve().parents[2]


def _preview_with(tmp_path: Path, key: str, value: object) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    project.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"stacks", ".git", "tests"}:
            (project / entry.name).symlink_to(entry)
    (project / "stacks").mkdir()
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
    doc["config"][key] = value
    (project / "stacks" / "Pulumi.local.yaml").write_text(yaml.safe_dump(doc))
    env = toolchain_env()
    env["PULUMI_BACKEND_URL"] = f"file://{tmp_path / 'state'}"
    (tmp_path / "state").mkdir()
    run = {"cwd": project, "env": env, "capture_output": True, "text": True, "timeout": 300}
    subprocess.run(["pulumi", "stack", "init", "local"], check=True, **run)  # type: ignore[call-overload]
    return subprocess.run(["pulumi", "preview", "--stack", "local"], **run)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "claude-enhancer:rollout",
            {"phase": 7},
            "claude-enhancer:rollout.phase: unknown phase 7 (phases are 0..4)",
        ),
        ("claude-enhancer:rolloutt", {}, "claude-enhancer:rolloutt: unknown setting"),
    ],
    ids=["bad-phase", "unknown-key"],
)
def test_a_config_mistake_is_one_line(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    r = _preview_with(tmp_path, key, value)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert message in out, out[-3000:]
    assert "Traceback" not in out and 'File "' not in out, out[-3000:]
    assert "unhandled exception" not in out, out[-3000:]
