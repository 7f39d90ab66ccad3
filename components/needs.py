"""What a stack needs from the toolchain and the local platform, read from its stack file.

``./ce`` asks this before it fetches or builds anything, so a stack never pays for a tool it does
not use (the Vault server is a 500 s build). The values come from the same settings reader the
program uses; nothing here needs the stack's secrets or the Pulumi engine.

    python -m components.needs [--stack local]     # prints: platform parts, one per line
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from components import settings

ROOT = Path(__file__).resolve().parents[1]

# The parts platform/build.sh knows; every stack on the local platform needs these. `telemetry`
# (Debian's Prometheus) is what `platform/local.sh up` starts for the rollout: a platform part,
# so `./ce up`'s bootstrap installs it, not only `./ce test`'s (issue 22).
BASE_PARTS: tuple[str, ...] = ("postgres", "crds", "kubernetes", "etcd", "kwok", "telemetry")


def load_stack_raw(stack: str, root: Path = ROOT, stack_file: Path | None = None) -> dict[str, Any]:
    """Raw config as the engine passes it: project defaults + stack file, JSON-encoded values."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    raw: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{project['name']}:{key}"
        raw[full] = json.dumps(spec["value"])
    path = stack_file or root / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise settings.SettingsError(f"stack {stack!r}: no stack file {path}")
    stack_doc = yaml.safe_load(path.read_text()) or {}
    for key, value in (stack_doc.get("config") or {}).items():
        raw[key] = value if isinstance(value, str) else json.dumps(value)
    return raw


def platform_parts(raw: dict[str, Any]) -> list[str]:
    """Pure: the platform/build.sh parts this stack's config needs, in build order."""
    parts = list(BASE_PARTS)
    if settings.vault_enabled(raw):
        # the Vault server, and the Redis Cluster the Redis rotator rotates (PostgreSQL is base)
        parts += ["vault", "redis"]
    if settings.cluster_mode(raw) == "kwok":
        # the local platform runs the real operators that reconcile the program's CNPG Cluster,
        # RedisCluster, Prometheus and Alertmanager
        parts += ["cnpg", "redisop", "promop"]
        if settings.mesh_dataplane(raw) == "cni":
            # istiod as the sidecar injector, so pods go through admission as injected pods do
            parts.append("istiod")
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m components.needs",
        description="Print the local-platform parts a stack needs (one per line).",
    )
    ap.add_argument("--stack", default="local", help="stack name (stacks/Pulumi.<stack>.yaml)")
    args = ap.parse_args(argv)
    try:
        print("\n".join(platform_parts(load_stack_raw(args.stack))))
    except settings.SettingsError as e:
        print(f"ERROR: {e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
