"""python -m rotator: rotate the application's Redis ACL user on every node of a Redis Cluster.

Each run makes one step (a CronJob every few minutes), or steps until the rotation is over.
Secrets come from the environment or files only, never from the command line: REDIS_PASSWORD
(the default user's password, as the operator's pods have it), and VAULT_TOKEN or a
ServiceAccount token file for Vault's Kubernetes auth (--vault-role).

The durable ACL is a file (--acl-file, the local platform) or the operator's spec.acl Secret
(--acl-secret NAMESPACE/NAME, in the cluster, with the pod's ServiceAccount token).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import time
from pathlib import Path

import hvac
import hvac.exceptions

from rotator.redis_acl import Config, RotationError, Rotator, run_until_idle, sha
from rotator.redis_io import FileSink, KubeSecretSink, RedisNodes, VaultKv


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
    ap.add_argument("--vault-role", help="log in with Kubernetes auth as this role")
    ap.add_argument("--vault-auth-path", default="kubernetes")
    ap.add_argument("--vault-jwt-file", type=Path, default=Path("/var/run/secrets/vault/token"),
                    help="the projected ServiceAccount token (audience vault) for --vault-role")  # fmt: skip
    sink = ap.add_mutually_exclusive_group(required=True)
    sink.add_argument("--acl-file", type=Path, help="the nodes' aclfile (the local platform)")
    sink.add_argument("--acl-secret", metavar="NAMESPACE/NAME",
                      help="the RedisCluster's spec.acl Secret (in the cluster)")  # fmt: skip
    ap.add_argument("--kube-api", default="https://kubernetes.default.svc")
    ap.add_argument("--kube-token-dir", type=Path,
                    default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
                    help="holds token and ca.crt for --acl-secret")  # fmt: skip
    ap.add_argument("--period-seconds", type=float, default=86400)
    ap.add_argument("--grace-seconds", type=float, default=900,
                    help="both passwords stay valid this long after publishing; must exceed "
                    "the agents' re-render interval")  # fmt: skip
    ap.add_argument("--now", action="store_true", help="rotate even if not due")
    ap.add_argument("--until-idle", action="store_true",
                    help="step until the rotation is over (waits out the grace period)")  # fmt: skip
    return ap


def _vault_client(args: argparse.Namespace) -> hvac.Client:
    if not args.vault_role:
        return hvac.Client(url=args.vault_addr, token=os.environ["VAULT_TOKEN"])
    client = hvac.Client(url=args.vault_addr)
    jwt = args.vault_jwt_file.read_text().strip()
    client.auth.kubernetes.login(args.vault_role, jwt, mount_point=args.vault_auth_path)
    return client


def _sink(args: argparse.Namespace) -> FileSink | KubeSecretSink:
    if args.acl_file:
        return FileSink(args.acl_file)
    namespace, _, name = args.acl_secret.partition("/")
    ca = args.kube_token_dir / "ca.crt"
    return KubeSecretSink(args.kube_api, args.kube_token_dir / "token",
                          ca if ca.exists() else None, namespace, name)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = [k for k in ("REDIS_PASSWORD",) if not os.environ.get(k)]
    if not args.vault_role and not os.environ.get("VAULT_TOKEN"):
        missing.append("VAULT_TOKEN (or --vault-role)")
    if missing:
        print(f"ERROR: {' and '.join(missing)} not set (secrets come from the environment)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.acl_secret and not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+", args.acl_secret):
        print(f"ERROR: --acl-secret must be NAMESPACE/NAME, got {args.acl_secret!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.grace_seconds <= 0 or args.period_seconds <= args.grace_seconds:
        print("ERROR: need 0 < --grace-seconds < --period-seconds", file=sys.stderr)
        return 2
    admin = os.environ["REDIS_PASSWORD"]
    try:
        client = _vault_client(args)
    except (OSError, hvac.exceptions.VaultError) as e:
        print(f"ERROR: Vault login at {args.vault_addr}: {e}", file=sys.stderr)
        return 1
    rotator = Rotator(
        Config(args.user, sha(admin), args.nodes, args.period_seconds, args.grace_seconds),
        nodes=RedisNodes(args.seed, args.admin_user, admin, tls=args.tls),
        store=VaultKv(client, args.kv_mount, args.app_path, args.state_path),
        sink=_sink(args),
        clock=time.time,
        new_password=lambda: secrets.token_urlsafe(32),
        log=lambda m: print(f"[rotator] {m}", file=sys.stderr, flush=True),
    )
    try:
        if args.until_idle:
            phase = run_until_idle(rotator, args.now, time.sleep,
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
