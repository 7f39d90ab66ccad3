"""Vault component on both back-ends (pulumi-vault as staging/prod, hvac as the local stack)."""

from __future__ import annotations

import re

import pytest

from components import vault_spec as spec
from components.program import run
from components.vault import PASSWORDS
from components.vault_hvac import dynamic_type
from tests.unit.conftest import (
    PG_PW,
    TOKEN,
    Capture,
    Registered,
    is_secret,
    run_mocked,
    settings_for,
    unsecret,
)
from tests.unit.conftest import program_capture as _program_capture

PROVIDERS = ("pulumi-vault", "hvac")


def program_capture(provider: str) -> Capture:
    return _program_capture("local", 0, vault=True, generator="random", vault_provider=provider)


def of_kind(cap: Capture, provider: str, kind: str) -> list[Registered]:
    return cap.of_type(kind if provider == "pulumi-vault" else dynamic_type(kind))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_kv_v2_mount_and_audit(provider: str) -> None:
    cap = program_capture(provider)
    (kv,) = of_kind(cap, provider, spec.MOUNT)
    assert kv.inputs["type"] == "kv" and kv.inputs["options"] == {"version": "2"}
    (audit,) = of_kind(cap, provider, spec.AUDIT)
    assert audit.inputs["type"] == "file"
    assert audit.inputs["options"]["file_path"] == "stdout"


def test_explicit_provider_from_settings() -> None:
    cap = program_capture("pulumi-vault")
    (prov,) = cap.of_type("pulumi:providers:vault")
    assert prov.inputs["address"] == "http://127.0.0.1:8200"
    assert is_secret(prov.inputs["token"]) and unsecret(prov.inputs["token"]) == TOKEN
    vault_res = [r for r in cap.resources.values() if r.typ.startswith("vault:")]
    assert vault_res and all(r.provider and "vault" in r.provider for r in vault_res)


def test_hvac_resources_carry_the_connection_token_as_a_secret() -> None:
    cap = program_capture("hvac")
    dyn = [r for r in cap.resources.values() if r.typ.startswith("pulumi-python:dynamic/vault")]
    assert len(dyn) == len(
        [
            r
            for r in program_capture("pulumi-vault").resources.values()
            if r.typ.startswith("vault:")
        ]
    )
    for r in dyn:
        assert r.inputs["address"] == "http://127.0.0.1:8200"
        assert is_secret(r.inputs["token"]) and unsecret(r.inputs["token"]) == TOKEN
        assert is_secret(r.inputs["__provider"])
    assert not cap.of_type("pulumi:providers:vault")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_kubernetes_auth_roles_short_ttl(provider: str) -> None:
    cap = program_capture(provider)
    (backend,) = of_kind(cap, provider, spec.AUTH_BACKEND)
    assert backend.inputs["type"] == "kubernetes"
    roles = of_kind(cap, provider, spec.K8S_ROLE)
    bound = {r.inputs["boundServiceAccountNames"][0]: r.inputs for r in roles}
    assert set(bound) == {"api", "workflow-engine", "agent-runtime", spec.ROTATOR_SA}
    for sa, r in bound.items():
        assert r["tokenTtl"] == 900
        assert r["tokenMaxTtl"] == 3600
        ns = "claude-enhancer-data" if sa == spec.ROTATOR_SA else "claude-enhancer"
        assert r["boundServiceAccountNamespaces"] == [ns]
        assert r["tokenNoDefaultPolicy"] is True
        assert r["audience"] == "vault"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_token_review_through_a_reviewer_bound_to_auth_delegator(provider: str) -> None:
    cap = program_capture(provider)
    (binding,) = [
        b
        for b in cap.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        if b.inputs["roleRef"]["name"] == "system:auth-delegator"
    ]
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": spec.REVIEWER_SA, "namespace": "claude-enhancer"}
    ]
    (token,) = [
        s
        for s in cap.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == f"{spec.REVIEWER_SA}-token"
    ]
    assert token.inputs["type"] == "kubernetes.io/service-account-token"
    assert token.inputs["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": spec.REVIEWER_SA
    }
    (config,) = of_kind(cap, provider, spec.K8S_AUTH_CONFIG)
    assert config.inputs["kubernetesHost"] == "https://127.0.0.1:6443"
    assert is_secret(config.inputs["tokenReviewerJwt"])
    assert config.inputs["disableLocalCaJwt"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_policies_least_privilege(provider: str) -> None:
    pols = of_kind(program_capture(provider), provider, spec.POLICY)
    rotator = [p for p in pols if p.inputs["name"] == spec.role_name(spec.ROTATOR_SA)]
    pols = [p for p in pols if p not in rotator]
    assert len(pols) == 3 and len(rotator) == 1
    # the rotator: exactly the app credential and its own state, read + check-and-set writes
    text = rotator[0].inputs["policy"]
    assert re.findall(r'path "([^"]+)"', text) == [
        "claude-enhancer/data/shared/redis-app",
        "claude-enhancer/data/ops/redis-rotation",
    ]
    assert set(re.findall(r"capabilities = \[(.*?)\]", text)) == {'"create", "read", "update"'}
    for p in pols:
        text = p.inputs["policy"]
        assert "*" not in text and "+" not in text
        assert "sudo" not in text
        caps = re.findall(r"capabilities = \[(.*?)\]", text)
        assert caps and all(c == '"read"' for c in caps)
        svc = p.inputs["name"].removeprefix("claude-enhancer-")
        # its own config, the rotated database and Redis credentials; nobody else's paths
        assert re.findall(r'path "([^"]+)"', text) == [
            f"claude-enhancer/data/{svc}/config",
            "claude-enhancer-db/static-creds/ce-app",
            "claude-enhancer/data/shared/redis-app",
        ]
        assert "ops/" not in text  # the rotation state (the pending password) is the rotator's


@pytest.mark.parametrize("provider", PROVIDERS)
def test_database_engine_and_rotating_static_roles(provider: str) -> None:
    cap = program_capture(provider)
    (db,) = of_kind(cap, provider, spec.DB_MOUNT_KIND)
    assert is_secret(db.inputs["postgresqls"])  # the admin password never shows in state
    # Redis is rotated by the rotator (a per-node ACL), not by a Vault connection
    assert "redis" not in db.inputs
    conn = unsecret(db.inputs["postgresqls"])[0]
    assert conn["connectionUrl"] == (
        "postgresql://{{username}}:{{password}}@127.0.0.1:55432/claude_enhancer?sslmode=disable"
    )
    assert conn["allowedRoles"] == ["ce-app"]
    assert conn["username"] == "vault"
    assert unsecret(conn["password"]) == PG_PW
    roles = {r.name: r.inputs for r in of_kind(cap, provider, spec.STATIC_ROLE_KIND)}
    assert set(roles) == {"static-role"}
    assert roles["static-role"]["rotationPeriod"] == 3600
    assert roles["static-role"]["username"] == "ce_app"
    assert roles["static-role"]["dbName"] == "claude-enhancer-pg"


def test_passwords_are_secret_outputs() -> None:
    results: dict[str, bool] = {}

    def prog() -> object:
        st = run(settings_for(vault=True, generator="random", vault_provider="pulumi-vault"))
        assert st.vault is not None

        async def check() -> None:
            assert st.vault is not None and st.vault.provider is not None
            for name, out in st.vault.passwords.items():
                results[name] = await out.is_secret()
            for name, res in st.vault.resources.items():
                if name.startswith("kv-"):
                    results[name] = await res.data_json.is_secret()  # type: ignore[attr-defined]
            results["token"] = await st.vault.provider.token.is_secret()  # type: ignore[attr-defined]

        return check()

    cap: Capture = run_mocked(prog)
    assert set(PASSWORDS) <= set(results)
    assert len(results) == len(PASSWORDS) + 4 + 1  # 4 KV paths, the token
    assert all(results.values()), results
    pws = cap.of_type("random:index/randomPassword:RandomPassword")
    assert len(pws) == len(PASSWORDS)
    assert all(p.inputs["length"] >= 32 for p in pws)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_password_stored_in_kv(provider: str, name: str) -> None:
    kvs = of_kind(program_capture(provider), provider, spec.KV_SECRET)
    path, key, _ = PASSWORDS[name]
    (kv,) = [k for k in kvs if k.inputs["name"] == path]
    assert is_secret(kv.inputs["dataJson"])
    assert key in unsecret(kv.inputs["dataJson"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pods_read_secrets_through_the_vault_agent(provider: str) -> None:
    cap = program_capture(provider)
    deps = cap.of_type("kubernetes:apps/v1:Deployment")
    app = [d for d in deps if d.inputs["metadata"]["namespace"] == "claude-enhancer"]
    assert len(app) == 6
    for d in app:
        svc = d.inputs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        ann = d.inputs["spec"]["template"]["metadata"]["annotations"]
        assert ann["vault.hashicorp.com/agent-inject"] == "true"
        assert ann["vault.hashicorp.com/role"] == f"claude-enhancer-{svc}"
        injected = {v for k, v in ann.items() if "agent-inject-secret-" in k}
        assert injected == set(spec.service_paths(settings_for().vault.kv_path, svc))
        # the Redis credential is KV v2 (no lease): re-read on the configured interval, and
        # rendered as the same {username, password} JSON a static role's file has
        assert ann["vault.hashicorp.com/template-static-secret-render-interval"] == "60s"
        tpl = ann["vault.hashicorp.com/agent-inject-template-redis"]
        assert 'secret "claude-enhancer/data/shared/redis-app"' in tpl
        assert ".Data.data.password" in tpl
        # the agent logs in with the projected vault-audience token the pod already mounts
        vol = ann["vault.hashicorp.com/agent-service-account-token-volume-name"]
        (v,) = [x for x in d.inputs["spec"]["template"]["spec"]["volumes"] if x["name"] == vol]
        assert v["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "vault"
        env = d.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
        assert not [e for e in env if "valueFrom" in e]  # nothing from a Kubernetes Secret


def test_without_vault_no_injector_annotations() -> None:
    cap = _program_capture("local", 0, vault=False)
    for d in cap.of_type("kubernetes:apps/v1:Deployment"):
        # issue 23: the pods carry the prometheus.io merge annotations in every stack (was:
        # no annotations at all); none of the Vault injector's
        ann = d.inputs["spec"]["template"]["metadata"].get("annotations", {})
        assert not [k for k in ann if k.startswith("vault.hashicorp.com/")]


def test_every_vault_object_waits_for_the_audit_device() -> None:
    """Nothing reaches Vault before its audit device exists: every request is audited, and no
    request meets the 500s Vault answers while a just-enabled device sets up."""
    from tests.unit.test_vault_hvac import objects

    objs = objects()
    (audit,) = [o for o in objs if o.kind == spec.AUDIT]
    assert objs[0] is audit and audit.depends_on == ()
    assert len(objs) > 10 and all(audit.name in o.depends_on for o in objs[1:])
