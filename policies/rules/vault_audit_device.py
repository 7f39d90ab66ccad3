"""A Vault audit device is configured whenever the stack manages Vault (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool, dig
from policies.lib.rule import Rule, StackResource
from policies.lib.vault import canonical_type

AUDIT_TYPE = "vault:index/audit:Audit"

RULE = Rule(
    name="vault-audit-device",
    description="A stack that manages Vault must enable at least one Vault audit device.",
    severity="high",
    scope="stack",
    frameworks={
        "SOC2": ["CC7.2", "CC4.1"],
        "ISO27001": ["A.8.15", "A.8.16"],
        "OWASP": ["A09:2021"],
        "GDPR": ["Art.30", "Art.32"],
    },
    remediation="Add vault.Audit(type='file', options={'file_path': 'stdout'}) (or socket/syslog) to the stack.",
    resource_types=(AUDIT_TYPE,),
    config_schema={
        "alwaysRequire": {
            "type": "boolean",
            "default": False,
            "description": "Require an audit device even when the stack has no vault: resources.",
        },
    },
    tags=("vault", "audit"),
)


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    uses_vault = any(canonical_type(r.type).startswith("vault:") for r in resources)
    if not uses_vault and as_bool(cfg.get("alwaysRequire")) is not True:
        return []
    for r in resources:
        if canonical_type(r.type) == AUDIT_TYPE:
            t = dig(r.props, "type")
            if t is UNKNOWN or (isinstance(t, str) and t):
                return []
    return ["no Vault audit device (vault:index/audit:Audit) is defined"]
