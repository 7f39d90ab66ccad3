"""Every executable the platform starts is installed by the bootstrap of the README command that
starts it (issue 22: `./ce up` stopped after 53 minutes on a fresh machine because the Prometheus
that `platform/telemetry.sh` starts was installed only by `./ce test`'s `--test-tools`).

Read from the code's own lists, never from a copy:
- the entry points: the README's commands, and the `bootstrap ...` line of each one's arm in `ce`;
- what a bootstrap installs: `toolchain/bootstrap.sh --plan` (its own parts and packages);
- what a part installs: `platform/build.sh --provides PART` (checked after every build of it);
- what the platform starts: the executables that `platform/local.sh` and `platform/telemetry.sh`
  launch, with their variables resolved by bash from the scripts' own assignments;
- what the base system must have: `PLATFORM_SYSTEM_COMMANDS` (toolchain/versions.env), which
  `local.sh up` checks before it starts anything.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = (ROOT / "platform" / "local.sh", ROOT / "platform" / "telemetry.sh")
FAKE_HOME = "/ce-home"  # resolved paths only: nothing is read or written there

# how the platform scripts launch a program: a daemon helper's command, an exec, a lookup
_LAUNCH = re.compile(
    r"""(?:(?:\bstart_bg|^\s*start)\s+\S+|\bexec\s+setsid|\bcommand\s+-v)\s+"""
    r"""(?P<cmd>"\$[A-Z_]+(?:/[\w.-]+)*"|[a-z][\w.-]*)"""
)
# any program named by a path variable: "$K8S_BIN/kube-apiserver", "$KUBECTL", "$PG_BIN/initdb"
_PATH_VAR = re.compile(r'"(\$\{?[A-Z][A-Z0-9_]*\}?(?:/[\w.-]+)+|\$(?:KUBECTL|PY))"')


def _bash(script: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": FAKE_HOME, "CE_HOME": FAKE_HOME}
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout


def readme_entry_points() -> list[str]:
    """The `./ce` commands the README tells a new user to run, in its order."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"^\./ce (up|test|rollout run)\b", text, flags=re.M)
    return list(dict.fromkeys(found))


def bootstrap_args(command: str) -> list[str] | None:
    """The arguments `ce` passes to bootstrap in COMMAND's arm (None: it runs no bootstrap)."""
    text = (ROOT / "ce").read_text()
    arm = re.search(rf"^  {command.split()[0]}\)(.*?)(?=^  [\w|-]+\)|^esac)", text, re.M | re.S)
    assert arm, f"ce has no arm for {command!r}"
    line = re.search(r"^\s*bootstrap( [^;\n]*)", arm.group(1), re.M)
    return shlex.split(line.group(1)) if line else None


def bootstrap_plan(args: list[str]) -> tuple[set[str], set[str]]:
    """(parts, Debian packages) that `toolchain/bootstrap.sh ARGS` installs, by its own --plan."""
    out = subprocess.run(
        ["bash", "toolchain/bootstrap.sh", "--plan", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    parts = {line.split()[1] for line in out if line.startswith("part ")}
    debs = {line.split()[1] for line in out if line.startswith("deb ")}
    assert parts, f"bootstrap --plan {args} printed no parts: {out}"
    return parts, debs


def provided(parts: set[str]) -> set[str]:
    out = _bash(f"bash platform/build.sh --provides {' '.join(sorted(parts))}")
    return {line for line in out.split("\n") if line}


def platform_launches() -> dict[str, str]:
    """{executable (resolved path, or bare command name): the script that launches it}."""
    tokens: dict[str, str] = {}
    for script in SCRIPTS:
        for line in script.read_text().split("\n"):
            if line.lstrip().startswith("#"):
                continue
            for m in _LAUNCH.finditer(line):
                tokens.setdefault(m.group("cmd").strip('"'), script.name)
            for m in _PATH_VAR.finditer(line):
                tokens.setdefault(m.group(1), script.name)
    # the scripts' own top-level assignments, evaluated by bash as the scripts do
    assigns = "\n".join(
        line
        for script in SCRIPTS
        for line in script.read_text().split("\n")
        if re.match(r"[A-Z][A-Z0-9_]*=", line) and "$(" not in line
    )
    names = list(tokens)
    resolved = _bash(
        f"set -a; repo=$PWD; here=$PWD/platform; . toolchain/versions.env\n{assigns}\n"
        + "\n".join(f"printf '%s\\n' {t if t.startswith('$') else shlex.quote(t)}" for t in names)
    ).split("\n")
    out = {r: tokens[t] for t, r in zip(names, resolved)}
    # programs only: files the scripts read (stages.yaml, the rendered webhook) are not launched
    return {p: s for p, s in out.items() if "/" not in p or "/bin/" in p}


def system_commands() -> set[str]:
    return set(_bash(". toolchain/versions.env; echo $PLATFORM_SYSTEM_COMMANDS").split())


def missing_for(command: str) -> list[str]:
    """What the platform launches that COMMAND's bootstrap does not install (empty: none)."""
    args = bootstrap_args(command)
    if args is None:
        # `./ce rollout run` bootstraps nothing: it runs on the platform `./ce up` started,
        # which the README runs first
        entry = readme_entry_points()
        assert entry.index("up") < entry.index(command), f"README runs {command!r} before up"
        args = bootstrap_args("up")
        assert args is not None
    parts, debs = bootstrap_plan(args)
    have = provided(parts)
    have_names = {Path(p).name for p in have}
    base = system_commands()
    missing = []
    for exe, script in sorted(platform_launches().items()):
        if exe.startswith(f"{FAKE_HOME}/venv/"):
            continue  # the venv: every bootstrap's first step
        ok = exe in have if "/" in exe else (exe in base or exe in have_names)
        if not ok:
            missing.append(
                f"./ce {command}: {script} starts {exe}, but its bootstrap "
                f"({' '.join(args)}; parts {sorted(parts)}, packages {sorted(debs)}) installs nothing "
                "that provides it"
            )
    return missing


def test_readme_names_the_entry_points() -> None:
    assert readme_entry_points()[:2] == ["up", "test"]
    assert "rollout run" in readme_entry_points()


def test_the_scripts_launches_are_found() -> None:
    # the guard reads what it should: a parser that found nothing would pass everything
    launches = platform_launches()
    assert f"{FAKE_HOME}/tools/etcd-v3.6.5/bin/etcd" in launches
    assert "prometheus" in launches  # telemetry.sh: `start prometheus prometheus ...`
    assert any(p.endswith("/bin/kubectl") for p in launches)
    assert any(p.endswith("/bin/pg_ctl") for p in launches)
    assert "python3" in launches


@pytest.mark.parametrize("command", ["up", "test", "rollout run"])
def test_every_platform_executable_is_installed_by_the_entry_points_bootstrap(
    command: str,
) -> None:
    assert missing_for(command) == []


def test_the_platform_takes_nothing_from_a_test_only_package() -> None:
    # a test package (./ce test --test-tools) is exactly what ./ce up lacks
    parts, debs = bootstrap_plan(["--stack", "local", "--test-tools"])
    up_parts, up_debs = bootstrap_plan(["--stack", "local"])
    assert up_debs == set() and debs
    test_only = {"nca", "meshsim"}  # the only test-only parts: test tools nothing starts
    assert parts - up_parts == test_only
    assert not {Path(p).name for p in provided(test_only)} & set(platform_launches())
