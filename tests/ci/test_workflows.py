"""The workflows under .github/workflows: actionlint and zizmor clean, hardened, and only wiring ci/ scripts.

actionlint is built with `go install` if not present yet (pinned: ACTIONLINT_VERSION in
toolchain/versions.env); zizmor comes from requirements.txt. A missing tool is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci.stacks import STACKS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
VERSIONS = dict(
    line.split("=", 1)
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines()
    if re.match(r"^[A-Z_]+=", line)
)
ACTIONLINT_VERSION = VERSIONS["ACTIONLINT_VERSION"].strip()
CE_HOME = Path(os.environ.get("CE_HOME", Path.home() / ".cache" / "ce"))
BIN_DIR = CE_HOME / "tools" / f"actionlint-{ACTIONLINT_VERSION}" / "bin"
FILES = sorted(WORKFLOWS.glob("*.y*ml"))


def load(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    raw["on"] = raw.pop(True, raw.get("on"))  # YAML 1.1 reads the key `on` as true
    return {str(k): v for k, v in raw.items()}


def all_steps() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for f in FILES:
        for job_id, job in load(f.name)["jobs"].items():
            for step in job.get("steps", []):
                out.append((f.name, job_id, step))
    return out


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


def zizmor() -> str:
    for candidate in (Path(sys.executable).parent / "zizmor", shutil.which("zizmor")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(
        "zizmor is not installed: it is pinned in requirements.txt (pip install -r requirements.txt)"
    )


def test_workflows_pass_actionlint() -> None:
    assert {f.name for f in FILES} >= {
        "preview.yml",
        "stack-preview.yml",
        "drift.yml",
        "stack-drift.yml",
    }
    r = subprocess.run(
        [actionlint(), "-no-color", *map(str, FILES)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_workflows_pass_zizmor(persona: str) -> None:
    r = subprocess.run(
        [
            zizmor(),
            "--offline",
            "--no-progress",
            f"--persona={persona}",
            "--config",
            str(ROOT / ".github" / "zizmor.yml"),
            str(WORKFLOWS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_action_is_pinned_by_commit_sha_with_its_tag() -> None:
    uses = [
        (f.name, m)
        for f in FILES
        for m in re.findall(r"^\s*(?:-\s+)?uses:\s*(.+)$", f.read_text(), re.M)
    ]
    assert uses
    for name, ref in uses:
        if ref.startswith("./"):
            assert (ROOT / ref.split("@")[0]).is_file(), (name, ref)
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", ref), (name, ref)


def test_least_privilege_permissions_everywhere() -> None:
    for f in FILES:
        doc = load(f.name)
        assert doc["permissions"] == {}, f"{f.name}: the workflow grants nothing by default"
        for job_id, job in doc["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{f.name}:{job_id} has no permissions of its own"
            assert set(perms.values()) <= {"read", "write", "none"}
            writes = {k for k, v in perms.items() if v == "write"}
            assert writes <= {"pull-requests", "issues"}, (f.name, job_id, writes)


def test_stack_jobs_are_serialised_per_stack() -> None:
    for name in ("stack-preview.yml", "stack-drift.yml"):
        for job in load(name)["jobs"].values():
            assert "${{ inputs.stack }}" in job["concurrency"]["group"]
    assert load("stack-drift.yml")["jobs"]["drift"]["concurrency"]["cancel-in-progress"] is False


def test_no_expression_is_expanded_inside_a_shell_script() -> None:
    for name, job_id, step in all_steps():
        assert "${{" not in step.get("run", ""), (
            f"{name}:{job_id}: pass values through env, not into run"
        )


def test_secrets_only_reach_step_env_or_a_called_workflow() -> None:
    for f in FILES:
        doc = load(f.name)
        for job_id, job in doc["jobs"].items():
            for step in job.get("steps", []):
                outside_env = {k: v for k, v in step.items() if k != "env"}
                assert "secrets." not in str(outside_env), f"{f.name}:{job_id}: {step.get('name')}"
            assert "secrets." not in str(
                {k: v for k, v in job.items() if k not in ("steps", "secrets")}
            )


def test_yaml_only_wires_the_ci_scripts() -> None:
    allowed = re.compile(
        r"^(python -m ci\.\w+ |bash ci/\w+\.sh$|pulumi install$|python -m pip install )"
    )
    for name in ("stack-preview.yml", "stack-drift.yml"):
        for job in load(name)["jobs"].values():
            for step in job["steps"]:
                if "run" in step:
                    assert allowed.match(step["run"].strip()), (name, step["run"])


def test_every_stack_has_a_preview_job_wired_to_its_own_secrets() -> None:
    jobs = load("preview.yml")["jobs"]
    drift_jobs = load("drift.yml")["jobs"]
    for stack in STACKS.values():
        job = jobs[stack.name]
        assert job["uses"] == "./.github/workflows/stack-preview.yml" and job["with"] == {
            "stack": stack.name
        }
        expected = {s.env: f"${{{{ secrets.{s.repo_secret} }}}}" for s in stack.secrets}
        assert job.get("secrets", {}) == expected
        if stack.platform == "remote":
            assert drift_jobs[stack.name]["secrets"] == expected
    declared = set(load("stack-preview.yml")["on"]["workflow_call"]["secrets"])
    assert declared == {s.env for st in STACKS.values() for s in st.secrets}


def test_preview_goes_through_pulumi_actions_with_the_policy_pack() -> None:
    steps = load("stack-preview.yml")["jobs"]["preview"]["steps"]
    [preview] = [s for s in steps if s.get("id") == "preview"]
    assert preview["uses"].startswith("pulumi/actions@")
    w = preview["with"]
    assert w["command"] == "preview" and w["policyPacks"] == "policies"
    assert w["policyPackConfigs"] == "${{ steps.pack-config.outputs.path }}"
    assert w["diff"] is False  # its output goes through one env var (128 KiB at most)
    [config] = [s for s in steps if s.get("id") == "pack-config"]
    assert config["run"].startswith("python -m ci.policy_config ")


def test_pulumi_version_is_the_pinned_one() -> None:
    pins = [
        s["with"]["pulumi-version"]
        for _, _, s in all_steps()
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert len(pins) >= 3 and set(pins) == {VERSIONS["PULUMI_VERSION"].strip()}


def test_checkout_never_keeps_the_token() -> None:
    for name, job_id, step in all_steps():
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, (name, job_id)


def test_hosted_runners_never_compile_the_pulumi_toolchain() -> None:
    for f in FILES:
        for job_id, job in load(f.name)["jobs"].items():
            runs = " ".join(s.get("run", "") for s in job.get("steps", []))
            builds = "bootstrap" in runs or re.search(r"\./ce (test|up|bootstrap)\b", runs)
            hosted = str(job.get("runs-on", "")).startswith("ubuntu")
            assert not (hosted and builds), (
                f"{f.name}:{job_id} builds the toolchain on a hosted runner"
            )


def test_offline_machines_keep_the_source_built_preview() -> None:
    job = load("preview-offline.yml")["jobs"]["preview"]
    assert "self-hosted" in job["runs-on"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == [
        "./ce test tests/integration/test_policy_preview.py -q",
        "bash ci/offline_preview.sh local",
    ]
