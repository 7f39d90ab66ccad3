"""Are this stack's credentials configured? Say so in the job summary, never skip silently.

    python -m ci.credentials check --stack staging        # output configured=true|false
    python -m ci.credentials kubeconfig --dest DIR        # KUBECONFIG_DATA -> DIR/kubeconfig (0600)

Only names of secrets are ever printed, never values. Standard library only: it runs
before the project's requirements are installed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ci import gha
from ci.stacks import Secret, StackCi, get


def missing(stack: StackCi, env: Mapping[str, str]) -> list[Secret]:
    return [s for s in stack.secrets if not env.get(s.env, "").strip()]


def summary_text(stack: StackCi, absent: Sequence[Secret]) -> str:
    if stack.platform == "local":
        return f"### `{stack.name}`: previewed on the local platform started in this job (no credentials needed)\n"
    if not absent:
        names = ", ".join(f"`{s.repo_secret}`" for s in stack.secrets)
        return f"### `{stack.name}`: previewed against its real backend (repository secrets {names} are set)\n"
    lines = [
        f"### `{stack.name}`: NOT previewed in this run",
        "",
        f"The `{stack.name}` stack was not previewed because these repository secrets are not set "
        "(or GitHub did not pass them to this run, as for pull requests from forks):",
        "",
    ]
    lines += [f"- `{s.repo_secret}`: {s.purpose}" for s in absent]
    lines += [
        "",
        f"Add them under Settings > Secrets and variables > Actions to preview `{stack.name}` "
        "on every pull request.",
    ]
    return "\n".join(lines) + "\n"


# Keys whose values in a kubeconfig are credentials (masked in logs; the CA certificate is public).
_KUBECONFIG_SECRET_KEYS = (
    "token",
    "client-key-data",
    "client-certificate-data",
    "password",
    "id-token",
    "refresh-token",
)
_KEY_RE = re.compile(r"^\s*-?\s*(?P<key>[A-Za-z-]+)\s*:\s*(?P<value>\S.*?)\s*$")


def kubeconfig_secrets(text: str) -> list[str]:
    """The credential values in a kubeconfig, to be masked before anything can print them."""
    out: list[str] = []
    for line in text.splitlines():
        m = _KEY_RE.match(line)
        if m and m.group("key") in _KUBECONFIG_SECRET_KEYS:
            value = m.group("value").strip("'\"")
            if value:
                out.append(value)
    return out


def write_kubeconfig(data: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data if data.endswith("\n") else data + "\n")
    return path


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(
        prog="python -m ci.credentials", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="set output configured=true|false and write the job summary")
    c.add_argument("--stack", required=True)
    k = sub.add_parser(
        "kubeconfig", help="write KUBECONFIG_DATA to DEST/kubeconfig and export KUBECONFIG"
    )
    k.add_argument("--dest", required=True)
    a = p.parse_args(argv)

    if a.cmd == "check":
        stack = get(a.stack)
        absent = missing(stack, env)
        text = summary_text(stack, absent)
        gha.summary(text, env)
        gha.set_output("summary", text, env)
        gha.set_output("configured", "false" if absent else "true", env)
        if absent:
            names = ", ".join(s.repo_secret for s in absent)
            print(
                f"::warning title={stack.name} not previewed::repository secrets not set: {names}"
            )
        return 0

    data = env.get("KUBECONFIG_DATA", "")
    if not data.strip():
        print("credentials: KUBECONFIG_DATA is empty", file=sys.stderr)
        return 2
    for value in kubeconfig_secrets(data):
        gha.mask(value)
    path = write_kubeconfig(data, Path(a.dest))
    gha.set_env("KUBECONFIG", str(path), env)
    print(f"kubeconfig written to {path} (0600)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
