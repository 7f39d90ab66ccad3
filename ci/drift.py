"""Scheduled drift check: ``pulumi preview --refresh --expect-no-changes`` for one stack.

    python -m ci.drift --stack prod

Drift (the refreshed state differs from what the program declares) opens an issue, or
updates the open one for that stack (found by its hidden marker, label ``drift``); a clean
check closes that issue with a comment. An error is neither: the job fails and says why.
Exit status: 0 clean, 1 drift, 2 error. Environment as for ci.pr_comment (GITHUB_TOKEN, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ci import gha
from ci.github import GitHub, GitHubError
from ci.pr_comment import NO_CHANGE_OPS, render_diff
from ci.stacks import get

LABEL = "drift"
BOT = "github-actions[bot]"
Runner = Callable[[Sequence[str]], tuple[int, str, str]]


@dataclass(frozen=True)
class DriftResult:
    status: str  # "clean" | "drift" | "error"
    diff_md: str = ""
    detail: str = ""
    changes: dict[str, int] = field(default_factory=dict)


def command(stack: str) -> list[str]:
    return [
        "pulumi",
        "preview",
        "--refresh",
        "--expect-no-changes",
        "--json",
        "--non-interactive",
        "--stack",
        stack,
    ]


def classify(code: int, stdout: str, stderr: str) -> DriftResult:
    """Tell drift from a clean check and from an error, from the CLI's exit status and JSON digest."""
    try:
        digest: Any = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        digest = None
    changes: dict[str, int] = {}
    if isinstance(digest, dict) and isinstance(digest.get("changeSummary"), dict):
        changes = {
            k: int(v)
            for k, v in digest["changeSummary"].items()
            if k not in NO_CHANGE_OPS and int(v) > 0
        }
    if code == 0:
        return DriftResult("clean", changes=changes)
    if changes and isinstance(digest, dict):
        return DriftResult("drift", diff_md=render_diff(digest), changes=changes)
    tail = "\n".join((stderr.strip() or stdout.strip()).splitlines()[-20:])
    return DriftResult(
        "error", detail=f"pulumi preview exited {code} without reporting changes:\n{tail}"
    )


def marker(stack: str) -> str:
    return f"<!-- claude-enhancer:drift stack={stack} -->"


def issue_title(stack: str) -> str:
    return f"Drift detected in stack {stack}"


def issue_body(stack: str, result: DriftResult, when: str, run_url: str) -> str:
    link = f" ([workflow run]({run_url}))" if run_url else ""
    return (
        f"{marker(stack)}\n"
        f"`pulumi preview --refresh --expect-no-changes --stack {stack}` found drift at {when}{link}: "
        "the live resources differ from what the program declares.\n\n"
        f"{result.diff_md}\n"
        f"Reconcile with `pulumi up --stack {stack}` (or change the program to match), then the next "
        "scheduled check closes this issue.\n"
    )


def _ours(issue: Mapping[str, Any], stack: str) -> bool:
    return (issue.get("user") or {}).get("login") == BOT and marker(stack) in (
        issue.get("body") or ""
    )


def sync_issue(gh: GitHub, stack: str, result: DriftResult, when: str, run_url: str = "") -> str:
    """Open/update the stack's drift issue on drift, close it when clean. Returns what it did."""
    existing = next((i for i in gh.open_issues(LABEL) if _ours(i, stack)), None)
    if result.status == "drift":
        body = issue_body(stack, result, when, run_url)
        if existing is None:
            created = gh.create_issue(issue_title(stack), body, [LABEL])
            return f"opened #{created['number']}"
        gh.update_issue(int(existing["number"]), body=body)
        return f"updated #{existing['number']}"
    if result.status == "clean" and existing is not None:
        number = int(existing["number"])
        gh.create_comment(number, f"No drift in `{stack}` at {when}; closing.")
        gh.update_issue(number, state="closed", state_reason="completed")
        return f"closed #{number}"
    return "no issue change"


def run(cmd: Sequence[str]) -> tuple[int, str, str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=3600, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    runner: Runner = run,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(prog="python -m ci.drift", description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", required=True)
    a = p.parse_args(argv)
    stack = get(a.stack)
    result = classify(*runner(command(stack.name)))
    when = now().strftime("%Y-%m-%d %H:%M UTC")
    server, repo, run_id = (
        env.get("GITHUB_SERVER_URL", ""),
        env.get("GITHUB_REPOSITORY", ""),
        env.get("GITHUB_RUN_ID", ""),
    )
    run_url = f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else ""

    if result.status == "error":
        gha.summary(f"### `{stack.name}`: drift check FAILED\n\n```\n{result.detail}\n```", env)
        return 2
    try:
        did = sync_issue(GitHub.from_env(env), stack.name, result, when, run_url)
    except (GitHubError, ValueError) as e:
        gha.summary(
            f"### `{stack.name}`: {result.status}, but the drift issue could not be updated: {e}",
            env,
        )
        return 2
    if result.status == "drift":
        gha.summary(f"### `{stack.name}`: DRIFT ({did})\n\n{result.diff_md}", env)
        return 1
    gha.summary(f"### `{stack.name}`: no drift ({did})", env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
