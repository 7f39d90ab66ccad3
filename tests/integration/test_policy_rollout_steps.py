"""Issue 13 / issue 9 defect 4 acceptance: the real `pulumi preview --policy-pack policies` of the
`local` stack at every phase step 0->1->2->3->4->0, with `previousPhase` set the way CI sets it
(.github/workflows/preview.yml: the stack's `rolloutPhase` output through `policies.pack_config`).

- every legal step (and a re-preview at the phase just deployed) passes the pack;
- a skipped phase is still blocked by `rollout-phase-step`, even with the program's own skip
  check out of the way;
- the compliance report judges every resource of the stack: from the event log bounded by
  `pulumi stack export` it passes, and a `pulumi preview --json` that leaves unchanged
  resources out is NOT EVALUATED (non-zero under --fail-on-violation), with `--show-sames` it passes.

One walk deploys each step and reads previousPhase from the stack's output exactly as CI does.
The step/skip matrix (every legal step, every skip, allowSkip) is judged through the pack's real
analyzer service in-process (tests/policies/test_analyzer_cases.py
test_program_virtual_service_at_every_step, tests/policies/test_rollout_phase_step.py); the
fourteen per-pair CLI previews that repeated it here were removed (issue 24: 70 s per run).

Runs on the shared local platform: wrap it in `flock /tmp/ce-platform.lock`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rollout.phases import MAX_PHASE
from tests.integration.conftest import LocalProject

ROOT = Path(__file__).resolve().parents[2]
POLICY_PACK = str(ROOT / "policies")


def pack_config_like_ci(project: LocalProject, path: Path) -> int:
    """CI: prev=$(pulumi stack output rolloutPhase || echo -1); python -m policies.pack_config ..."""
    out = project.pulumi("stack", "output", "rolloutPhase", check=False)
    prev = int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else -1
    write_pack_config(prev, path)
    return prev


def write_pack_config(prev: int, path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "policies.pack_config",
            "--previous-phase",
            str(prev),
            "-o",
            str(path),
        ],
        cwd=ROOT,
        check=True,
    )


def preview_with_pack(
    project: LocalProject, config: Path, *extra: str, env: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    cmd = [
        "pulumi",
        "preview",
        "--stack",
        project.stack,
        "--non-interactive",
        "--policy-pack",
        POLICY_PACK,
    ]
    cmd += ["--policy-pack-config", str(config), *extra]
    # --event-log is a debug command of the CLI, as in .github/workflows/preview.yml
    run_env = {**(env or project.env), "PULUMI_DEBUG_COMMANDS": "true"}
    return subprocess.run(
        cmd,
        cwd=project.workdir,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policies.report", "--stdout", "md", "--fail-on-violation", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_every_phase_step_passes_the_pack_and_skips_are_blocked(
    local_project: LocalProject, tmp_path: Path
) -> None:
    config = tmp_path / "pack-config.json"
    state = tmp_path / "state.json"
    walked: list[tuple[int, int]] = []
    for phase in (1, 2, 3, 4, 0):
        prev = pack_config_like_ci(local_project, config)
        # a re-preview at the phase just deployed (CI on an unrelated change) passes
        same = preview_with_pack(local_project, config)
        assert same.returncode == 0, (
            f"re-preview at phase {prev} blocked:\n{same.stdout[-6000:]}{same.stderr[-3000:]}"
        )
        if phase != 0 and prev + 2 <= MAX_PHASE:
            # skipping from prev to prev+2 stays blocked by the pack even when the program's own
            # check has no previous phase to compare with (CE_PREVIOUS_PHASE=none)
            local_project.set_phase(prev + 2)
            try:
                skip = preview_with_pack(
                    local_project, config, env={**local_project.env, "CE_PREVIOUS_PHASE": "none"}
                )
            finally:
                local_project.set_phase(prev)
            out = skip.stdout + skip.stderr
            assert skip.returncode != 0, f"skip {prev}->{prev + 2} was not blocked:\n{out[-6000:]}"
            assert "rollout-phase-step" in out and f"rollout phase jumps from {prev} " in out, out[
                -6000:
            ]
        local_project.set_phase(phase)
        events = tmp_path / f"events-{phase}.jsonl"
        step = preview_with_pack(local_project, config, "--event-log", str(events))
        out = step.stdout + step.stderr
        assert step.returncode == 0, f"step {prev}->{phase} blocked:\n{out[-8000:]}"
        assert "mandatory" not in out.lower(), out[-8000:]
        local_project.up()
        state.write_text(local_project.export_state())
        r = report("--event-log", str(events), "--state", str(state), "--config", str(config))
        assert r.returncode == 0 and "Result: **PASS**" in r.stdout, r.stdout[-3000:] + r.stderr
        walked.append((prev, phase))
    assert walked == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]

    # the unchanged stack: `pulumi preview --json` lists no same step unless asked to
    quiet = local_project.pulumi("preview", "--json")
    (tmp_path / "preview.json").write_text(quiet.stdout)
    r = report("--preview-json", str(tmp_path / "preview.json"))
    assert r.returncode == 1 and "Result: **NOT EVALUATED**" in r.stdout, r.stdout[-3000:]
    full = local_project.pulumi("preview", "--json", "--show-sames")
    (tmp_path / "preview.json").write_text(full.stdout)
    r = report("--preview-json", str(tmp_path / "preview.json"), "--state", str(state))
    assert r.returncode == 0 and "Result: **PASS**" in r.stdout, r.stdout[-3000:]
    held = len(
        [
            x
            for x in json.loads(state.read_text())["deployment"]["resources"]
            if "providers" not in x["type"]
        ]
    )
    assert (
        f"over {held - 1} resource(s)" in r.stdout
    )  # every resource but the Stack itself was judged
