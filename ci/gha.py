"""The GitHub Actions runner files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ENV) and log commands.

Outside Actions (tests, a developer's shell) the file variables are unset: outputs and
env lines are dropped and the summary goes to stdout, so nothing is lost silently.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path


def _append(path: str, text: str) -> None:
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(text)


def _multiline(key: str, value: str) -> str:
    # The heredoc form Actions documents for values that may contain newlines.
    delim = f"ghadelim_{uuid.uuid4().hex}"
    return f"{key}<<{delim}\n{value}\n{delim}\n"


def set_output(key: str, value: str, env: Mapping[str, str] | None = None) -> None:
    path = (os.environ if env is None else env).get("GITHUB_OUTPUT")
    if path:
        _append(path, _multiline(key, value))


def set_env(key: str, value: str, env: Mapping[str, str] | None = None) -> None:
    path = (os.environ if env is None else env).get("GITHUB_ENV")
    if path:
        _append(path, _multiline(key, value))


def summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    path = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    if path:
        _append(path, text)
    else:
        sys.stdout.write(text)


def mask(value: str) -> None:
    """Ask the runner to mask ``value`` in every later log line (the command line itself is not shown)."""
    for line in value.splitlines():
        if line.strip():
            sys.stdout.write(f"::add-mask::{line}\n")
    sys.stdout.flush()
