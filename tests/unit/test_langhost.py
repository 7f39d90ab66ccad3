"""Our Pulumi plugin launchers (toolchain/): what the engine asks of them, done fast.

Stopping: the engine closes a plugin by sending SIGINT to its process group and waits up to 5 s before
SIGKILL (sdk/go/common/resource/plugin: cmdutil.InterruptChildren, then a 5 s timeout). A
process started from a background job (`cmd &`, a controller under nohup) inherits SIGINT
*ignored*; a Python plugin then never sees it, and every `up` paid those 5 s per plugin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = ["pulumi-language-python", "pulumi-resource-pulumi-python"]


def _start(name: str, *, sigint_ignored: bool) -> subprocess.Popen[bytes]:
    def preexec() -> None:
        os.setpgid(0, 0)  # the engine starts each plugin in its own process group
        if sigint_ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `&` does to a job's children

    return subprocess.Popen(
        [str(ROOT / "toolchain" / name)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, CE_PYTHON=sys.executable),
        preexec_fn=preexec,
    )


@pytest.mark.parametrize("sigint_ignored", [True, False], ids=["background", "foreground"])
@pytest.mark.parametrize("name", LAUNCHERS)
def test_plugin_exits_on_the_engines_sigint(name: str, sigint_ignored: bool) -> None:
    proc = _start(name, sigint_ignored=sigint_ignored)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"{name} did not print its port: {port!r}"
        os.killpg(proc.pid, signal.SIGINT)
        start = time.monotonic()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running 2 s after SIGINT: the engine would wait 5 s on it")
        assert time.monotonic() - start < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _langhost() -> ModuleType:
    return load_script("ce_langhost", ROOT / "toolchain" / "pulumi-language-python")


def test_required_plugins_are_every_installed_sdk_package_with_a_resource_plugin() -> None:
    """The package-root glob finds what a walk of every distribution's files finds."""
    expected = {}
    for dist in metadata.distributions():
        for f in dist.files or ():
            if f.name == "pulumi-plugin.json":
                data = json.loads(f.read_text() or "{}")
                if data.get("resource") and data.get("name"):
                    expected[data["name"]] = data.get("version") or dist.version
    found = {name: v[0] for name, v in _langhost()._installed_sdk_plugins().items()}
    assert found == expected
    assert "kubernetes" in found
