"""vault-audit-device, vault-policy-least-privilege, vault-k8s-auth-ttl."""

from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_NUMBER, UNKNOWN_STRING

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import vault_audit_device as audit
from policies.rules import vault_k8s_auth_ttl as ttl
from policies.rules import vault_policy_least_privilege as vpol

POLICY = "vault:index/policy:Policy"
ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
AUDIT = "vault:index/audit:Audit"
MOUNT = "vault:index/mount:Mount"


def test_audit_device() -> None:
    mount = StackResource(MOUNT, "kv", plain({"path": "secret", "type": "kv-v2"}))
    dev = StackResource(AUDIT, "audit", plain({"type": "file", "options": {"file_path": "stdout"}}))
    assert audit.check([mount, dev], {}) == []
    assert audit.check([mount], {}) == [
        "no Vault audit device (vault:index/audit:Audit) is defined"
    ]
    assert audit.check([], {}) == []
    assert audit.check([], {"alwaysRequire": True}) == [
        "no Vault audit device (vault:index/audit:Audit) is defined"
    ]
    provider_only = StackResource("pulumi:providers:vault", "p", {})
    assert audit.check([provider_only], {}) == []
    assert (
        audit.check([mount, StackResource(AUDIT, "a", plain({"type": UNKNOWN_STRING}))], {}) == []
    )


GOOD_HCL = """
# app may read its own secrets
path "secret/data/claude-enhancer/app/*" {
  capabilities = ["read", "list"]
}
path "sys/leases/renew" { capabilities = ["update"] }  // renew leases
"""


def pol(text: object) -> dict:
    return plain({"name": "app", "policy": text})


def test_policy_compliant() -> None:
    assert vpol.check(POLICY, pol(GOOD_HCL), {}) == []
    assert vpol.check(POLICY, pol('path "*" { capabilities = ["deny"] }'), {}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'path "sys/mounts" {\n  capabilities = ["read", "sudo"]\n}',
            ['path "sys/mounts" grants sudo'],
        ),
        (
            'path "*" {\n  capabilities = ["read"]\n}',
            ['path "*" is too broad (wildcard or sys root)'],
        ),
        (
            'path "+/data/x" { capabilities = ["read"] }',
            ['path "+/data/x" is too broad (wildcard or sys root)'],
        ),
        (
            'path "sys/*" { capabilities = ["read"] }',
            ['path "sys/*" is too broad (wildcard or sys root)'],
        ),
        (
            'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }',
            [
                'path "*" grants sudo',
                'path "*" is too broad (wildcard or sys root)',
                'path "*" grants create, delete, sudo, update on sys/policy: a token could rewrite policies, auth methods, audit devices or mounts',
            ],
        ),
        (
            GOOD_HCL + '\n/* block\n comment */ path "auth/*" {\n capabilities = ["sudo"]\n}',
            [
                'path "auth/*" grants sudo',
                'path "auth/*" grants sudo on auth/token/create: a token could rewrite policies, auth methods, audit devices or mounts',
            ],
        ),
        (
            '{"path": {"*": {"capabilities": ["read"]}}}',
            ['path "*" is too broad (wildcard or sys root)'],
        ),
    ],
)
def test_policy_violations(text: str, expected: list[str]) -> None:
    assert vpol.check(POLICY, pol(text), {}) == expected


def test_policy_parser_ignores_commented_blocks() -> None:
    text = (
        '# path "*" { capabilities = ["sudo"] }\npath "secret/data/a" { capabilities = ["read"] }'
    )
    assert vpol.parse_policy(text) == [("secret/data/a", ["read"])]


def test_policy_unknown_and_missing() -> None:
    assert vpol.check(POLICY, pol(UNKNOWN_STRING), {}) == []
    assert vpol.check(POLICY, {}, {}) == []
    assert vpol.check(POLICY, pol("not hcl at all"), {}) == []


def role(**props: object) -> dict:
    return plain({"backend": "kubernetes", "roleName": "app", **props})


def test_ttl_compliant_camel_and_snake() -> None:
    assert ttl.check(ROLE, role(tokenTtl=3600, tokenMaxTtl=14400), {}) == []
    assert ttl.check(ROLE, role(token_ttl=600, token_max_ttl="4h"), {}) == []
    assert ttl.check(ROLE, role(tokenTtl=3600.0, tokenMaxTtl=14400.0), {}) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {},
            [
                "token_ttl must be set to a positive number of seconds (at most 3600)",
                "token_max_ttl must be set to a positive number of seconds (at most 86400)",
            ],
        ),
        ({"tokenTtl": 7200, "tokenMaxTtl": 14400}, ["token_ttl is 7200s; must be at most 3600s"]),
        (
            {"tokenTtl": 600, "tokenMaxTtl": 172800},
            ["token_max_ttl is 172800s; must be at most 86400s"],
        ),
        (
            {"tokenTtl": 3600, "tokenMaxTtl": 1800},
            ["token_ttl (3600s) must not exceed token_max_ttl (1800s)"],
        ),
        (
            {"tokenTtl": 0, "tokenMaxTtl": 1800},
            ["token_ttl must be set to a positive number of seconds (at most 3600)"],
        ),
    ],
)
def test_ttl_violations(props: dict, expected: list[str]) -> None:
    assert ttl.check(ROLE, role(**props), {}) == expected


def test_ttl_config_and_unknown() -> None:
    assert ttl.check(ROLE, role(tokenTtl=3600, tokenMaxTtl=14400), {"maxTokenTtl": 900}) == [
        "token_ttl is 3600s; must be at most 900s"
    ]
    assert ttl.check(ROLE, role(tokenTtl=UNKNOWN_NUMBER, tokenMaxTtl=UNKNOWN_NUMBER), {}) == []
    assert ttl.check("vault:index/policy:Policy", {}, {}) == []


# ---------------------------------------------------------------- the hvac dynamic provider's types
# The local stack registers Vault through components/vault_hvac.py: the rules must read those
# resources exactly like pulumi-vault's (fixtures built by the program's own spec builders).


def _program_objects() -> dict[str, tuple[str, dict]]:
    from components import vault_hvac, vault_spec
    from tests.unit.conftest import settings_for

    x = vault_spec.VaultInputs("claude-enhancer", "pw", "jwt", "ca", {"api/config": "{}"})
    return {
        o.name: (vault_hvac.dynamic_type(o.kind), dict(o.props))
        for o in vault_spec.vault_objects(settings_for().vault, x)
    }


def test_rules_read_the_dynamic_vault_types() -> None:
    objs = _program_objects()
    pol_type, pol_props = objs["policy-api"]
    assert pol_type == "pulumi-python:dynamic/vault:Policy"
    assert vpol.check(pol_type, plain(pol_props), {}) == []
    bad = pol('path "*" { capabilities = ["sudo"] }')
    # the dynamic type is judged exactly like pulumi-vault's
    assert vpol.check(pol_type, bad, {}) == vpol.check(POLICY, bad, {})
    assert 'path "*" is too broad (wildcard or sys root)' in vpol.check(pol_type, bad, {})
    role_type, role_props = objs["role-api"]
    assert role_type == "pulumi-python:dynamic/vault/kubernetes:AuthBackendRole"
    assert ttl.check(role_type, plain(role_props), {}) == []
    long_lived = plain({**role_props, "tokenMaxTtl": 172800})
    assert ttl.check(role_type, long_lived, {}) == ttl.check(ROLE, long_lived, {})
    assert "token_max_ttl is 172800s; must be at most 86400s" in ttl.check(
        role_type, long_lived, {}
    )


def test_audit_rule_sees_the_dynamic_audit_device() -> None:
    objs = _program_objects()
    resources = [StackResource(t, n, plain(p)) for n, (t, p) in objs.items()]
    assert audit.check(resources, {}) == []
    without = [r for r in resources if r.name != "audit-file"]
    assert audit.check(without, {}) == [
        "no Vault audit device (vault:index/audit:Audit) is defined"
    ]
