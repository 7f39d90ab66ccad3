"""Policy-pack config for a stack, derived from the rollout phase that stack has deployed.

    python -m ci.policy_config --stack prod --output pack-config.json

reads the deployed phase from the stack's state (``pulumi stack output --json``, output
``rolloutPhase``; a stack with no deployment has none) and writes the config that
``pulumi/actions``' ``policyPackConfigs`` input (``--policy-pack-config``) takes.

``policy_config_for_deployed_phase`` is the one phase -> policy-config function: the rollout
rules' part (previous phase, the stack's ``phaseWeights`` and ``allowSkip``) comes from
``rollout.config.policy_settings`` through ``policies.pack_config.build_config``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ci import gha
from ci.stacks import get
from components.state import Runner, StateError, previous_phase
from policies.pack_config import build_config, stack_rollout


def policy_config_for_deployed_phase(
    deployed_phase: int | None, environment: str, rollout: Any = None
) -> dict[str, Any]:
    """The policy-pack config for a preview of a stack whose deployed rollout phase is ``deployed_phase``
    and whose raw ``claude-enhancer:rollout`` config is ``rollout`` (None: the phase table's defaults)."""
    return build_config(previous_phase=deployed_phase, environment=environment, rollout=rollout)


def run(cmd: Sequence[str]) -> tuple[int, str, str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def deployed_phase(stack: str, runner: Runner = run) -> int | None:
    """The stack's deployed ``rolloutPhase`` (None for a stack that was never deployed)."""
    # env={}: CI reads the state; CE_PREVIOUS_PHASE is an override for the program, not for CI.
    return previous_phase(env={}, runner=runner, stack=stack)


def main(argv: Sequence[str] | None = None, runner: Runner = run) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ci.policy_config", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--stack", required=True)
    p.add_argument("--output", required=True, help="policy-pack config file to write")
    a = p.parse_args(argv)
    stack = get(a.stack)
    try:
        phase = deployed_phase(stack.name, runner)
    except StateError as e:
        print(f"policy_config: {e}", file=sys.stderr)
        return 1
    cfg = policy_config_for_deployed_phase(phase, stack.environment, stack_rollout(stack.name))
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shown = "none (never deployed)" if phase is None else str(phase)
    gha.summary(
        f"`{stack.name}`: deployed rollout phase **{shown}**; policy-pack config `{out.name}`:\n\n"
        f"```json\n{json.dumps(cfg, indent=2, sort_keys=True)}\n```",
    )
    gha.set_output("path", str(out))
    print(f"{stack.name}: deployed phase {shown} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
