"""actionlint over .github/workflows (built with `go install` if not present yet)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines()
    if line.startswith("ACTIONLINT_VERSION=")
)
CE_HOME = Path(os.environ.get("CE_HOME", Path.home() / ".cache" / "ce"))
BIN_DIR = CE_HOME / "tools" / f"actionlint-{ACTIONLINT_VERSION}" / "bin"


def actionlint() -> str:
    explicit = os.environ.get("ACTIONLINT")
    if explicit:
        return explicit
    candidate = BIN_DIR / "actionlint"
    if candidate.is_file():
        return str(candidate)
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            f"actionlint {ACTIONLINT_VERSION} is not built at {candidate} and `go` is not on PATH to build it"
        )
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        [go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@v{ACTIONLINT_VERSION}"],
        env={**os.environ, "GOBIN": str(BIN_DIR)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if r.returncode != 0 or not candidate.is_file():
        pytest.fail(f"building actionlint v{ACTIONLINT_VERSION} failed:\n{r.stderr[-3000:]}")
    return str(candidate)


def test_workflows_pass_actionlint() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert any(w.name == "preview.yml" for w in workflows)
    r = subprocess.run(
        [actionlint(), "-no-color", *map(str, workflows)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_preview_workflow_runs_the_pack_on_pull_requests() -> None:
    text = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    assert "pull_request:" in text
    assert "--policy-pack policies" in text
    assert "python -m policies.report" in text


def test_preview_workflow_report_is_bounded_by_the_state() -> None:
    """The compliance report cannot PASS a run that judged fewer resources than the stack holds."""
    text = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    assert "pulumi stack export --stack local >" in text
    report = text[text.index("python -m policies.report") :].split("\n\n", 1)[0]
    assert "--state" in report and "--fail-on-violation" in report


def test_preview_workflow_enables_the_event_log_flag() -> None:
    """`--event-log` exists only with PULUMI_DEBUG_COMMANDS=true (pulumi v3.274 preview.go)."""
    text = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    # the shell lines that run it (not comments, step names or echoed titles)
    previews = [
        line for line in text.splitlines() if re.search(r"^\s*(\w+=\S+ )*pulumi preview ", line)
    ]
    assert "--event-log" in text and previews
    for line in previews:
        assert "PULUMI_DEBUG_COMMANDS=true pulumi preview" in line, line
