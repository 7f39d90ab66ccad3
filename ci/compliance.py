"""The compliance report for one stack's preview (``python -m policies.report``).

    python -m ci.compliance --stack prod --config pack-config.json --out-dir reports/prod

runs ``pulumi preview --json --event-log FILE`` with the policy pack and the same config
as the enforcing preview of ``pulumi/actions`` (whose text output carries neither resource
inputs nor policy events), keeps the digest as ``preview.json`` (the PR comment renders
the diff from it) and writes ``compliance-report.{json,md}`` from the engine's policy
events. Not from the digest: it lists only the resources that change, so stack-wide
rules re-run on it would miss the unchanged ones (a NetworkPolicy already deployed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ci.stacks import get
from components.state import Runner
from policies import report


def run(cmd: Sequence[str]) -> tuple[int, str, str]:
    # The CLI registers --event-log only with PULUMI_DEBUG_COMMANDS set (the Automation API sets it too).
    env = {**os.environ, "PULUMI_DEBUG_COMMANDS": "true"}
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=3600, check=False, env=env
    )
    return proc.returncode, proc.stdout, proc.stderr


def preview_command(stack: str, config: str, events: str) -> list[str]:
    return [
        "pulumi", "preview", "--json", "--non-interactive", "--stack", stack,
        "--policy-pack", "policies", "--policy-pack-config", config, "--event-log", events,
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None, runner: Runner = run) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ci.compliance", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--stack", required=True)
    p.add_argument(
        "--config", required=True, help="the policy-pack config the enforcing preview used"
    )
    p.add_argument("--out-dir", required=True)
    p.add_argument("--run-id", default="")
    a = p.parse_args(argv)
    stack = get(a.stack)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    events = out / "events.jsonl"
    events.unlink(missing_ok=True)
    code, stdout, stderr = runner(preview_command(stack.name, a.config, str(events)))
    try:
        digest = json.loads(stdout)
    except json.JSONDecodeError:
        digest = None
    if isinstance(digest, dict) and "steps" in digest:
        (out / "preview.json").write_text(json.dumps(digest, indent=1) + "\n", encoding="utf-8")
    log = events.read_text(encoding="utf-8") if events.is_file() else ""
    if not log.strip() or (code != 0 and '"policyEvent"' not in log):
        # It failed for another reason than the pack (credentials, a program error): a report
        # of "no violation" would be false, so say so where the report would be.
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        (out / "compliance-report.md").write_text(
            f"No compliance report: `pulumi preview --stack {stack.name}` with the policy pack "
            f"exited {code} before the pack judged it.\n\n```\n{tail}\n```\n",
            encoding="utf-8",
        )
        print(f"compliance: pulumi preview exited {code}, no policy events", file=sys.stderr)
        return 1
    args = ["--event-log", str(events), "--config", a.config, "--out-dir", str(out)]
    # The deployed state bounds the report: every resource the stack holds must have been judged
    # (a stack never deployed has none, and nothing to bound).
    code, state, _ = runner(["pulumi", "stack", "export", "--stack", stack.name])
    if code == 0 and state.strip():
        (out / "state.json").write_text(state, encoding="utf-8")
        args += ["--state", str(out / "state.json")]
    return report.main([*args, "--run-id", a.run_id])


if __name__ == "__main__":
    raise SystemExit(main())
