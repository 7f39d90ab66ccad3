"""Vault component (the local stack with vault.enabled=true, passwords.generator=random)."""

from __future__ import annotations

import re

import pulumi
import pytest

from components.program import run
from components.vault import PASSWORDS, policy_document
from tests.unit.conftest import (
    PG_PW,
    TOKEN,
    Capture,
    is_secret,
    run_mocked,
    settings_for,
    unsecret,
)
from tests.unit.conftest import program_capture as _program_capture


def program_capture() -> Capture:
    return _program_capture("local", 0, vault=True, generator="random")


def test_kv_v2_mount_and_audit() -> None:
    cap = program_capture()
    (kv,) = cap.of_type("vault:index/mount:Mount")
    assert kv.inputs["type"] == "kv" and kv.inputs["options"] == {"version": "2"}
    (audit,) = cap.of_type("vault:index/audit:Audit")
    assert audit.inputs["type"] == "file"
    assert audit.inputs["options"]["file_path"] == "stdout"


def test_explicit_provider_from_settings() -> None:
    cap = program_capture()
    (prov,) = cap.of_type("pulumi:providers:vault")
    assert prov.inputs["address"] == "http://127.0.0.1:8200"
    assert is_secret(prov.inputs["token"]) and unsecret(prov.inputs["token"]) == TOKEN
    vault_res = [r for r in cap.resources.values() if r.typ.startswith("vault:")]
    assert vault_res and all(r.provider and "vault" in r.provider for r in vault_res)


def test_kubernetes_auth_roles_short_ttl() -> None:
    cap = program_capture()
    (backend,) = cap.of_type("vault:index/authBackend:AuthBackend")
    assert backend.inputs["type"] == "kubernetes"
    roles = cap.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
    assert {r.inputs["boundServiceAccountNames"][0] for r in roles} == {
        "api",
        "workflow-engine",
        "agent-runtime",
    }
    for r in roles:
        assert r.inputs["tokenTtl"] == 900
        assert r.inputs["tokenMaxTtl"] == 3600
        assert r.inputs["boundServiceAccountNamespaces"] == ["claude-enhancer"]
        assert r.inputs["tokenNoDefaultPolicy"] is True


def test_policies_least_privilege() -> None:
    pols = program_capture().of_type("vault:index/policy:Policy")
    assert len(pols) == 3
    for p in pols:
        text = p.inputs["policy"]
        assert "*" not in text
        assert "sudo" not in text
        caps = re.findall(r"capabilities = \[(.*?)\]", text)
        assert caps and all(c == '"read"' for c in caps)
    assert "api/config" in policy_document("kv", "api")


def test_database_engine_and_rotating_static_role() -> None:
    cap = program_capture()
    (db,) = cap.of_type("vault:database/secretsMount:SecretsMount")
    assert is_secret(db.inputs["postgresqls"])  # the admin password never shows in state
    conn = unsecret(db.inputs["postgresqls"])[0]
    assert conn["connectionUrl"] == (
        "postgresql://{{username}}:{{password}}@127.0.0.1:55432/claude_enhancer?sslmode=disable"
    )
    assert conn["allowedRoles"] == ["ce-app"]
    assert unsecret(conn["password"]) == PG_PW
    (role,) = cap.of_type("vault:database/secretBackendStaticRole:SecretBackendStaticRole")
    assert role.inputs["rotationPeriod"] == 3600
    assert role.inputs["username"] == "ce_app"


def test_passwords_are_secret_outputs() -> None:
    results: dict[str, bool] = {}

    def prog() -> object:
        st = run(settings_for(vault=True, generator="random"))
        assert st.vault is not None

        async def check() -> None:
            assert st.vault is not None
            for name, out in st.vault.passwords.items():
                results[name] = await out.is_secret()
            for i, kv in enumerate(st.vault.kv_secrets):
                results[f"kv{i}"] = await kv.data_json.is_secret()
            results["token"] = await st.vault.provider.token.is_secret()

        return check()

    cap: Capture = run_mocked(prog)
    assert set(PASSWORDS) <= set(results)
    assert all(results.values()), results
    pws = cap.of_type("random:index/randomPassword:RandomPassword")
    assert len(pws) == len(PASSWORDS)
    assert all(p.inputs["length"] >= 32 for p in pws)


@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_password_stored_in_kv(name: str) -> None:
    kvs = program_capture().of_type("vault:kv/secretV2:SecretV2")
    path, key, _ = PASSWORDS[name]
    (kv,) = [k for k in kvs if k.inputs["name"] == path]
    assert is_secret(kv.inputs["dataJson"])
    assert key in unsecret(kv.inputs["dataJson"])


def test_pulumi_output_secret_helper() -> None:
    assert isinstance(pulumi.Output.secret("x"), pulumi.Output)
