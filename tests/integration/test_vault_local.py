"""Issue 12 on the local platform: the `local` stack configures the real Vault dev server.

Through the hvac dynamic provider (vault.provider: hvac), with the real Pulumi CLI:
- a ServiceAccount token from the local kube-apiserver (TokenRequest, audience vault) logs in
  with its role, reads exactly its own paths and is denied every other;
- rotating the static roles changes the PostgreSQL 15 password (new works, old fails) and the
  Redis ACL password (same);
- the audit device records the reads;
- the state holds none of the Vault secrets in plaintext;
- the policy pack's Vault rules see the dynamic resources in the real preview;
- a targeted `destroy` of the Vault component removes every object from Vault (then `up`
  restores the shared stack).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from components import vault_spec as spec
from components.settings import SERVICES
from tests.integration.conftest import LocalProject, kubectl

APP_NS = "claude-enhancer"
KV = "claude-enhancer"
PG_PORT = 55432
REDIS_PORT = 56379
ROOT = Path(__file__).resolve().parents[2]


def root_client(env: dict[str, str]) -> hvac.Client:
    c = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
    assert c.is_authenticated(), "the root token of the Vault dev server does not authenticate"
    return c


def sa_token(env: dict[str, str], sa: str) -> str:
    # TokenRequest against the local kube-apiserver, as the pod's projected volume would get it
    return kubectl(
        env, "create", "token", sa, "-n", APP_NS, "--audience", "vault", "--duration", "10m"
    ).strip()


def login(env: dict[str, str], role: str, jwt: str) -> hvac.Client:
    c = hvac.Client(url=env["VAULT_ADDR"], token="")  # not VAULT_TOKEN from the environment
    c.auth.kubernetes.login(role=role, jwt=jwt, mount_point=spec.K8S_AUTH_PATH)
    return c


def stack_vault() -> Any:
    """The local stack's Vault settings (as the program reads them)."""
    from tests.unit.conftest import settings_for

    return settings_for().vault


def all_paths() -> dict[str, list[str]]:
    return {svc: spec.service_paths(stack_vault().kv_path, svc) for svc in SERVICES}


@pytest.fixture(scope="module")
def vault_env(local_project: LocalProject) -> dict[str, str]:
    env = local_project.env
    for k in ("VAULT_ADDR", "VAULT_TOKEN", "CE_POSTGRES_ADMIN_PASSWORD", "CE_REDIS_ADMIN_PASSWORD"):
        assert env.get(k), f"{k} is not set by toolchain/env.sh (is the platform up with Vault?)"
    return env


def test_every_vault_object_exists(vault_env: dict[str, str]) -> None:
    c = root_client(vault_env)
    assert f"{spec.AUDIT_DEVICE_PATH}/" in c.sys.list_enabled_audit_devices()["data"]
    mounts = c.sys.list_mounted_secrets_engines()["data"]
    assert mounts[f"{KV}/"]["type"] == "kv" and mounts[f"{KV}/"]["options"]["version"] == "2"
    assert mounts[f"{spec.DB_MOUNT}/"]["type"] == "database"
    assert c.sys.list_auth_methods()["data"][f"{spec.K8S_AUTH_PATH}/"]["type"] == "kubernetes"
    cfg = c.read(f"auth/{spec.K8S_AUTH_PATH}/config")["data"]
    assert cfg["kubernetes_host"] == "https://127.0.0.1:6443"
    for svc in SERVICES:
        pol = c.sys.read_policy(spec.role_name(svc))["data"]["rules"]
        assert pol == spec.policy_document(stack_vault().kv_path, svc)
        role = c.read(f"auth/{spec.K8S_AUTH_PATH}/role/{spec.role_name(svc)}")["data"]
        assert role["bound_service_account_names"] == [svc]
        assert role["token_policies"] == [spec.role_name(svc)]
    for role, period in (("ce-app", 3600), ("ce-redis", 3600)):
        got = c.read(f"{spec.DB_MOUNT}/static-roles/{role}")["data"]
        assert got["rotation_period"] == period
    kv = c.secrets.kv.v2.list_secrets(path="", mount_point=KV)["data"]["keys"]
    assert sorted(kv) == ["agent-runtime/", "api/", "shared/", "workflow-engine/"]


@pytest.mark.parametrize("svc", SERVICES)
def test_service_account_reads_exactly_its_own_paths(vault_env: dict[str, str], svc: str) -> None:
    jwt = sa_token(vault_env, svc)
    client = login(vault_env, spec.role_name(svc), jwt)
    mine = all_paths()[svc]
    for path in mine:
        assert client.read(path)["data"], path
    others = sorted(
        {p for s, ps in all_paths().items() if s != svc for p in ps} - set(mine)
        | {f"{KV}/data/shared/redis", f"{KV}/metadata/{svc}/config", "sys/mounts"}
    )
    assert others
    for path in others:
        with pytest.raises(hvac.exceptions.Forbidden):
            client.read(path)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{svc}/config", secret={"x": "y"}, mount_point=KV
        )
    # its token cannot log in with another service's role
    other = next(s for s in SERVICES if s != svc)
    with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)):
        login(vault_env, spec.role_name(other), jwt)


def test_audit_log_records_the_reads(vault_env: dict[str, str]) -> None:
    log = Path(vault_env["CE_HOME"]) / "platform" / "logs" / "vault.log"
    path = f"{KV}/data/api/config"

    def api_reads() -> list[dict[str, Any]]:
        return [
            e
            for e in _audit_entries(log)
            if e.get("type") == "response"
            and e.get("request", {}).get("path") == path
            and "claude-enhancer-api" in (e.get("auth", {}).get("policies") or [])
        ]

    before = len(api_reads())
    client = login(vault_env, spec.role_name("api"), sa_token(vault_env, "api"))
    client.read(path)
    deadline = time.monotonic() + 10
    while len(api_reads()) <= before and time.monotonic() < deadline:
        time.sleep(0.5)
    hits = api_reads()
    assert len(hits) > before, f"no audit response entry for the api read in {log}"
    assert hits[-1]["request"]["operation"] == "read"
    assert hits[-1]["auth"]["metadata"]["service_account_name"] == "api"
    # the audit trail never holds the secret itself (HMAC'd by the device)
    secret = root_client(vault_env).read(path)["data"]["data"]["session_secret"]
    assert secret not in log.read_text(errors="replace")


def _audit_entries(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _psql_ok(env: dict[str, str], user: str, password: str) -> bool:
    psql = f"/usr/lib/postgresql/{env.get('PG_MAJOR', '15')}/bin/psql"
    r = subprocess.run(
        [
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(PG_PORT),
            "-U",
            user,
            "-d",
            "claude_enhancer",
            "-Atc",
            "select current_user, version()",
        ],
        env={**env, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode == 0:
        assert r.stdout.startswith(f"{user}|PostgreSQL 15."), r.stdout
    return r.returncode == 0


def test_rotation_changes_the_postgres_password(vault_env: dict[str, str]) -> None:
    c = root_client(vault_env)
    creds = f"{spec.DB_MOUNT}/static-creds/{spec.STATIC_ROLE}"
    old = c.read(creds)["data"]
    assert old["username"] == "ce_app" and old["rotation_period"] == 3600
    assert _psql_ok(vault_env, "ce_app", old["password"])
    c.write_data(f"{spec.DB_MOUNT}/rotate-role/{spec.STATIC_ROLE}")
    new = c.read(creds)["data"]
    assert new["password"] != old["password"]
    assert _psql_ok(vault_env, "ce_app", new["password"])
    assert not _psql_ok(vault_env, "ce_app", old["password"])


def _redis_ok(user: str, password: str) -> bool:
    r = subprocess.run(
        ["/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "--user", user, "ping"],
        env={"REDISCLI_AUTH": password},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout.strip() == "PONG"


def test_rotation_changes_the_redis_password(vault_env: dict[str, str]) -> None:
    c = root_client(vault_env)
    creds = f"{spec.DB_MOUNT}/static-creds/{spec.REDIS_STATIC_ROLE}"
    old = c.read(creds)["data"]
    assert old["username"] == "ce_app"
    assert _redis_ok("ce_app", old["password"])
    c.write_data(f"{spec.DB_MOUNT}/rotate-role/{spec.REDIS_STATIC_ROLE}")
    new = c.read(creds)["data"]
    assert new["password"] != old["password"]
    assert _redis_ok("ce_app", new["password"])
    assert not _redis_ok("ce_app", old["password"])


def test_state_holds_no_vault_secret_in_plaintext(
    local_project: LocalProject, vault_env: dict[str, str]
) -> None:
    state = local_project.export_state()
    c = root_client(vault_env)
    secrets = [
        vault_env["VAULT_TOKEN"],
        vault_env["CE_POSTGRES_ADMIN_PASSWORD"],
        vault_env["CE_REDIS_ADMIN_PASSWORD"],
        *c.secrets.kv.v2.read_secret_version(
            path="api/config", mount_point=KV, raise_on_deleted_version=True
        )["data"]["data"].values(),
    ]
    reviewer = json.loads(
        kubectl(vault_env, "get", "secret", f"{spec.REVIEWER_SA}-token", "-n", APP_NS, "-o", "json")
    )
    secrets.append(base64.b64decode(reviewer["data"]["token"]).decode())
    for s in secrets:
        assert len(s) >= 16
        assert s not in state
        assert base64.b64encode(s.encode()).decode() not in state
    dyn = [
        r
        for r in json.loads(state)["deployment"]["resources"]
        if r["type"].startswith("pulumi-python:dynamic/vault")
    ]
    assert len(dyn) >= 17
    for r in dyn:
        assert "ciphertext" in json.dumps(r["inputs"]["token"]), r["urn"]


def test_policy_pack_sees_the_dynamic_vault_resources(
    local_project: LocalProject, tmp_path: Path
) -> None:
    # the stack passes as is (tests/integration/test_policy_preview.py); a stricter TTL bound
    # must be reported on the hvac roles - proof that the rule read their inputs
    cfg = tmp_path / "policy-config.json"
    cfg.write_text(json.dumps({"vault-k8s-auth-ttl": {"maxTokenTtl": 600}}))
    r = local_project.pulumi(
        "preview",
        "--policy-pack",
        str(ROOT / "policies"),
        "--policy-pack-config",
        str(cfg),
        check=False,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-4000:]
    assert "vault-k8s-auth-ttl" in out and "token_ttl is 900s; must be at most 600s" in out, out[
        -4000:
    ]
    assert "pulumi-python:dynamic/vault/kubernetes:AuthBackendRole" in out, out[-4000:]


def test_preview_after_up_has_no_changes(local_project: LocalProject) -> None:
    local_project.pulumi("preview", "--expect-no-changes", "--diff")


def _vault_urns(project: LocalProject) -> list[str]:
    state = json.loads(project.export_state())
    return [
        r["urn"]
        for r in state["deployment"]["resources"]
        if r["type"].startswith("pulumi-python:dynamic/vault")
    ]


def test_destroy_removes_everything_from_vault(
    local_project: LocalProject, vault_env: dict[str, str]
) -> None:
    urns = _vault_urns(local_project)
    assert urns
    c = root_client(vault_env)
    try:
        args = ["destroy", "--yes", "--skip-preview"]
        for u in urns:
            args += ["--target", u]
        local_project.pulumi(*args)
        assert f"{spec.AUDIT_DEVICE_PATH}/" not in c.sys.list_enabled_audit_devices()["data"]
        mounts = c.sys.list_mounted_secrets_engines()["data"]
        assert f"{KV}/" not in mounts and f"{spec.DB_MOUNT}/" not in mounts
        assert f"{spec.K8S_AUTH_PATH}/" not in c.sys.list_auth_methods()["data"]
        policies = c.sys.list_acl_policies()["data"]["keys"]
        assert not [p for p in policies if p.startswith("claude-enhancer")], policies
        assert _vault_urns(local_project) == []
    finally:
        local_project.pulumi("up", "--yes", "--skip-preview")
    assert sorted(_vault_urns(local_project)) == sorted(urns)
    local_project.pulumi("preview", "--expect-no-changes")
