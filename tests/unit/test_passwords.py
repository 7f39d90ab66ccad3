"""Generated passwords: the builtin dynamic provider and the program without Vault."""

from __future__ import annotations

import base64
import string

import dill
import pulumi
import pytest

from components import passwords as P
from components.monitoring import PLAIN_CONFIG_SECRET, RECEIVERS_SECRET
from components.program import run
from tests.unit.conftest import (
    GENERATED_PASSWORD,
    Capture,
    is_secret,
    program_capture,
    run_mocked,
    settings_for,
    unsecret,
)

SECRET = "kubernetes:core/v1:Secret"


# ---------------------------------------------------------------- provider (pure)


def b64(data: dict[str, str]) -> dict[str, str]:
    """Decode a Secret's base64 ``data``."""
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_create_generates_from_alphabet() -> None:
    r = P.PasswordProvider().create({"length": 40, "alphabet": "ab"})
    assert r.outs is not None
    assert r.outs["length"] == 40 and r.outs["alphabet"] == "ab"
    assert len(r.outs["result"]) == 40 and set(r.outs["result"]) <= {"a", "b"}
    assert r.id


def test_create_default_alphabet_is_alnum_and_random() -> None:
    p = P.PasswordProvider()
    a = p.create({"length": 32, "alphabet": P.ALPHABET}).outs
    b = p.create({"length": 32, "alphabet": P.ALPHABET}).outs
    assert a is not None and b is not None
    assert set(a["result"]) <= set(string.ascii_letters + string.digits)
    assert a["result"] != b["result"]


def test_create_accepts_engine_floats() -> None:
    outs = P.PasswordProvider().create({"length": 24.0, "alphabet": "xyz"}).outs
    assert outs is not None and outs["length"] == 24 and len(outs["result"]) == 24


@pytest.mark.parametrize(
    ("props", "failure"),
    [
        ({"length": 23, "alphabet": P.ALPHABET}, ("length", "must be >= 24, got 23")),
        ({"length": "32", "alphabet": P.ALPHABET}, ("length", "must be an integer, got '32'")),
        ({"length": 24.5, "alphabet": P.ALPHABET}, ("length", "must be an integer, got 24.5")),
        ({"length": True, "alphabet": P.ALPHABET}, ("length", "must be an integer, got True")),
        (
            {"length": 32, "alphabet": "a"},
            ("alphabet", "must be a string of at least 2 distinct characters"),
        ),
        ({"length": 32, "alphabet": "abca"}, ("alphabet", "must not repeat characters")),
    ],
)
def test_check_and_create_reject_bad_inputs(
    props: dict[str, object], failure: tuple[str, str]
) -> None:
    assert P.check_inputs(dict(props)) == [failure]
    result = P.PasswordProvider().check({}, dict(props))
    assert [(f.property, f.reason) for f in result.failures] == [failure]
    with pytest.raises(ValueError, match=failure[1].replace("(", r"\(")):
        P.PasswordProvider().create(dict(props))


def test_check_normalises_length() -> None:
    r = P.PasswordProvider().check({}, {"length": 32.0, "alphabet": "ab", "__provider": "p"})
    assert r.failures == [] and r.inputs["length"] == 32 and isinstance(r.inputs["length"], int)
    assert r.inputs["__provider"] == "p"


def test_diff_is_stable_for_same_inputs() -> None:
    p = P.PasswordProvider()
    outs = p.create({"length": 32, "alphabet": P.ALPHABET}).outs
    assert outs is not None
    olds = {**outs, "__provider": "old-serialization"}
    news = {"length": 32, "alphabet": P.ALPHABET, "__provider": "new-serialization"}
    d = p.diff("id", olds, news)
    assert d.changes is False and not d.replaces
    # the engine hands numbers back as floats
    d = p.diff("id", {**olds, "length": 32.0}, news)
    assert d.changes is False


@pytest.mark.parametrize(
    ("news", "replaces"),
    [
        ({"length": 48, "alphabet": P.ALPHABET}, ["length"]),
        ({"length": 32, "alphabet": "ab"}, ["alphabet"]),
        ({"length": 40, "alphabet": "ab"}, ["length", "alphabet"]),
    ],
)
def test_diff_replaces_on_length_or_alphabet(news: dict[str, object], replaces: list[str]) -> None:
    olds = {"length": 32, "alphabet": P.ALPHABET, "result": "r" * 32}
    d = P.PasswordProvider().diff("id", olds, news)
    assert d.changes is True and d.replaces == replaces
    assert d.delete_before_replace is False


def test_constructor_rejects_short_length() -> None:
    with pytest.raises(ValueError, match="length must be >= 24, got 16"):
        P.GeneratedPassword("short", 16)


def test_secret_name() -> None:
    assert P.secret_name("api/config") == "claude-enhancer-api-config"
    assert P.secret_name("workflow-engine/config") == "claude-enhancer-workflow-engine-config"


# ---------------------------------------------------------------- program, vault disabled


def test_local_stack_needs_neither_the_vault_nor_the_random_plugin() -> None:
    cap = program_capture()
    assert not [
        r
        for r in cap.resources.values()
        if r.typ.startswith(("vault:", "pulumi:providers:vault", "random:"))
        or r.typ == "pulumi:providers:random"
    ]
    assert cap.of_type("claude-enhancer:index:Vault")  # Vault through the hvac provider
    pws = cap.of_type(GENERATED_PASSWORD)
    assert sorted(p.name for p in pws) == sorted(P.PASSWORDS)
    for p in pws:
        assert p.inputs["length"] == P.PASSWORDS[p.name][2] >= 24
        assert p.inputs["alphabet"] == P.ALPHABET
        assert is_secret(p.inputs["__provider"])
        provider = dill.loads(base64.b64decode(unsecret(p.inputs["__provider"])))
        assert isinstance(provider, P.PasswordProvider)


def test_redis_secret_from_generated_password() -> None:
    cap = program_capture()
    (redis,) = [
        s
        for s in cap.of_type(SECRET)
        if s.inputs["metadata"]["name"] == "claude-enhancer-redis-auth"
    ]
    assert redis.inputs["metadata"]["namespace"] == "claude-enhancer-data"
    assert is_secret(redis.inputs["data"])
    assert b64(unsecret(redis.inputs["data"])) == {"password": "y" * 32}


def test_app_secrets_hold_the_other_passwords() -> None:
    cap = program_capture(vault=False)
    app = {
        s.inputs["metadata"]["name"]: s
        for s in cap.of_type(SECRET)
        if s.inputs["metadata"]["namespace"] == "claude-enhancer"
    }
    assert sorted(app) == [
        "claude-enhancer-agent-runtime-config",
        "claude-enhancer-api-config",
        "claude-enhancer-workflow-engine-config",
    ]
    for s in app.values():
        assert is_secret(s.inputs["data"])
    assert b64(unsecret(app["claude-enhancer-api-config"].inputs["data"])) == {
        "session_secret": "y" * 48,
        "jwt_signing_key": "y" * 64,
    }


@pytest.mark.parametrize("provider", ["pulumi-vault", "hvac"])
def test_vault_enabled_has_no_app_secrets(provider: str) -> None:
    cap = program_capture(vault=True, generator="builtin", vault_provider=provider)
    names = {s.inputs["metadata"]["name"] for s in cap.of_type(SECRET)}
    # the data tier's own Secret, the edge TLS and the reviewer's token (the Alertmanager
    # receivers/config Secrets are monitoring's); no app secret
    assert names - {RECEIVERS_SECRET, PLAIN_CONFIG_SECRET} == {
        "claude-enhancer-redis-auth",
        "claude-enhancer-redis-acl",  # the Redis nodes' ACL: hashes only, the rotator's
        "claude-enhancer-tls",
        "vault-token-reviewer-token",
    }
    assert bool(cap.of_type("pulumi:providers:vault")) == (provider == "pulumi-vault")
    assert len(cap.of_type(GENERATED_PASSWORD)) == len(P.PASSWORDS)
    assert not cap.of_type("random:index/randomPassword:RandomPassword")


@pytest.mark.parametrize("generator", ["builtin", "random"])
def test_password_outputs_are_secret(generator: str) -> None:
    results: dict[str, bool] = {}

    def prog() -> object:
        st = run(settings_for(vault=False, generator=generator))
        assert st.vault is None and st.app_secrets is not None

        async def check() -> None:
            assert st.app_secrets is not None
            for name, out in st.passwords.passwords.items():
                results[name] = await out.is_secret()
            for s in st.app_secrets.secrets:
                results[f"k8s:{s._name}"] = await s.data.is_secret()
            results["redis"] = await st.data.redis_secret.data.is_secret()

        return check()

    cap: Capture = run_mocked(prog)
    assert set(P.PASSWORDS) <= set(results)
    assert all(results.values()), results
    if generator == "random":
        assert len(cap.of_type("random:index/randomPassword:RandomPassword")) == len(P.PASSWORDS)


# the mock monitor does not apply additional_secret_outputs (the engine does): check the option
def test_generated_password_requests_secret_result(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[pulumi.ResourceOptions] = []
    orig = pulumi.CustomResource.__init__

    def spy(
        self: pulumi.CustomResource,
        t: str,
        name: str,
        props: object = None,
        opts: pulumi.ResourceOptions | None = None,
        *a: object,
        **k: object,
    ) -> None:
        if t == GENERATED_PASSWORD and opts is not None:
            seen.append(opts)
        orig(self, t, name, props, opts, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(pulumi.CustomResource, "__init__", spy)
    run_mocked(lambda: P.GeneratedPassword("pw", 32))
    (opts,) = seen
    assert opts.additional_secret_outputs == ["result"]
