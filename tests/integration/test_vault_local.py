"""Issue 12 on the local platform: the `local` stack configures the real Vault dev server.

Through the hvac dynamic provider (vault.provider: hvac), with the real Pulumi CLI:
- a ServiceAccount token from the local kube-apiserver (TokenRequest, audience vault) logs in
  with its role, reads exactly its own paths and is denied every other;
- rotating the static role changes the PostgreSQL 15 password (new works, old fails);
- the Redis rotator (what the program's CronJob runs; here on the platform's 3+3 Redis Cluster)
  changes the Redis ACL password on every node (new works, old fails), logs in with its own role
  and reads/writes exactly its two KV paths, and its ServiceAccount may patch the ACL Secret only;
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
from tests.integration.conftest import LocalProject, kubectl, redis_auth_ok

APP_NS = "claude-enhancer"
KV = "claude-enhancer"
PG_PORT = 55432
REDIS_PORTS = range(56379, 56385)  # the platform's Redis Cluster (platform/local.sh up_redis)
DATA_NS = "claude-enhancer-data"
ROOT = Path(__file__).resolve().parents[2]


def root_client(env: dict[str, str]) -> hvac.Client:
    c = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
    assert c.is_authenticated(), "the root token of the Vault dev server does not authenticate"
    return c


def sa_token(env: dict[str, str], sa: str, ns: str = APP_NS, audience: str = "vault") -> str:
    # TokenRequest against the local kube-apiserver, as the pod's projected volume would get it
    aud = ["--audience", audience] if audience else []
    return kubectl(env, "create", "token", sa, "-n", ns, *aud, "--duration", "10m").strip()


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
    # the rotator CronJob's first run, as ./ce up makes it (kwok runs no CronJob)
    r = subprocess.run([env["CE_PYTHON"], "-m", "rotator.local"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
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
    assert c.read(f"{spec.DB_MOUNT}/static-roles/ce-app")["data"]["rotation_period"] == 3600
    # no Redis static role or connection: the rotator owns the Redis credential
    assert c.list(f"{spec.DB_MOUNT}/static-roles")["data"]["keys"] == ["ce-app"]
    assert c.list(f"{spec.DB_MOUNT}/config")["data"]["keys"] == [spec.DB_CONNECTION]
    rot = spec.role_name(spec.ROTATOR_SA)
    assert c.sys.read_policy(rot)["data"]["rules"] == spec.rotator_policy_document(KV)
    role = c.read(f"auth/{spec.K8S_AUTH_PATH}/role/{rot}")["data"]
    assert role["bound_service_account_namespaces"] == [DATA_NS]
    kv = c.secrets.kv.v2.list_secrets(path="", mount_point=KV)["data"]["keys"]
    assert sorted(kv) == ["agent-runtime/", "api/", "ops/", "shared/", "workflow-engine/"]


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
        | {f"{KV}/data/{spec.REDIS_STATE_PATH}"}  # the pending password: the rotator's only
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


def _redis_ok(user: str, password: str) -> list[bool]:
    """Whether ``user`` authenticates on each node of the platform's Redis Cluster."""
    return [redis_auth_ok(port, user, password) for port in REDIS_PORTS]


def _redis_app(c: hvac.Client) -> dict[str, str]:
    doc = c.secrets.kv.v2.read_secret_version(path=spec.REDIS_APP_PATH, mount_point=KV,
                                              raise_on_deleted_version=True)  # fmt: skip
    return dict(doc["data"]["data"])


def test_rotation_changes_the_redis_password_on_every_node(vault_env: dict[str, str]) -> None:
    from dataclasses import replace

    from rotator.local import rotator_argv

    c = root_client(vault_env)
    old = _redis_app(c)
    assert old["username"] == "ce_app"
    assert _redis_ok("ce_app", old["password"]) == [True] * 6
    # the stack's settings with a short grace, so the test need not wait out 2 minutes
    v = replace(stack_vault(), redis_rotation_grace=2)
    platform = Path(vault_env["CE_HOME"]) / "platform"
    argv = rotator_argv(v, platform, ["--now", "--until-idle"])
    env = {**vault_env, "REDIS_PASSWORD": (platform / "redis-admin-password").read_text().strip()}
    r = subprocess.run([vault_env["CE_PYTHON"], "-m", "rotator", *argv], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert (r.returncode, r.stdout.strip()) == (0, "idle"), r.stderr
    new = _redis_app(c)
    assert new["password"] != old["password"]
    assert _redis_ok("ce_app", new["password"]) == [True] * 6
    assert _redis_ok("ce_app", old["password"]) == [False] * 6
    # a node restarted from the aclfile would come back with the new password only
    acl = (platform / "redis" / "users.acl").read_text()
    assert new["password"] not in acl and "user default on #" in acl


def test_the_rotator_role_reads_and_writes_exactly_its_two_paths(
    vault_env: dict[str, str],
) -> None:
    client = login(vault_env, spec.role_name(spec.ROTATOR_SA),
                   sa_token(vault_env, spec.ROTATOR_SA, DATA_NS))  # fmt: skip
    for path in spec.rotator_paths(KV):
        assert client.read(path)["data"], path
    state = client.secrets.kv.v2.read_secret_version(
        path=spec.REDIS_STATE_PATH, mount_point=KV, raise_on_deleted_version=True
    )["data"]
    # a check-and-set write with the version it read: allowed (and a no-op on the content)
    client.secrets.kv.v2.create_or_update_secret(
        path=spec.REDIS_STATE_PATH, secret=state["data"], cas=state["metadata"]["version"],
        mount_point=KV,
    )  # fmt: skip
    for path in [f"{KV}/data/api/config", f"{spec.DB_MOUNT}/static-creds/{spec.STATIC_ROLE}",
                 f"{KV}/data/shared/redis", "sys/mounts"]:  # fmt: skip
        with pytest.raises(hvac.exceptions.Forbidden):
            client.read(path)
    # an app service's token cannot log in as the rotator
    with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)):
        login(vault_env, spec.role_name(spec.ROTATOR_SA), sa_token(vault_env, "api"))


def test_the_rotator_service_account_may_patch_the_acl_secret_only(
    vault_env: dict[str, str], tmp_path: Path
) -> None:
    from components.data import REDIS_ACL_SECRET, REDIS_SECRET
    from rotator.redis_acl import RotationError
    from rotator.redis_io import KubeSecretSink

    token = tmp_path / "token"
    token.write_text(sa_token(vault_env, spec.ROTATOR_SA, DATA_NS, audience=""))
    ca = Path(vault_env["CE_HOME"]) / "platform" / "pki" / "ca.crt"
    api = "https://127.0.0.1:6443"
    sink = KubeSecretSink(api, token, ca, DATA_NS, REDIS_ACL_SECRET)
    before = sink.read()
    assert before is not None and before.startswith("user default on #")

    def version() -> str:
        got = kubectl(vault_env, "get", "secret", REDIS_ACL_SECRET, "-n", DATA_NS, "-o", "json")
        return str(json.loads(got)["metadata"]["resourceVersion"])

    try:
        sink.write(before + "user probe off\n")
        assert sink.read() == before + "user probe off\n"
        v1 = version()
        sink.write(before + "user probe off\n")  # unchanged text: no write
        assert version() == v1
    finally:
        sink.write(before)
    with pytest.raises(RotationError, match="403"):
        KubeSecretSink(api, token, ca, DATA_NS, REDIS_SECRET).read()


def test_state_holds_no_vault_secret_in_plaintext(
    local_project: LocalProject, vault_env: dict[str, str]
) -> None:
    state = local_project.export_state()
    c = root_client(vault_env)
    secrets = [
        vault_env["VAULT_TOKEN"],
        vault_env["CE_POSTGRES_ADMIN_PASSWORD"],
        vault_env["CE_REDIS_ADMIN_PASSWORD"],
        _redis_app(c)["password"],
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
