"""Shared fixtures for tests that run the REAL Pulumi CLI on the local platform.

A missing tool or a platform that is down is a test FAILURE with a message that
says what to run; nothing here is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.toolchain import toolchain_env

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = (
    "Pulumi.yaml",
    "__main__.py",
    "components",
    "stacks",
    "monitoring",
    "requirements.txt",
)


def kubectl_run(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl, whatever it answers (for tests that expect a refusal); ``input`` on stdin."""
    exe = shutil.which("kubectl", path=env.get("PATH")) or str(
        Path(env["CE_TOOLS"]) / f"kubernetes-{env['K8S_VERSION']}" / "bin" / "kubectl"
    )
    return subprocess.run(
        [exe, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )


def kubectl(env: dict[str, str], *args: str) -> str:
    r = kubectl_run(env, *args)
    assert r.returncode == 0, f"kubectl {' '.join(args)} failed: {r.stderr}"
    return r.stdout


def redis_auth_ok(port: int, user: str, password: str) -> bool:
    """Whether ``user`` authenticates on the Redis node at 127.0.0.1:``port`` (a connection
    error is an error, not a refusal)."""
    import redis

    try:
        return bool(
            redis.Redis(port=port, username=user, password=password, socket_timeout=5).ping()
        )
    except redis.AuthenticationError:
        return False


def wait_for(
    what: str, timeout: float, probe: Callable[[], tuple[bool, Any]], every: float = 2
) -> Any:
    """Polls ``probe`` (-> done, what it saw) until done; fails naming ``what`` and the last
    thing seen. Returns what it saw."""
    deadline = time.monotonic() + timeout
    ok, last = probe()
    while not ok and time.monotonic() < deadline:
        time.sleep(every)
        ok, last = probe()
    assert ok, f"{what} not reached after {timeout}s; last seen: {last}"
    return last


def kubectl_json(env: dict[str, str], *args: str) -> Any:
    """``kubectl ARGS -o json``, parsed."""
    return json.loads(kubectl(env, *args, "-o", "json"))


@dataclass
class LocalProject:
    """A copy of the program with its own file backend, driven through the CLI."""

    workdir: Path
    env: dict[str, str]
    stack: str = "local"
    log: list[str] = field(default_factory=list)

    def pulumi(
        self, *args: str, check: bool = True, timeout: int = 1200
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["pulumi", *args, "--stack", self.stack, "--non-interactive"]
        t0 = time.monotonic()
        r = subprocess.run(
            cmd, cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        self.log.append(f"{' '.join(cmd)} -> {r.returncode} in {time.monotonic() - t0:.1f}s")
        if check:
            assert r.returncode == 0, (
                f"{' '.join(cmd)} failed:\n{r.stdout[-6000:]}\n{r.stderr[-4000:]}"
            )
        return r

    def set_phase(self, phase: int) -> None:
        self.pulumi("config", "set", "--path", "claude-enhancer:rollout.phase", str(phase))

    def up(self) -> dict[str, int]:
        """`pulumi up`; returns the change summary (op -> count)."""
        r = self.pulumi("up", "--yes", "--skip-preview", "--json")
        return summary_of(r.stdout)

    def export_state(self) -> str:
        return self.pulumi("stack", "export", "--show-secrets=false").stdout


def summary_of(up_json: str) -> dict[str, int]:
    """Change counts from `pulumi up --json` (a stream of engine events, one per line)."""
    for line in reversed(up_json.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"summaryEvent"' in line:
            changes = json.loads(line)["summaryEvent"].get("resourceChanges") or {}
            return {k: int(v) for k, v in changes.items()}
    raise AssertionError(f"no summaryEvent in `pulumi up --json` output: {up_json[-2000:]}")


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    env = toolchain_env()
    status = subprocess.run(
        ["bash", str(ROOT / "platform" / "local.sh"), "status"],
        env=env,
        capture_output=True,
        text=True,
    )
    if status.returncode != 0:
        pytest.fail(
            f"the local platform is not up (platform/local.sh status):\n{status.stdout}{status.stderr}\n"
            "run ./ce platform up",
            pytrace=False,
        )
    return env


@pytest.fixture(scope="session")
def local_project(tool_env: dict[str, str]) -> Iterator[LocalProject]:
    """The embedded `local` stack itself (backend $CE_HOME/state), as `./ce up` deploys it.

    `up --refresh` first, so a platform that was purged under existing state converges again.
    The stack file's bytes are restored afterwards and the stack is left at phase 0.
    """
    env = {k: v for k, v in tool_env.items() if k != "CE_PREVIOUS_PHASE"}
    Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    project = LocalProject(ROOT, env)
    stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
    original = stack_file.read_bytes()
    if project.pulumi("stack", "select", check=False).returncode != 0:
        project.pulumi("stack", "init")
    try:
        project.pulumi("up", "--yes", "--skip-preview", "--refresh")
        yield project
    finally:
        stack_file.write_bytes(original)
        project.pulumi("up", "--yes", "--skip-preview", check=False)
