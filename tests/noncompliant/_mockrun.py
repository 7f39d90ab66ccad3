"""Run a case program under Pulumi mocks and print the registered resources as JSON.

Usage: python tests/noncompliant/_mockrun.py <program-dir> [<stack>]

With <stack>, the project's config (Pulumi.yaml ``config`` values plus
``stackConfigDir``/Pulumi.<stack>.yaml) is loaded first, so the main program
(repo root) can be run as e.g. its ``local`` stack.

Output: a JSON list of {"type", "name", "urn", "props"} (props = the inputs the
engine would hand to the policy pack), for `python -m policies.report --resources`
or policies.engine.evaluate. No Pulumi CLI or cluster is needed.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

captured: list[dict[str, Any]] = []


class Mocks(pulumi.runtime.Mocks):
    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if not args.typ.startswith("pulumi:providers:"):
            captured.append(
                {
                    "type": args.typ,
                    "name": args.name,
                    "urn": f"urn:pulumi:mock::nc::{args.typ}::{args.name}",
                    "props": args.inputs,
                }
            )
        return f"{args.name}-id", dict(args.inputs)

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def stack_config(program: Path, stack: str) -> dict[str, str]:
    import yaml

    project = yaml.safe_load((program / "Pulumi.yaml").read_text())
    cfg: dict[str, Any] = {}
    for key, value in (project.get("config") or {}).items():
        # project-level keys without a namespace belong to the project (`agents` ->
        # `claude-enhancer:agents`), as the Pulumi CLI resolves them
        key = key if ":" in key else f"{project['name']}:{key}"
        cfg[key] = value["value"] if isinstance(value, dict) and "value" in value else value
    stack_file = program / project.get("stackConfigDir", ".") / f"Pulumi.{stack}.yaml"
    cfg.update((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {})
    # CE_MOCKRUN_CONFIG: a JSON object of keys that replace the stack's (tests only)
    cfg.update(json.loads(os.environ.get("CE_MOCKRUN_CONFIG", "{}")))
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.items()}


def main(program_dir: str, stack: str | None = None) -> None:
    program = Path(program_dir).resolve()
    sys.path.insert(0, str(program))
    pulumi.runtime.set_mocks(Mocks(), project=program.name, stack=stack or "mock", preview=True)
    if stack:
        pulumi.runtime.set_all_config(stack_config(program, stack))
    os.chdir(program)
    runpy.run_path(str(program / "__main__.py"), run_name="__main__")
    _sync_await(wait_for_rpcs())
    json.dump(captured, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
