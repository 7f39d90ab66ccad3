"""One pull-request comment per stack: the diff, the policy results and the compliance report.

    python -m ci.pr_comment --stack prod --outcome failure --preview-json reports/prod/preview.json \
        --report-md reports/prod/compliance-report.md

The comment carries a hidden marker (``<!-- claude-enhancer:preview stack=prod -->``); a
later run edits the comment with that marker (written by the workflow's bot) instead of
adding another. Environment: ``PREVIEW_OUTPUT`` (the text ``pulumi/actions`` printed),
``NOT_PREVIEWED`` (with ``--not-configured``: the summary ``ci.credentials check`` wrote),
``GITHUB_TOKEN``, ``GITHUB_REPOSITORY``, ``GITHUB_API_URL``, ``GITHUB_EVENT_PATH`` (the pull
request number), ``GITHUB_SERVER_URL`` + ``GITHUB_RUN_ID`` (link to the run).
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ci import gha
from ci.credentials import missing, summary_text
from ci.github import GitHub, GitHubError
from ci.stacks import get

BOT = "github-actions[bot]"
MAX_BODY = 65_000  # GitHub rejects comment bodies over 65,536 characters
SECTION_LIMITS = {"diff": 24_000, "policies": 12_000, "report": 24_000}

# Ops that change nothing (as the engine's HasChanges counts them), plus the refresh reads.
NO_CHANGE_OPS = frozenset({"", "same", "read", "read-discard", "read-replacement", "refresh"})

_SYMBOL = {
    "create": "+",
    "delete": "-",
    "update": "~",
    "replace": "+-",
    "create-replacement": "+-",
    "delete-replaced": "-+",
    "import": "=",
    "read": ">",
}


def marker(stack: str) -> str:
    return f"<!-- claude-enhancer:preview stack={stack} -->"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (
        text[: limit - 60].rsplit("\n", 1)[0]
        + "\n... (truncated; the full text is in the job log/artifact)\n"
    )


def _resource(urn: str) -> tuple[str, str]:
    parts = urn.split("::")
    return (parts[-2].rsplit("$", 1)[-1], parts[-1]) if len(parts) >= 2 else ("", urn)


def render_diff(digest: Mapping[str, Any]) -> str:
    """The changes of a ``pulumi preview --json`` digest, one line per changed resource."""
    lines: list[str] = []
    for step in digest.get("steps") or []:
        op = str(step.get("op", ""))
        if op in NO_CHANGE_OPS:
            continue
        rtype, name = _resource(str(step.get("urn", "")))
        detailed = step.get("detailedDiff")
        keys = (
            sorted(detailed)
            if isinstance(detailed, dict) and detailed
            else list(step.get("diffReasons") or [])
        )
        where = f"  [{', '.join(keys)}]" if keys else ""
        lines.append(f"{_SYMBOL.get(op, '?'):<2} {op:<18} {rtype}  {name}{where}")
    counts = digest.get("changeSummary") or {}
    summary = (
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if isinstance(counts, dict) else ""
    )
    if not lines:
        return f"No changes ({summary or 'no resources'}).\n"
    return f"{summary}\n\n```diff\n" + "\n".join(lines) + "\n```\n"


_POLICY_HEADER = re.compile(r"^(Policies|Policy Violations):\s*$")


def policy_section(output: str) -> str:
    """The policy block of the text ``pulumi preview`` printed (from its header to the next one)."""
    out: list[str] = []
    inside = False
    for line in output.splitlines():
        if _POLICY_HEADER.match(line):
            inside = True
            out.append(line)
            continue
        if inside:
            if line and not line[0].isspace():
                inside = False
                continue
            out.append(line)
    return "\n".join(out).rstrip()


def policy_results(outcome: str, output: str) -> str:
    block = policy_section(output)
    if outcome == "success":
        head = "The preview passed the policy pack (no mandatory violation)."
    elif outcome == "failure":
        head = (
            "**The preview failed**: a mandatory policy was violated or the preview errored "
            "(the job log has the engine's message)."
        )
    else:
        head = f"The preview step did not run (outcome: {outcome})."
    if block:
        return f"{head}\n\n```\n{block}\n```\n"
    if output.strip():
        return f"{head} The engine printed no policy block.\n"
    return (
        f"{head} `pulumi/actions` returned no output for this run; the compliance report below "
        "re-runs every rule on the same resources.\n"
    )


def render(
    stack: str,
    outcome: str,
    diff_md: str,
    policies_md: str,
    report_md: str,
    run_url: str = "",
) -> str:
    icon = {"success": "✅", "failure": "❌"}.get(outcome, "⚠️")
    head = f"{marker(stack)}\n## {icon} `pulumi preview`: stack `{stack}`\n"
    if run_url:
        head += f"\n[workflow run]({run_url})\n"
    sections = [
        ("Diff", _truncate(diff_md, SECTION_LIMITS["diff"])),
        ("Policy results", _truncate(policies_md, SECTION_LIMITS["policies"])),
        ("Compliance report", _truncate(report_md, SECTION_LIMITS["report"])),
    ]
    body = head + "".join(f"\n### {title}\n\n{text.rstrip()}\n" for title, text in sections)
    return _truncate(body, MAX_BODY)


def render_not_previewed(stack: str, why: str, run_url: str = "") -> str:
    link = f"\n[workflow run]({run_url})\n" if run_url else ""
    return f"{marker(stack)}\n## ⚠️ `pulumi preview`: stack `{stack}` not previewed\n{link}\n{why}"


def upsert_comment(
    gh: GitHub, number: int, stack: str, body: str, author: str = BOT
) -> tuple[str, int]:
    """Edit this stack's comment (found by its marker, written by ``author``) or create it."""
    tag = marker(stack)
    for c in gh.comments(number):
        login = (c.get("user") or {}).get("login")
        if login == author and tag in (c.get("body") or ""):
            gh.update_comment(int(c["id"]), body)
            return "updated", int(c["id"])
    created = gh.create_comment(number, body)
    return "created", int(created["id"])


def pr_number(env: Mapping[str, str]) -> int | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    event = json.loads(Path(path).read_text(encoding="utf-8"))
    number = (event.get("pull_request") or {}).get("number")
    return int(number) if number is not None else None


def _read(path: str | None) -> str:
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8")
    return ""


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(
        prog="python -m ci.pr_comment", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--stack", required=True)
    p.add_argument("--outcome", default="", help="outcome of the pulumi/actions preview step")
    p.add_argument("--preview-json", help="digest written by ci.compliance")
    p.add_argument("--report-md", help="compliance-report.md written by ci.compliance")
    p.add_argument(
        "--not-configured", action="store_true", help="the stack's secrets are absent: say so"
    )
    a = p.parse_args(argv)
    stack = get(a.stack)
    server, run_id = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_RUN_ID", "")
    repo = env.get("GITHUB_REPOSITORY", "")
    run_url = f"{server}/{repo}/actions/runs/{run_id}" if server and run_id and repo else ""

    if a.not_configured:
        # The credentials step's own words (it saw which secrets were absent; this step gets none).
        why = env.get("NOT_PREVIEWED", "").strip() or summary_text(stack, missing(stack, env))
        body = render_not_previewed(stack.name, why + "\n", run_url)
    else:
        digest_text = _read(a.preview_json)
        diff_md = (
            render_diff(json.loads(digest_text))
            if digest_text
            else "No preview digest (see the job log).\n"
        )
        report_md = _read(a.report_md) or "No compliance report was written (see the job log).\n"
        body = render(
            stack.name,
            a.outcome,
            diff_md,
            policy_results(a.outcome, env.get("PREVIEW_OUTPUT", "")),
            report_md,
            run_url,
        )

    number = pr_number(env)
    if number is None:
        gha.summary(
            f"`{stack.name}`: not a pull request, so no PR comment; this is what it would say:\n\n{body}",
            env,
        )
        return 0
    try:
        action, cid = upsert_comment(GitHub.from_env(env), number, stack.name, body)
    except (GitHubError, ValueError) as e:
        # e.g. a pull request from a fork gets a read-only token: keep the result in the summary.
        gha.summary(f"`{stack.name}`: could not comment on #{number}: {e}\n\n{body}", env)
        print(f"::warning title=PR comment::{e}")
        return 0
    print(f"{stack.name}: {action} comment {cid} on #{number}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
