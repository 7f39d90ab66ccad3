"""python -m rotator: rotate the application's Redis ACL user on every node of a Redis Cluster.

Each run makes one step (a CronJob every few minutes), or steps until the rotation is over.
Secrets come from the environment only, never from the command line: REDIS_PASSWORD (the
default user's password, as the operator's pods have it) and VAULT_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import hvac

from rotator.redis_acl import Config, RotationError, Rotator, run_until, sha
from rotator.redis_io import FileSink, RedisNodes, VaultKv


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m rotator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seed", required=True, help="one node of the cluster, HOST:PORT")
    ap.add_argument("--nodes", type=int, default=6, help="masters + replicas (default 6)")
    ap.add_argument("--admin-user", default="default")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--user", default="ce_app", help="the application's ACL user")
    ap.add_argument("--vault-addr", default=os.environ.get("VAULT_ADDR", "http://127.0.0.1:8200"))
    ap.add_argument("--kv-mount", default="claude-enhancer")
    ap.add_argument("--app-path", default="shared/redis-app", help="what the pods read")
    ap.add_argument("--state-path", default="ops/redis-rotation")
    ap.add_argument("--acl-file", type=Path, required=True,
                    help="the durable ACL the nodes load at start (their aclfile)")  # fmt: skip
    ap.add_argument("--period-seconds", type=float, default=86400)
    ap.add_argument("--grace-seconds", type=float, default=900,
                    help="both passwords stay valid this long after publishing; must exceed "
                    "the agents' re-render interval")  # fmt: skip
    ap.add_argument("--now", action="store_true", help="rotate even if not due")
    ap.add_argument("--until-idle", action="store_true",
                    help="step until the rotation is over (waits out the grace period)")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = [k for k in ("REDIS_PASSWORD", "VAULT_TOKEN") if not os.environ.get(k)]
    if missing:
        print(f"ERROR: {' and '.join(missing)} not set (secrets come from the environment)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.grace_seconds <= 0 or args.period_seconds <= args.grace_seconds:
        print("ERROR: need 0 < --grace-seconds < --period-seconds", file=sys.stderr)
        return 2
    admin = os.environ["REDIS_PASSWORD"]
    client = hvac.Client(url=args.vault_addr, token=os.environ["VAULT_TOKEN"])
    rotator = Rotator(
        Config(args.user, sha(admin), args.nodes, args.period_seconds, args.grace_seconds),
        nodes=RedisNodes(args.seed, args.admin_user, admin, tls=args.tls),
        store=VaultKv(client, args.kv_mount, args.app_path, args.state_path),
        sink=FileSink(args.acl_file),
        clock=time.time,
        new_password=lambda: secrets.token_urlsafe(32),
        log=lambda m: print(f"[rotator] {m}", file=sys.stderr, flush=True),
    )
    try:
        if args.until_idle:
            phase = run_until(rotator, ("idle",), args.now, time.sleep,
                              poll_seconds=min(5.0, args.grace_seconds / 4))  # fmt: skip
        else:
            phase = rotator.step(force=args.now)
    except RotationError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(phase)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
