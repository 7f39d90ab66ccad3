"""ci.pr_comment: one comment per stack, found by its hidden marker and edited, never stacked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci import pr_comment
from ci.github import GitHub
from tests.ci.conftest import BOT, REPO, TOKEN, FakeGitHub

# The text pulumi/actions returns for a preview the pack blocked (CLI layout: a top-level
# "Policies:" block between the resource list and "Resources:").
PREVIEW_TEXT = """\
Previewing update (prod)

     Type                              Name              Plan
     pulumi:pulumi:Stack               claude-enhancer-prod
 ~   ├─ kubernetes:apps/v1:Deployment  api-green         update

Policies:
    ❌ claude-enhancer-guardrails@v0.1.0 (local: policies)
        - [mandatory]  rollout-phase-step  (pulumi:pulumi:Stack: claude-enhancer-prod)
          rollout phase 1 -> 3 skips phase 2

Resources:
    ~ 1 to update
    40 unchanged
"""

DIGEST = {
    "steps": [
        {
            "op": "same",
            "urn": "urn:pulumi:prod::claude-enhancer::kubernetes:core/v1:Namespace::app",
        },
        {
            "op": "update",
            "urn": "urn:pulumi:prod::claude-enhancer::ce:app:Service$kubernetes:apps/v1:Deployment::api-green",
            "detailedDiff": {"spec.replicas": {"kind": "update"}},
        },
        {
            "op": "create",
            "urn": "urn:pulumi:prod::claude-enhancer::kubernetes:policy/v1:PodDisruptionBudget::api-pdb",
        },
    ],
    "changeSummary": {"same": 1, "update": 1, "create": 1},
}


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    digest = tmp_path / "preview.json"
    digest.write_text(json.dumps(DIGEST))
    report = tmp_path / "compliance-report.md"
    report.write_text(
        "# Compliance report\n\n| rule | result |\n| --- | --- |\n| rollout-phase-step | FAIL |\n"
    )
    return digest, report


def _run(tmp_path: Path, env: dict[str, str], stack: str = "prod", outcome: str = "failure") -> int:
    digest, report = _write_inputs(tmp_path)
    argv = [
        "--stack",
        stack,
        "--outcome",
        outcome,
        "--preview-json",
        str(digest),
        "--report-md",
        str(report),
    ]
    return pr_comment.main(argv, env={**env, "PREVIEW_OUTPUT": PREVIEW_TEXT})


def test_first_run_creates_one_comment_with_diff_policy_results_and_report(
    github: FakeGitHub, tmp_path: Path
) -> None:
    assert _run(tmp_path, github.env(tmp_path, pr=7)) == 0
    [comment] = github.comments[7]
    body = comment["body"]
    assert body.startswith(pr_comment.marker("prod"))
    assert (
        "~  update" in body and "kubernetes:apps/v1:Deployment  api-green  [spec.replicas]" in body
    )
    assert "+  create" in body and "api-pdb" in body
    assert "Namespace" not in body  # unchanged resources are not listed
    assert "[mandatory]  rollout-phase-step" in body  # the engine's own policy block
    assert "**The preview failed**" in body
    assert "| rollout-phase-step | FAIL |" in body  # the compliance report
    assert "https://github.example/acme/claude-enhancer/actions/runs/77" in body
    assert "Resources:" not in body.split("### Policy results")[1].split("### Compliance report")[0]


def test_second_run_edits_the_same_comment(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path, pr=7)
    _run(tmp_path, env, outcome="failure")
    first_id = github.comments[7][0]["id"]
    _run(tmp_path, env, outcome="success")
    assert [c["id"] for c in github.comments[7]] == [first_id]
    assert "✅" in github.comments[7][0]["body"]
    assert ("PATCH", f"/repos/{REPO}/issues/comments/{first_id}") in github.writes()


def test_each_stack_has_its_own_comment(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path, pr=7)
    _run(tmp_path, env, stack="staging")
    _run(tmp_path, env, stack="prod")
    _run(tmp_path, env, stack="staging")
    bodies = [c["body"] for c in github.comments[7]]
    assert len(bodies) == 2
    assert bodies[0].startswith(pr_comment.marker("staging")) and bodies[1].startswith(
        pr_comment.marker("prod")
    )


def test_a_users_comment_quoting_the_marker_is_never_edited(
    github: FakeGitHub, tmp_path: Path
) -> None:
    decoy = github.add_comment(7, f"copied: {pr_comment.marker('prod')}", login="mallory")
    _run(tmp_path, github.env(tmp_path, pr=7))
    assert decoy["body"] == f"copied: {pr_comment.marker('prod')}"
    assert len(github.comments[7]) == 2


def test_the_marker_is_found_past_the_first_page_of_comments(
    github: FakeGitHub, tmp_path: Path
) -> None:
    for i in range(130):
        github.add_comment(7, f"chatter {i}", login="someone")
    ours = github.add_comment(7, pr_comment.marker("prod") + "\nold", login=BOT)
    _run(tmp_path, github.env(tmp_path, pr=7))
    assert len(github.comments[7]) == 131
    assert ours["body"] != pr_comment.marker("prod") + "\nold"


def test_upsert_reports_what_it_did(github: FakeGitHub) -> None:
    gh = GitHub(REPO, TOKEN, github.url)
    action, cid = pr_comment.upsert_comment(gh, 3, "local", pr_comment.marker("local") + "\none")
    assert action == "created"
    assert pr_comment.upsert_comment(gh, 3, "local", pr_comment.marker("local") + "\ntwo") == (
        "updated",
        cid,
    )


def test_not_configured_stack_gets_a_plain_comment(github: FakeGitHub, tmp_path: Path) -> None:
    env = {
        **github.env(tmp_path, pr=9),
        "NOT_PREVIEWED": "### `staging`: NOT previewed in this run\n- `STAGING_KUBECONFIG`",
    }
    assert pr_comment.main(["--stack", "staging", "--not-configured"], env=env) == 0
    [comment] = github.comments[9]
    assert comment["body"].startswith(pr_comment.marker("staging"))
    assert "not previewed" in comment["body"] and "`STAGING_KUBECONFIG`" in comment["body"]


def test_read_only_token_keeps_the_comment_in_the_summary(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.fail_writes_with = 403  # pull requests from forks get a read-only GITHUB_TOKEN
    env = github.env(tmp_path, pr=7)
    assert _run(tmp_path, env) == 0
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "could not comment on #7" in summary and "HTTP 403" in summary
    assert pr_comment.marker("prod") in summary
    assert TOKEN not in summary


def test_outside_a_pull_request_the_comment_goes_to_the_summary(
    github: FakeGitHub, tmp_path: Path
) -> None:
    env = github.env(tmp_path, pr=None)
    assert _run(tmp_path, env) == 0
    assert github.calls == []
    assert "not a pull request" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_policy_section_is_the_block_between_headers() -> None:
    block = pr_comment.policy_section(PREVIEW_TEXT)
    assert block.splitlines()[0] == "Policies:"
    assert "rollout phase 1 -> 3 skips phase 2" in block
    assert "Resources:" not in block and "to update" not in block


def test_no_output_from_the_action_is_said_plainly() -> None:
    text = pr_comment.policy_results("failure", "")
    assert "returned no output" in text and "compliance report below" in text


def test_no_changes_digest() -> None:
    assert (
        pr_comment.render_diff({"steps": [], "changeSummary": {"same": 4}})
        == "No changes (4 same).\n"
    )


@pytest.mark.parametrize("size", [10, 200_000])
def test_body_always_fits_a_github_comment(size: int) -> None:
    big = "x" * size + "\n"
    body = pr_comment.render("prod", "success", big, big, big)
    assert len(body) <= pr_comment.MAX_BODY
    assert body.startswith(pr_comment.marker("prod"))
