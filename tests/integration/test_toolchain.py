"""Issue 2 acceptance: the toolchain built here, used for real.

- `pulumi version` / `pulumi plugin ls` show the pinned versions;
- `pulumi up` creates a Kubernetes object and a generated password (ours: the random and vault
  plugins cannot be built here, and a program that needs them fails clearly, creating nothing);
- `pulumi destroy` removes them;
- no connection outside loopback is attempted (strace of every process of an `up`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, kubectl
from tests.toolchain import pins

NS = "ce-toolchain-check"


def _project(tmp: Path, env: dict[str, str], body: str) -> tuple[Path, dict[str, str]]:
    prog = tmp / "prog"
    prog.mkdir()
    (tmp / "state").mkdir()
    (prog / "Pulumi.yaml").write_text("name: ce-toolchain-check\nruntime: python\n")
    shutil.copytree(
        ROOT / "components", prog / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    (prog / "__main__.py").write_text(textwrap.dedent(body))
    env = dict(env, PULUMI_BACKEND_URL=f"file://{tmp / 'state'}", PULUMI_CONFIG_PASSPHRASE="check")
    subprocess.run(
        ["pulumi", "stack", "init", "t"], cwd=prog, env=env, check=True, capture_output=True
    )
    return prog, env


def _pulumi(prog: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=prog,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


PROGRAM = f"""
import pulumi
import pulumi_kubernetes as k8s
from components.passwords import GeneratedPassword

ns = k8s.core.v1.Namespace("ns", metadata={{"name": "{NS}"}})
cm = k8s.core.v1.ConfigMap("cm", metadata={{"name": "marker", "namespace": ns.metadata.name}}, data={{"a": "b"}})
pw = GeneratedPassword("pw", length=32)
pulumi.export("configmap", cm.metadata.name)
pulumi.export("passwordLength", pulumi.Output.unsecret(pw.result.apply(len)))
"""


def test_pinned_versions(tool_env: dict[str, str]) -> None:
    v = pins()
    out = subprocess.run(
        ["pulumi", "version"], env=tool_env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"v{v['PULUMI_VERSION']}"
    plugins = subprocess.run(
        ["pulumi", "plugin", "ls", "--json"],
        env=tool_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = {(p["name"], p["kind"], p["version"]) for p in json.loads(plugins)}
    assert ("kubernetes", "resource", v["PULUMI_KUBERNETES_VERSION"]) in got
    sdk = json.loads(
        subprocess.run(
            [
                tool_env["CE_PYTHON"],
                "-c",
                "import pulumi_kubernetes,pathlib,sys;"
                "sys.stdout.write((pathlib.Path(pulumi_kubernetes.__file__).parent/'pulumi-plugin.json').read_text())",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert sdk["version"] == v["PULUMI_KUBERNETES_VERSION"], (
        "the SDK must request the plugin built here"
    )


def test_up_creates_and_destroy_removes(tool_env: dict[str, str], tmp_path: Path) -> None:
    if not shutil.which("strace"):
        pytest.fail(
            "strace is required to check that only loopback is contacted (apt-get install strace)"
        )
    prog, env = _project(tmp_path, tool_env, PROGRAM)
    trace = tmp_path / "connect.trace"
    up = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            str(trace),
            "pulumi",
            "up",
            "--yes",
            "--skip-preview",
            "--non-interactive",
        ],
        cwd=prog,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-2000:]
    assert kubectl(env, "get", "configmap", "marker", "-n", NS, "-o", "jsonpath={.data.a}") == "b"
    out = json.loads(_pulumi(prog, env, "stack", "output", "--json").stdout)
    assert out == {"configmap": "marker", "passwordLength": 32}
    state = _pulumi(prog, env, "stack", "export").stdout
    assert "ciphertext" in state

    inet = re.findall(
        r"sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\(\"([^\"]+)\"\)|"
        r"sin6_flowinfo=[^,]*, inet_pton\(AF_INET6, \"([^\"]+)\"\))",
        trace.read_text(),
    )
    assert inet, "strace saw no TCP connects at all (the engine talks to its plugins over loopback)"
    outside = [
        (p, a4 or a6)
        for p, a4, a6 in inet
        if not ((a4 or "").startswith("127.") or a6 in ("::1", "::ffff:127.0.0.1"))
    ]
    assert not outside, f"connections outside loopback: {outside[:10]}"

    down = _pulumi(prog, env, "destroy", "--yes", "--skip-preview")
    assert down.returncode == 0, down.stdout[-4000:]
    gone = subprocess.run(
        ["kubectl", "get", "namespace", NS, "-o", "jsonpath={.status.phase}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert gone.returncode != 0 or gone.stdout == "Terminating", gone.stdout
    assert kubectl(env, "get", "configmaps", "-n", NS, "-o", "name") == ""


def test_unbuildable_plugin_fails_clearly_and_creates_nothing(
    tool_env: dict[str, str], tmp_path: Path
) -> None:
    prog, env = _project(
        tmp_path,
        tool_env,
        """
        import pulumi_kubernetes as k8s
        import pulumi_random as random
        k8s.core.v1.ConfigMap("cm", metadata={"name": "never", "namespace": "default"})
        random.RandomPassword("pw", length=24)
        """,
    )
    r = _pulumi(prog, env, "preview")
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "random" in text and "4.21.4" in text, text[-3000:]
    up = _pulumi(prog, env, "up", "--yes")
    assert up.returncode != 0
    missing = subprocess.run(
        ["kubectl", "get", "configmap", "never", "-n", "default"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0, "a failed preview must not have created anything"
