"""The project's toolchain environment for tests that run the real Pulumi CLI.

One place for `source toolchain/env.sh`: a missing env.sh or pulumi binary is a test FAILURE
that says what to run, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@cache
def _sourced_env() -> tuple[tuple[str, str], ...]:
    env_sh = ROOT / "toolchain" / "env.sh"
    if not env_sh.is_file():
        pytest.fail(f"{env_sh} is missing: the toolchain is not set up", pytrace=False)
    out = subprocess.run(
        ["bash", "-c", f'source "{env_sh}" >/dev/null && env -0'], capture_output=True, check=True
    ).stdout
    env = dict(item.decode().split("=", 1) for item in out.split(b"\0") if b"=" in item)
    if not shutil.which("pulumi", path=env.get("PATH")):
        pytest.fail(
            "pulumi CLI not found on the toolchain PATH after sourcing toolchain/env.sh: "
            "run ./ce bootstrap (toolchain/bootstrap.sh) first",
            pytrace=False,
        )
    return tuple(env.items())


def toolchain_env() -> dict[str, str]:
    """A fresh copy of the environment of `source toolchain/env.sh`."""
    return dict(_sourced_env())


def pulumi_bin() -> str:
    found = shutil.which("pulumi", path=toolchain_env().get("PATH"))
    assert found, "pulumi vanished from the toolchain PATH"
    return found


def pins() -> dict[str, str]:
    """toolchain/versions.env as a dict (sourced, not exported, so not in the environment)."""
    out: dict[str, str] = {}
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def platform_tool(part: str, version_key: str, binary: str) -> str:
    """A test tool ``platform/build.sh PART`` installs under $CE_TOOLS as PART-<pin>/bin/BINARY;
    missing is a failure that names the command to run."""
    import os

    home = Path(os.environ.get("CE_HOME", Path.home() / ".cache" / "ce"))
    tools = Path(os.environ.get("CE_TOOLS", home / "tools"))
    path = tools / f"{part}-{pins()[version_key]}" / "bin" / binary
    if not path.is_file():
        pytest.fail(
            f"{path} missing: run `CE_PHASE=fetch platform/build.sh {part} && "
            f"platform/build.sh {part}`",
            pytrace=False,
        )
    return str(path)


#: the system's PATH on a machine that has never seen this project (Go from its tarball)
SYSTEM_PATH = "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def fresh_machine_env(root: Path, **extra: str) -> dict[str, str]:
    """A user's environment on a machine that has never seen this project: HOME, CE_HOME and the
    Go module and build caches are empty directories under ``root``; the registries' settings
    (GOPROXY, pip index) are kept."""
    import os

    (root / "home").mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(root / "home"),
        "PATH": SYSTEM_PATH,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "CE_HOME": str(root / "ce"),
        "GOMODCACHE": str(root / "gomod"),
        "GOCACHE": str(root / "gocache"),
        "GOPATH": str(root / "gopath"),
        "GOFLAGS": "-buildvcs=false",
        "TMPDIR": str(root),
    }
    for k in ("GOPROXY", "GOSUMDB", "PIP_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_EXTRA_INDEX_URL"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra)
    return env
