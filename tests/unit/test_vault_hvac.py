"""The hvac dynamic provider's CRUD against an in-memory Vault (paths as Vault's HTTP API names them)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import dill
import pytest

from components import vault_hvac as H
from components import vault_spec as spec
from tests.unit.conftest import settings_for

TOKEN = "root-token-for-tests"
SYS_LISTINGS = ("sys/mounts", "sys/auth", "sys/audit")


class FakeVault:
    """Stores writes by path; sys/{mounts,auth,audit} list what was enabled; disabling a mount drops its paths."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def read(self, path: str) -> dict[str, Any] | None:
        self.calls.append(("read", path))
        if path in SYS_LISTINGS:
            return {
                "data": {
                    p.removeprefix(path + "/") + "/": v
                    for p, v in self.paths.items()
                    if p.startswith(path + "/") and not p.endswith("/tune")
                }
            }
        if "/metadata/" in path:
            path = path.replace("/metadata/", "/data/", 1)
        return {"data": self.paths[path]} if path in self.paths else None

    def write(self, path: str, data: Mapping[str, Any]) -> None:
        self.calls.append(("write", path))
        self.paths[path] = dict(data)

    def delete(self, path: str) -> None:
        self.calls.append(("delete", path))
        if "/metadata/" in path:
            path = path.replace("/metadata/", "/data/", 1)
        self.paths.pop(path, None)
        for prefix in ("sys/mounts/", "sys/auth/"):
            if path.startswith(prefix):
                mount = path.removeprefix(prefix)
                inner = ("auth/" + mount) if prefix == "sys/auth/" else mount
                for p in [
                    p for p in self.paths if p.startswith(inner + "/") or p == path + "/tune"
                ]:
                    del self.paths[p]


def objects() -> list[spec.VaultObject]:
    v = settings_for().vault
    x = spec.VaultInputs(
        app_namespace="claude-enhancer",
        db_admin_password="pg-admin",
        reviewer_jwt="jwt",
        kubernetes_ca_cert="-----BEGIN CERTIFICATE-----",
        kv_data={"api/config": json.dumps({"session_secret": "s3"})},
    )
    return spec.vault_objects(v, x)


def props(obj: spec.VaultObject) -> dict[str, Any]:
    return {**obj.props, "address": "http://127.0.0.1:8200", "token": TOKEN}


def provider(kind: str, fake: FakeVault) -> H.VaultObjectProvider:
    return H.VaultObjectProvider(kind, api_factory=lambda _a, _t: fake)


def test_create_all_then_delete_all_leaves_vault_empty() -> None:
    fake = FakeVault()
    objs = objects()
    ids = {}
    for o in objs:
        res = provider(o.kind, fake).create(props(o))
        ids[o.name] = res.id
        assert res.outs == props(o)  # outputs are the inputs (secret ones marked by the resource)
    assert fake.paths["sys/audit/claude-enhancer-file"] == {
        "type": "file",
        "description": "SOC2 audit trail of every Vault request",
        "options": {"file_path": "stdout", "log_raw": "false"},
    }
    assert fake.paths["sys/mounts/claude-enhancer"]["options"] == {"version": "2"}
    assert fake.paths["claude-enhancer/data/api/config"] == {"data": {"session_secret": "s3"}}
    role = fake.paths["auth/kubernetes/role/claude-enhancer-api"]
    assert role["token_ttl"] == 900 and role["token_policies"] == ["claude-enhancer-api"]
    assert role["bound_service_account_namespaces"] == ["claude-enhancer"]
    assert fake.paths["auth/kubernetes/config"]["token_reviewer_jwt"] == "jwt"
    pg = fake.paths["claude-enhancer-db/config/claude-enhancer-pg"]
    assert pg["plugin_name"] == "postgresql-database-plugin"
    assert pg["username"] == "vault" and pg["password"] == "pg-admin"
    assert pg["allowed_roles"] == ["ce-app"]
    static = fake.paths["claude-enhancer-db/static-roles/ce-app"]
    assert static["rotation_period"] == 3600 and static["db_name"] == "claude-enhancer-pg"
    # the Redis rotator's role: its own ServiceAccount in the data namespace
    rot = fake.paths["auth/kubernetes/role/claude-enhancer-redis-rotator"]
    assert rot["bound_service_account_names"] == ["redis-rotator"]
    assert rot["bound_service_account_namespaces"] == ["claude-enhancer-data"]
    for o in objs:
        read = provider(o.kind, fake).read(ids[o.name], props(o))
        assert read.id == ids[o.name], o.name
    for o in reversed(objs):  # the engine deletes dependents first
        provider(o.kind, fake).delete(ids[o.name], props(o))
    assert fake.paths == {}


def test_refresh_of_an_object_vault_lost_reads_as_gone() -> None:
    fake = FakeVault()
    for o in objects():
        assert provider(o.kind, fake).read("x", props(o)).id is None, o.name


@pytest.mark.parametrize(
    ("kind", "change", "replaces"),
    [
        (spec.POLICY, {"policy": 'path "x" {}'}, []),
        (spec.POLICY, {"name": "other"}, ["name"]),
        (spec.K8S_ROLE, {"tokenTtl": 600}, []),
        (spec.K8S_ROLE, {"roleName": "r2"}, ["roleName"]),
        (spec.MOUNT, {"path": "kv2"}, ["path"]),
        (spec.AUDIT, {"options": {"file_path": "/tmp/a"}}, ["options"]),
        (spec.STATIC_ROLE_KIND, {"rotationPeriod": 7200}, []),
        (spec.KV_SECRET, {"dataJson": "{}"}, []),
        (spec.KV_SECRET, {"address": "http://vault-2:8200"}, ["address"]),
    ],
)
def test_diff_updates_in_place_or_replaces_by_path(
    kind: str, change: dict[str, Any], replaces: list[str]
) -> None:
    (o,) = [o for o in objects() if o.kind == kind][:1]
    d = H.diff_props(kind, props(o), {**props(o), **change})
    assert d.changes is True
    assert d.replaces == replaces
    assert d.delete_before_replace is bool(replaces)  # Vault names objects by path


def test_no_diff_for_the_same_inputs_a_new_token_or_float_numbers() -> None:
    for o in objects():
        olds = {**props(o), "__provider": "old-serialized"}
        news = {**props(o), "token": "a-new-token", "__provider": "new-serialized"}
        if "tokenTtl" in news:
            olds["tokenTtl"] = float(news["tokenTtl"])  # the engine hands numbers back as floats
        assert H.diff_props(o.kind, olds, news).changes is False, o.name


def test_update_rewrites_the_object() -> None:
    fake = FakeVault()
    (o,) = [o for o in objects() if o.name == "static-role"]
    p = provider(o.kind, fake)
    p.create(props(o))
    p.update("id", props(o), {**props(o), "rotationPeriod": 7200})
    assert fake.paths["claude-enhancer-db/static-roles/ce-app"]["rotation_period"] == 7200


def test_update_removes_a_database_connection_the_spec_dropped() -> None:
    """An upgrade from a stack whose database mount had the Redis connection (the old Redis
    static role): the connection must not stay behind in Vault."""
    fake = FakeVault()
    (o,) = [o for o in objects() if o.kind == spec.DB_MOUNT_KIND]
    redis = {"name": "claude-enhancer-redis", "host": "127.0.0.1", "port": 56379}
    old = {**props(o), "redis": [redis]}
    p = provider(o.kind, fake)
    p.create(old)
    assert "claude-enhancer-db/config/claude-enhancer-redis" in fake.paths
    p.update("id", old, props(o))
    assert "claude-enhancer-db/config/claude-enhancer-redis" not in fake.paths
    assert "claude-enhancer-db/config/claude-enhancer-pg" in fake.paths


def test_mount_update_tunes_instead_of_remounting() -> None:
    fake = FakeVault()
    (o,) = [o for o in objects() if o.kind == spec.MOUNT]
    p = provider(o.kind, fake)
    p.create(props(o))
    p.update("id", props(o), {**props(o), "description": "new"})
    assert fake.paths["sys/mounts/claude-enhancer/tune"] == {"description": "new"}
    assert [c for c in fake.calls if c == ("write", "sys/mounts/claude-enhancer")] == [
        ("write", "sys/mounts/claude-enhancer")
    ]


def test_check_requires_the_connection() -> None:
    p = H.VaultObjectProvider(spec.POLICY)
    assert [f.property for f in p.check({}, {"name": "x"}).failures] == ["address", "token"]
    assert p.check({}, {"address": "http://v", "token": "t"}).failures == []


def test_serialized_provider_holds_no_secret() -> None:
    # the provider is pickled into the state: the token and passwords travel only as inputs
    blob = base64.b64encode(dill.dumps(H.VaultObjectProvider(spec.DB_MOUNT_KIND), recurse=True))
    restored = dill.loads(base64.b64decode(blob))
    assert restored.kind == spec.DB_MOUNT_KIND
    raw = dill.dumps(H.VaultObjectProvider(spec.DB_MOUNT_KIND), recurse=True)
    for secret in (TOKEN.encode(), b"pg-admin", b"redis-admin"):
        assert secret not in raw


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Vault kind"):
        H.VaultObjectProvider("vault:index/namespace:Namespace")


def test_snake() -> None:
    assert H.snake("tokenReviewerJwt") == "token_reviewer_jwt"
    assert H.snake("disableLocalCaJwt") == "disable_local_ca_jwt"
    assert H.snake("path") == "path"


class TokenCheckingVault(FakeVault):
    """A FakeVault that accepts one token only (as a re-initialized dev server would)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.used = ""

    def as_factory(self) -> H.ApiFactory:
        def factory(_address: str, token: str) -> H.Api:
            self.used = token
            return self

        return factory

    def read(self, path: str) -> dict[str, Any] | None:
        if self.used != self.token:
            raise H.VaultForbidden(path)
        return super().read(path)


def test_refresh_with_a_stale_state_token_retries_with_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (o,) = [o for o in objects() if o.kind == spec.POLICY][:1]
    fake = TokenCheckingVault("new-root-token")
    p = H.VaultObjectProvider(o.kind, api_factory=fake.as_factory())
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    with pytest.raises(H.VaultForbidden):
        p.read("id", props(o))  # the state's token only
    monkeypatch.setenv("VAULT_TOKEN", "new-root-token")
    assert p.read("id", props(o)).id is None  # the new server has nothing: re-created by `up`
    fake.paths[f"sys/policies/acl/{o.props['name']}"] = {"policy": "x"}
    assert p.read("id", props(o)).id == "id"


def test_a_transient_vault_500_is_retried_then_stands() -> None:
    """Vault answers 500 while it cannot audit (right after the audit device is re-enabled)."""
    import hvac.exceptions

    from components.vault_hvac import RETRY_DELAYS_S, HvacApi

    calls: list[str] = []
    slept: list[float] = []

    def flaky(path: str) -> str:
        calls.append(path)
        if len(calls) < 3:
            raise hvac.exceptions.InternalServerError("internal error")
        return "ok"

    assert HvacApi._call(flaky, "sys/mounts", sleep=slept.append) == "ok"
    assert calls == ["sys/mounts"] * 3 and slept == list(RETRY_DELAYS_S[:2])

    def broken(path: str) -> str:
        raise hvac.exceptions.InternalServerError("internal error")

    slept.clear()
    try:
        HvacApi._call(broken, "sys/mounts", sleep=slept.append)
    except hvac.exceptions.InternalServerError:
        pass
    else:
        raise AssertionError("a lasting 500 must not be swallowed")
    assert slept == list(RETRY_DELAYS_S)
