"""The hvac Vault provider against a real Vault v1.21.1 and PostgreSQL 15 of its own.

No shared platform (no lock needed): this starts a private Vault dev server and PostgreSQL on
free loopback ports, deploys every Vault object of the local stack's settings (pointed at
them) with the real Pulumi CLI, then checks rotation, audit, state secrets, idempotency and
destroy. The Kubernetes login path needs the shared kube-apiserver: tests/integration/test_vault_local.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from components import vault_spec as spec
from tests.toolchain import toolchain_env

ROOT = Path(__file__).resolve().parents[2]
ROOT_TOKEN = "private-root-token-for-tests"
PG_ADMIN_PW = "pg-vault-admin-password-for-tests"

PROGRAM = """
import dataclasses, os, sys
import pulumi
from components import vault_hvac, vault_spec
from components.passwords import PASSWORDS, group_by_path
from tests.unit.conftest import settings_for

v = dataclasses.replace(
    settings_for().vault,
    db_port=int(os.environ["T_PG_PORT"]),
)
pws = {n: pulumi.Output.secret(f"{n}-generated-for-tests") for n in PASSWORDS}
x = vault_spec.VaultInputs(
    "claude-enhancer",
    pulumi.Output.secret(os.environ["T_PG_PW"]),
    pulumi.Output.secret("reviewer-jwt-for-tests"),
    open(os.environ["T_CA"]).read(),
    {p: pulumi.Output.secret(pulumi.Output.json_dumps(d)) for p, d in group_by_path(pws).items()},
)
res = {}
for o in vault_spec.vault_objects(v, x):
    opts = pulumi.ResourceOptions(depends_on=[res[d] for d in o.depends_on])
    res[o.name] = vault_hvac.register(o, os.environ["T_VAULT_ADDR"], os.environ["T_VAULT_TOKEN"], opts)
"""


def pin(name: str) -> str:
    """A pin from toolchain/versions.env (sourced, not exported, by env.sh)."""
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError(f"{name} is not pinned in toolchain/versions.env")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(check: object, what: str, secs: float = 30) -> None:
    deadline = time.monotonic() + secs
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready after {secs}s")
        time.sleep(0.3)


@dataclass
class Private:
    env: dict[str, str]
    work: Path
    vault_log: Path
    pg_port: int
    psql: str

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            ["pulumi", *args, "--stack", "t", "--non-interactive"],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check:
            assert r.returncode == 0, f"pulumi {args}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r

    def vault(self) -> hvac.Client:
        return hvac.Client(url=self.env["T_VAULT_ADDR"], token=ROOT_TOKEN)


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    env = toolchain_env()
    vault_bin = Path(env["CE_TOOLS"]) / f"vault-{pin('VAULT_VERSION')}" / "bin" / "vault"
    pg_bin = Path(f"/usr/lib/postgresql/{pin('PG_MAJOR')}/bin")
    for tool in (vault_bin, pg_bin / "initdb"):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: run ./ce bootstrap (platform parts vault, postgres)")
    base = Path("/tmp") / f"ce-vault-private-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(mode=0o711)
    procs: list[subprocess.Popen[bytes]] = []
    pg_data = base / "pg" / "data"
    try:
        vport, pg_port = free_port(), free_port()
        while vport + 1 == pg_port:
            vport = free_port()
        vault_log = base / "vault.log"
        procs.append(
            subprocess.Popen(
                [
                    str(vault_bin),
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    "-dev-listen-address",
                    f"127.0.0.1:{vport}",  # (dev mode also takes vport + 1 for its cluster)
                    "-log-level",
                    "warn",
                ],
                env={**os.environ, "VAULT_DEV_ROOT_TOKEN_ID": ROOT_TOKEN},
                stdout=vault_log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        # PostgreSQL 15 with the platform's roles (platform/local.sh up_postgres, up_pg_app_db)
        (base / "pg").mkdir()
        shutil.chown(base / "pg", "postgres")
        run_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *run_pg,
                str(pg_bin / "initdb"),
                "-D",
                str(pg_data),
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
            check=True,
            capture_output=True,
        )
        conf = f"listen_addresses = '127.0.0.1'\nport = {pg_port}\nunix_socket_directories = '{base / 'pg'}'\n"
        subprocess.run(
            [*run_pg, "tee", "-a", str(pg_data / "postgresql.conf")],
            input=conf.encode(),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *run_pg,
                str(pg_bin / "pg_ctl"),
                "-D",
                str(pg_data),
                "-l",
                str(base / "pg" / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        sql = (
            f"CREATE ROLE vault WITH LOGIN SUPERUSER CREATEROLE PASSWORD '{PG_ADMIN_PW}';"
            "CREATE ROLE ce_app WITH LOGIN; CREATE DATABASE claude_enhancer OWNER ce_app;"
        )
        for stmt in sql.split(";")[:-1]:
            subprocess.run(
                [
                    *run_pg,
                    str(pg_bin / "psql"),
                    "-q",
                    "-h",
                    str(base / "pg"),
                    "-p",
                    str(pg_port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    stmt,
                ],
                check=True,
                capture_output=True,
            )
        addr = f"http://127.0.0.1:{vport}"

        def vault_up() -> bool:
            try:
                return bool(hvac.Client(url=addr, token=ROOT_TOKEN).is_authenticated())
            except Exception:  # not listening yet
                return False

        wait(vault_up, f"vault (log {vault_log})")
        work = base / "prog"
        work.mkdir()
        (work / "Pulumi.yaml").write_text(
            "name: ce-vault-private\nruntime:\n  name: python\n  options:\n    toolchain: pip\n"
        )
        (work / "__main__.py").write_text(PROGRAM)
        (base / "state").mkdir()
        env.update(
            PULUMI_BACKEND_URL=f"file://{base / 'state'}",
            PULUMI_CONFIG_PASSPHRASE="private",
            PYTHONPATH=str(ROOT),
            T_VAULT_ADDR=addr,
            T_VAULT_TOKEN=ROOT_TOKEN,
            T_PG_PORT=str(pg_port),
            T_PG_PW=PG_ADMIN_PW,
            T_CA=str(Path(env["CE_HOME"]) / "platform" / "pki" / "ca.crt"),
        )
        env.pop("VAULT_TOKEN", None)
        assert Path(env["T_CA"]).is_file(), "no platform CA: run ./ce platform up once"
        p = Private(env, work, vault_log, pg_port, str(pg_bin / "psql"))
        p.pulumi("stack", "init")
        p.pulumi("up", "--yes", "--skip-preview")
        yield p
    finally:
        if pg_data.exists():
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(pg_bin / "pg_ctl"),
                    "-D",
                    str(pg_data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
            )
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def test_every_object_is_in_vault_and_preview_is_clean(private: Private) -> None:
    c = private.vault()
    assert f"{spec.AUDIT_DEVICE_PATH}/" in c.sys.list_enabled_audit_devices()["data"]
    mounts = c.sys.list_mounted_secrets_engines()["data"]
    assert mounts["claude-enhancer/"]["options"]["version"] == "2"
    assert mounts[f"{spec.DB_MOUNT}/"]["type"] == "database"
    role = c.read("auth/kubernetes/role/claude-enhancer-api")["data"]
    assert (role["token_ttl"], role["audience"], role["token_policies"]) == (
        900,
        "vault",
        ["claude-enhancer-api"],
    )
    assert c.read(f"{spec.DB_MOUNT}/static-roles/ce-app")["data"]["rotation_period"] == 3600
    # Redis: no static role or connection (the rotator's KV paths and role instead)
    assert c.list(f"{spec.DB_MOUNT}/static-roles")["data"]["keys"] == ["ce-app"]
    assert c.list(f"{spec.DB_MOUNT}/config")["data"]["keys"] == ["claude-enhancer-pg"]
    rot = c.read(f"auth/kubernetes/role/{spec.role_name(spec.ROTATOR_SA)}")["data"]
    assert rot["bound_service_account_names"] == [spec.ROTATOR_SA]
    assert c.sys.read_policy(spec.role_name(spec.ROTATOR_SA))["data"]["rules"] == (
        spec.rotator_policy_document("claude-enhancer")
    )
    private.pulumi("preview", "--expect-no-changes")


def _psql_ok(p: Private, password: str) -> bool:
    r = subprocess.run(
        [
            p.psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(p.pg_port),
            "-U",
            "ce_app",
            "-d",
            "claude_enhancer",
            "-Atc",
            "select split_part(version(), ' ', 2)",
        ],
        env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode == 0:
        assert r.stdout.startswith("15."), r.stdout
    return r.returncode == 0


def test_rotation_new_password_works_old_fails(private: Private) -> None:
    c = private.vault()
    role = spec.STATIC_ROLE
    old = c.read(f"{spec.DB_MOUNT}/static-creds/{role}")["data"]["password"]
    assert _psql_ok(private, old)
    c.write_data(f"{spec.DB_MOUNT}/rotate-role/{role}")
    new = c.read(f"{spec.DB_MOUNT}/static-creds/{role}")["data"]["password"]
    assert new != old
    assert _psql_ok(private, new)
    assert not _psql_ok(private, old)


def test_audit_device_records_reads_without_the_secret(private: Private) -> None:
    c = private.vault()
    value = c.secrets.kv.v2.read_secret_version(
        path="api/config", mount_point="claude-enhancer", raise_on_deleted_version=True
    )["data"]["data"]["session_secret"]
    entries = [
        json.loads(x) for x in private.vault_log.read_text().splitlines() if x.startswith("{")
    ]
    reads = [
        e for e in entries if e.get("request", {}).get("path") == "claude-enhancer/data/api/config"
    ]
    assert any(e["type"] == "response" and e["request"]["operation"] == "read" for e in reads)
    assert value not in private.vault_log.read_text()


def test_state_holds_no_secret_in_plaintext(private: Private) -> None:
    state = private.pulumi("stack", "export").stdout
    for s in (
        ROOT_TOKEN,
        PG_ADMIN_PW,
        "reviewer-jwt-for-tests",
        "api-session-secret-generated-for-tests",
    ):
        assert s not in state
    assert "ciphertext" in state


def test_destroy_removes_everything_from_vault(private: Private) -> None:
    private.pulumi("destroy", "--yes", "--skip-preview")
    c = private.vault()
    assert not c.sys.list_enabled_audit_devices()["data"]
    mounts = c.sys.list_mounted_secrets_engines()["data"]
    assert "claude-enhancer/" not in mounts and f"{spec.DB_MOUNT}/" not in mounts
    assert "kubernetes/" not in c.sys.list_auth_methods()["data"]
    assert c.sys.list_acl_policies()["data"]["keys"] == ["default", "root"]
