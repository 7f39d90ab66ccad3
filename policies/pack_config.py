"""Write a policy-pack config file (for `pulumi preview --policy-pack-config FILE`).

The rollout rule needs to know the phase deployed before this run; the engine
does not, so CI and the rollout driver pass it in:

    prev=$(pulumi stack output rolloutPhase --stack prod 2>/dev/null || echo -1)
    python -m policies.pack_config --previous-phase "$prev" --environment prod -o pack-config.json
    pulumi preview --stack prod --policy-pack policies --policy-pack-config pack-config.json

``--previous-phase -1`` (or omitting it) means "no previous deployment": the
rollout rule then passes. ``--allow-skip`` is the documented override.
``--advisory RULE`` downgrades one rule to advisory (repeatable).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from policies.rules import BY_NAME  # noqa: E402


def build_config(
    previous_phase: int | None = None,
    environment: str = "",
    allow_skip: bool = False,
    advisory: Sequence[str] = (),
    disabled: Sequence[str] = (),
) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    rollout: dict[str, Any] = {"allowSkip": allow_skip}
    if previous_phase is not None and previous_phase >= 0:
        rollout["previousPhase"] = previous_phase
    cfg["rollout-phase-step"] = rollout
    if environment:
        cfg["prod-min-replicas"] = {"environment": environment}
        prod = BY_NAME["prod-min-replicas"].RULE.defaults()["prodEnvironments"]
        if environment in prod:
            # production runs only images pinned by digest: a tag can be moved to other bytes
            cfg["image-provenance"] = {"requireDigest": True}
    for names, level in ((advisory, "advisory"), (disabled, "disabled")):
        for name in names:
            if name not in BY_NAME:
                raise ValueError(f"unknown rule {name!r}; known: {', '.join(sorted(BY_NAME))}")
            cfg.setdefault(name, {})["enforcementLevel"] = level
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m policies.pack_config", description=__doc__.split("\n\n")[0])
    p.add_argument("--previous-phase", type=int, default=None, help="phase deployed before this run (-1: none)")
    p.add_argument(
        "--environment",
        default="",
        help="stack environment, e.g. prod (enables prod-min-replicas and image digests)",
    )
    p.add_argument("--allow-skip", action="store_true", help="allow advancing more than one rollout phase")
    p.add_argument("--advisory", action="append", default=[], metavar="RULE", help="make RULE advisory")
    p.add_argument("--disable", action="append", default=[], metavar="RULE", help="disable RULE")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    a = p.parse_args(argv)
    try:
        cfg = build_config(a.previous_phase, a.environment, a.allow_skip, a.advisory, a.disable)
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
