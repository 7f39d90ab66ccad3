"""The compliance report for one stack's preview (``python -m policies.report`` on its resources).

    python -m ci.compliance --stack prod --config pack-config.json --out-dir reports/prod

runs ``pulumi preview --json`` (the digest: every step with its new inputs), keeps it as
``preview.json`` (the PR comment renders the diff from it), and writes
``compliance-report.{json,md}`` with the same policy-pack config the enforcing preview used.
``pulumi/actions`` runs that enforcing preview; its text output carries no resource inputs,
hence this second, JSON preview.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ci.stacks import get
from components.state import Runner
from policies import report


def run(cmd: Sequence[str]) -> tuple[int, str, str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=3600, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def preview_command(stack: str) -> list[str]:
    return ["pulumi", "preview", "--json", "--non-interactive", "--stack", stack]


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

    code, stdout, stderr = runner(preview_command(stack.name))
    try:
        digest = json.loads(stdout)
    except json.JSONDecodeError:
        digest = None
    if not isinstance(digest, dict) or "steps" not in digest:
        # The program failed before it produced resources; say so where the report would be.
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        (out / "compliance-report.md").write_text(
            f"No compliance report: `pulumi preview --json --stack {stack.name}` exited {code} "
            f"without a preview digest.\n\n```\n{tail}\n```\n",
            encoding="utf-8",
        )
        print(f"compliance: pulumi preview --json exited {code} without a digest", file=sys.stderr)
        return 1
    (out / "preview.json").write_text(json.dumps(digest, indent=1) + "\n", encoding="utf-8")
    return report.main(
        [
            "--preview-json",
            str(out / "preview.json"),
            "--config",
            a.config,
            "--out-dir",
            str(out),
            "--run-id",
            a.run_id,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
