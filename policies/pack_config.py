"""Write a policy-pack config file (for `pulumi preview --policy-pack-config FILE`).

The rollout rules need what the engine does not know: the phase deployed before this run and
the stack's own ``phaseWeights`` / ``allowSkip``. They come through one function,
``rollout.config.policy_settings`` (CI: ``ci/policy_config.py``); ``--stack NAME`` reads the
stack's ``claude-enhancer:rollout`` from its stack file:

    prev=$(pulumi stack output rolloutPhase --stack prod 2>/dev/null || echo -1)
    python -m policies.pack_config --stack prod --previous-phase "$prev" --environment prod -o pack-config.json
    pulumi preview --stack prod --policy-pack policies --policy-pack-config pack-config.json

``--previous-phase -1`` (or omitting it) means "no previous deployment": the step rule then
cannot judge a step (every weight must still be a phase weight).
``--advisory RULE`` downgrades one rule to advisory (repeatable).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from rollout.config import KEY as ROLLOUT_KEY  # noqa: E402
from rollout.config import policy_settings  # noqa: E402

from policies.lib.rule import is_production  # noqa: E402
from policies.rules import BY_NAME  # noqa: E402


def build_config(
    previous_phase: int | None = None,
    environment: str = "",
    advisory: Sequence[str] = (),
    disabled: Sequence[str] = (),
    rollout: Mapping[str, Any] | str | None = None,
) -> dict[str, Any]:
    """The pack config for a stack: ``rollout`` is its raw ``claude-enhancer:rollout`` value (None: the
    phase table's defaults), ``previous_phase`` the phase deployed before this run."""
    cfg: dict[str, Any] = {}
    settings = policy_settings(rollout, previous_phase)
    cfg["rollout-phase-step"] = settings
    cfg["istio-virtualservice-weights"] = {"phaseWeights": settings["phaseWeights"]}
    if environment:
        cfg["prod-min-replicas"] = {"environment": environment}
        prod = BY_NAME["prod-min-replicas"].RULE.defaults()["prodEnvironments"]
        if is_production(environment, prod):
            # production runs only images pinned by digest: a tag can be moved to other bytes
            cfg["image-provenance"] = {"requireDigest": True}
    for names, level in ((advisory, "advisory"), (disabled, "disabled")):
        for name in names:
            if name not in BY_NAME:
                raise ValueError(f"unknown rule {name!r}; known: {', '.join(sorted(BY_NAME))}")
            cfg.setdefault(name, {})["enforcementLevel"] = level
    return cfg


def stack_rollout(stack: str) -> Any:
    """The stack's raw ``claude-enhancer:rollout`` (project defaults + stack file), as the engine passes it."""
    from components.needs import load_stack_raw

    return load_stack_raw(stack).get(ROLLOUT_KEY)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m policies.pack_config", description=__doc__.split("\n\n")[0])
    p.add_argument("--previous-phase", type=int, default=None, help="phase deployed before this run (-1: none)")
    p.add_argument(
        "--environment",
        default="",
        help="stack environment, e.g. prod (enables prod-min-replicas and image digests)",
    )
    p.add_argument("--stack", default="", help="read phaseWeights/allowSkip from stacks/Pulumi.<stack>.yaml")
    p.add_argument("--advisory", action="append", default=[], metavar="RULE", help="make RULE advisory")
    p.add_argument("--disable", action="append", default=[], metavar="RULE", help="disable RULE")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    a = p.parse_args(argv)
    try:
        rollout = stack_rollout(a.stack) if a.stack else None
        cfg = build_config(a.previous_phase, a.environment, a.advisory, a.disable, rollout)
    except ValueError as e:
        print(f"pack_config: {e}", file=sys.stderr)
        return 2
    text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    if a.output == "-":
        sys.stdout.write(text)
    else:
        Path(a.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
