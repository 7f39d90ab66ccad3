from __future__ import annotations

import pytest
from policy_fixtures import (
    DEPLOYMENT,
    UNKNOWN_OBJECT,
    UNKNOWN_STRING,
    container,
    pod_spec,
    wrap_workload,
)
from pulumi_policy import Secret

from policies.lib.props import plain
from policies.rules import no_plaintext_secrets as rule

CM = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
ENTROPIC = "q8Zr4Lk2Vn9Xw1Tb7Mc3Hs6Pd0Gf5Ja"


def cm(data: object) -> dict:
    return plain({"metadata": {"name": "cfg"}, "data": data})


def test_configmap_compliant() -> None:
    data = {
        "LOG_LEVEL": "info",
        "DB_HOST": "pg-rw.data.svc",
        "url": "http://prometheus.monitoring.svc:9090/api",
        "DB_PASSWORD_FILE": "/vault/secrets/db",
        "TOKEN_TTL": "3600",
        "SESSION_TOKEN_TTL": "15m",
        "workflow.yaml": "phases: 8\nparallel: [3]\n",
    }
    assert rule.check(CM, cm(data), {}) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"db_password": "hunter2"},
            ['ConfigMap data key "db_password" looks like a secret; store it in a Secret or Vault'],
        ),
        (
            {"API_KEY": "abc"},
            ['ConfigMap data key "API_KEY" looks like a secret; store it in a Secret or Vault'],
        ),
        (
            {"jwt.secret": "x"},
            ['ConfigMap data key "jwt.secret" looks like a secret; store it in a Secret or Vault'],
        ),
        (
            {"cache": ENTROPIC},
            ['ConfigMap data key "cache" has a high-entropy value that looks like a secret'],
        ),
        (
            {"dsn_url": "postgres://app:s3cr3t@pg:5432/db"},
            ['ConfigMap data key "dsn_url" has a high-entropy value that looks like a secret'],
        ),
        (
            {"cert": "-----BEGIN RSA PRIVATE KEY-----\nMII..."},
            ['ConfigMap data key "cert" has a high-entropy value that looks like a secret'],
        ),
        (
            {"x": Secret("hidden")},
            ['ConfigMap data key "x" holds a Pulumi secret in plaintext; use a Secret or Vault'],
        ),
    ],
)
def test_configmap_violations(data: dict, expected: list[str]) -> None:
    assert rule.check(CM, cm(data), {}) == expected


def test_configmap_whole_data_secret_and_allowed_keys() -> None:
    assert rule.check(CM, cm(Secret({"a": "b"})), {}) == [
        "ConfigMap data is a Pulumi secret; secrets belong in a Secret or Vault, not a ConfigMap"
    ]
    assert (
        rule.check(CM, cm({"public_key": "ssh-ed25519 AAAA"}), {"allowedKeys": ["public_key"]})
        == []
    )


def test_secret_stringdata() -> None:
    ok = plain({"metadata": {"name": "db"}, "stringData": {"password": Secret("pw")}})
    assert rule.check(SECRET, ok, {}) == []
    ok_whole = plain({"metadata": {"name": "db"}, "stringData": Secret({"password": "pw"})})
    assert rule.check(SECRET, ok_whole, {}) == []
    bad = plain(
        {"metadata": {"name": "db"}, "stringData": {"password": "pw", "user": Secret("app")}}
    )
    assert rule.check(SECRET, bad, {}) == [
        'Secret stringData "password" is not a Pulumi secret (wrap it with pulumi.Output.secret)'
    ]
    bad_data = plain({"data": {"token": "c2VjcmV0"}})
    assert rule.check(SECRET, bad_data, {}) == [
        'Secret data "token" is not a Pulumi secret (wrap it with pulumi.Output.secret)'
    ]


def test_secret_engine_wire_format() -> None:
    """Secrets as the engine marshals them (signature-wrapped) are recognised by plain()."""
    sig = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "pw"}
    assert rule.check(SECRET, plain({"stringData": {"password": sig}}), {}) == []


def envs(*env: dict) -> dict:
    return plain(wrap_workload("Deployment", pod_spec(containers=[container(env=list(env))])))


def test_env() -> None:
    assert (
        rule.check(
            DEPLOYMENT,
            envs(
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "a", "key": "b"}}},
                {"name": "TOKEN_TTL_SECONDS", "value": "3600"},
            ),
            {},
        )
        == []
    )
    assert rule.check(DEPLOYMENT, envs({"name": "DB_PASSWORD", "value": "hunter2"}), {}) == [
        'container "app": env "DB_PASSWORD" has a literal value; use valueFrom.secretKeyRef'
    ]
    assert rule.check(DEPLOYMENT, envs({"name": "CACHE_SEED", "value": ENTROPIC}), {}) == [
        'container "app": env "CACHE_SEED" has a high-entropy literal value that looks like a secret'
    ]
    assert rule.check(DEPLOYMENT, envs({"name": "X", "value": Secret("v")}), {}) == [
        'container "app": env "X" carries a secret as a literal value; use valueFrom.secretKeyRef'
    ]


def test_unknown_and_missing() -> None:
    assert rule.check(CM, cm(UNKNOWN_OBJECT), {}) == []
    assert rule.check(CM, cm({"password": UNKNOWN_STRING}), {}) == []
    assert rule.check(CM, {}, {}) == []
    assert rule.check(SECRET, plain({"stringData": {"password": Secret(UNKNOWN_STRING)}}), {}) == []
    assert rule.check(SECRET, plain({"stringData": {"password": UNKNOWN_STRING}}), {}) == []
    assert rule.check(SECRET, {}, {}) == []
    assert rule.check(DEPLOYMENT, envs({"name": "DB_PASSWORD", "value": UNKNOWN_STRING}), {}) == []
    assert rule.check(DEPLOYMENT, {}, {}) == []
