"""``./ce redis-rotate``: the rotator on the local platform, as the CronJob runs it in a cluster.

kwok runs no container, so the program's CronJob never runs locally. This entry point gives
the local platform's Redis Cluster (platform/local.sh: 3 masters + 3 replicas of Debian's
redis-server, sharing one aclfile, the local stand-in for the operator's ``spec.acl`` Secret)
the same treatment, with the stack's own Vault KV mount, user, period and grace.

It is the only part of :mod:`rotator` that reads the program's settings (an edge, like the
rollout driver): the model and its effects do not.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from components import settings
from components.needs import load_stack_raw
from components.vault_spec import rotator_settings_args
from rotator import __main__ as rotator_cli

#: the platform's first Redis node and how many there are (platform/local.sh).
PLATFORM_REDIS_PORT = int(os.environ.get("PLATFORM_REDIS_PORT", "56379"))
PLATFORM_REDIS_NODES = 6

#: `pulumi up` flags that update only part of the stack (cobra also takes `--flag=value`)
_PARTIAL_FLAGS = ("--target", "-t", "--target-dependents", "--exclude", "--exclude-dependents")


def partial_update(up_args: Sequence[str]) -> bool:
    """Pure: whether `pulumi up` with these arguments may leave the stack's Vault undeployed."""
    return any(
        a.split("=", 1)[0] in _PARTIAL_FLAGS or (a.startswith("-t") and not a.startswith("--"))
        for a in up_args
    )


def rotator_argv(v: settings.VaultSettings, platform: Path, extra: list[str]) -> list[str]:
    """Pure: the rotator's arguments for the local platform and the stack's Vault settings."""
    return [
        "--seed", f"127.0.0.1:{PLATFORM_REDIS_PORT}",
        "--nodes", str(PLATFORM_REDIS_NODES),
        "--acl-file", str(platform / "redis" / "users.acl"),
        *rotator_settings_args(v),
        *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--after-up"]:
        # `./ce up [pulumi args]`: the CronJob's first run follows a full update only; a targeted
        # one may not have created the stack's Vault mount, and is not the place to rotate
        if partial_update(argv[1:]):
            print("ce: targeted update: the Redis rotator's first step is skipped "
                  "(./ce redis-rotate runs it)", file=sys.stderr)  # fmt: skip
            return 0
        argv = ["--if-vault"]
    ap = argparse.ArgumentParser(
        prog="./ce redis-rotate",
        description="One rotation step of the local platform's Redis Cluster (as the CronJob "
        "does in a cluster), or every step until idle.",
        epilog="`--after-up [pulumi up args]` (what ./ce up runs) is --if-vault after a full "
        "update, and nothing after a targeted one.",
    )
    ap.add_argument("--stack", default="local")
    ap.add_argument("--now", action="store_true", help="rotate even if not due")
    ap.add_argument("--until-idle", action="store_true", help="wait out the grace period")
    ap.add_argument("--if-vault", action="store_true",
                    help="do nothing (exit 0) when the stack does not enable Vault")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        v = settings.load_settings(load_stack_raw(args.stack), os.environ, stack=args.stack).vault
    except settings.SettingsError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    if not v.enabled:
        if args.if_vault:
            return 0
        print(
            f"ERROR: stack {args.stack} does not enable Vault: nothing to rotate", file=sys.stderr
        )
        return 2
    platform = Path(os.environ.get("CE_HOME", Path.home() / ".cache" / "ce")) / "platform"
    pw_file = platform / "redis-admin-password"
    if not pw_file.is_file():
        print(f"ERROR: {pw_file} missing: is the local platform up (./ce platform up)?",
              file=sys.stderr)  # fmt: skip
        return 2
    os.environ["REDIS_PASSWORD"] = pw_file.read_text().strip()
    extra = [*(["--now"] if args.now else []), *(["--until-idle"] if args.until_idle else [])]
    return rotator_cli.main(rotator_argv(v, platform, extra))


if __name__ == "__main__":
    raise SystemExit(main())
