"""ci.drift: drift opens or updates the stack's issue, a clean check closes it, an error touches none."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ci import drift
from tests.ci.conftest import REPO, FakeGitHub

DRIFTED = json.dumps(
    {
        "steps": [
            {
                "op": "update",
                "urn": "urn:pulumi:prod::claude-enhancer::kubernetes:networking.istio.io/v1:VirtualService::api",
                "detailedDiff": {"spec.http[0].route[0].weight": {"kind": "update"}},
            },
            {
                "op": "same",
                "urn": "urn:pulumi:prod::claude-enhancer::kubernetes:core/v1:Namespace::app",
            },
        ],
        "changeSummary": {"update": 1, "same": 1},
    }
)
CLEAN = json.dumps({"steps": [], "changeSummary": {"same": 42}})


def fake_pulumi(code: int, stdout: str, stderr: str = "") -> tuple[list[list[str]], drift.Runner]:
    seen: list[list[str]] = []

    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(cmd))
        return code, stdout, stderr

    return seen, runner


def at(hour: int) -> datetime:
    return datetime(2026, 11, 26, hour, 0, tzinfo=UTC)


def test_the_check_is_preview_refresh_expect_no_changes(github: FakeGitHub, tmp_path: Path) -> None:
    seen, runner = fake_pulumi(0, CLEAN)
    drift.main(["--stack", "prod"], env=github.env(tmp_path), runner=runner)
    assert seen == [
        [
            "pulumi",
            "preview",
            "--refresh",
            "--expect-no-changes",
            "--json",
            "--non-interactive",
            "--stack",
            "prod",
        ]
    ]


def test_drift_opens_an_issue_then_updates_it(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path)
    _, runner = fake_pulumi(255, DRIFTED)
    assert drift.main(["--stack", "prod"], env=env, runner=runner, now=lambda: at(5)) == 1
    [issue] = github.issues
    assert issue["title"] == "Drift detected in stack prod"
    assert [lb["name"] for lb in issue["labels"]] == ["drift"]
    assert issue["body"].startswith(drift.marker("prod"))
    assert "VirtualService  api  [spec.http[0].route[0].weight]" in issue["body"]
    assert "2026-11-26 05:00 UTC" in issue["body"]

    assert drift.main(["--stack", "prod"], env=env, runner=runner, now=lambda: at(6)) == 1
    assert len(github.issues) == 1
    assert "2026-11-26 06:00 UTC" in github.issues[0]["body"]
    assert ("PATCH", f"/repos/{REPO}/issues/1") in github.writes()
    assert "DRIFT (updated #1)" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_each_stack_has_its_own_issue(github: FakeGitHub, tmp_path: Path) -> None:
    _, runner = fake_pulumi(255, DRIFTED)
    drift.main(["--stack", "prod"], env=github.env(tmp_path), runner=runner)
    drift.main(["--stack", "staging"], env=github.env(tmp_path), runner=runner)
    assert [i["title"] for i in github.issues] == [
        "Drift detected in stack prod",
        "Drift detected in stack staging",
    ]


def test_an_issue_someone_else_wrote_is_not_taken_over(github: FakeGitHub, tmp_path: Path) -> None:
    github.add_issue("about drift", f"see {drift.marker('prod')}", ["drift"], login="mallory")
    _, runner = fake_pulumi(255, DRIFTED)
    drift.main(["--stack", "prod"], env=github.env(tmp_path), runner=runner)
    assert len(github.issues) == 2 and github.issues[0]["body"] == f"see {drift.marker('prod')}"


def test_clean_check_closes_the_open_issue(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path)
    drift.main(["--stack", "prod"], env=env, runner=fake_pulumi(255, DRIFTED)[1])
    assert drift.main(["--stack", "prod"], env=env, runner=fake_pulumi(0, CLEAN)[1]) == 0
    assert github.issues[0]["state"] == "closed"
    assert github.comments[1][0]["body"].startswith("No drift in `prod`")


def test_clean_check_without_an_issue_writes_nothing(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path)
    assert drift.main(["--stack", "prod"], env=env, runner=fake_pulumi(0, CLEAN)[1]) == 0
    assert github.writes() == []
    assert "no drift (no issue change)" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_an_error_is_not_drift(github: FakeGitHub, tmp_path: Path) -> None:
    env = github.env(tmp_path)
    _, runner = fake_pulumi(255, "", "error: getting stack outputs: 401 Unauthorized\n")
    assert drift.main(["--stack", "prod"], env=env, runner=runner) == 2
    assert github.calls == []
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "drift check FAILED" in summary and "401 Unauthorized" in summary


def test_classify() -> None:
    assert drift.classify(0, CLEAN, "").status == "clean"
    got = drift.classify(255, DRIFTED, "")
    assert got.status == "drift" and got.changes == {"update": 1}
    assert drift.classify(255, "not json", "boom").status == "error"
    # --expect-no-changes failed but the digest shows no change: not drift, an error
    assert drift.classify(255, CLEAN, "").status == "error"
    # reads are not changes (the engine's HasChanges does not count them either)
    reads = json.dumps({"steps": [], "changeSummary": {"same": 3, "read": 2}})
    assert drift.classify(255, reads, "").status == "error"
