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
    description="A stack that manages Vault must enable at least one Vault audit device that writes somewhere "
    "(not file_path discard or /dev/null, not a socket without address), and none may log secrets in clear "
    "(log_raw, hmac_accessor false).",
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


#: file_path values that Vault (or the OS) throws away: "discard" is Vault's own no-op sink.
_NOWHERE = ("discard", "/dev/null")


def sink_problem(props: Any) -> str | None:
    """Why an audit device records nothing; None when it writes somewhere (or cannot be known yet)."""
    t, options = dig(props, "type"), dig(props, "options")
    if t is UNKNOWN or options is UNKNOWN:
        return None
    if not isinstance(t, str) or not t:
        return "has no type"
    if t == "file":
        target = dig(options, "file_path", default=dig(options, "path"))
        if target is UNKNOWN:
            return None
        if not isinstance(target, str) or not target.strip():
            return "(file) has no options.file_path"
        if target.strip() in _NOWHERE:
            return f'(file) writes to "{target.strip()}", i.e. nowhere'
    elif t == "socket":
        address = dig(options, "address")
        if address is not UNKNOWN and (not isinstance(address, str) or not address.strip()):
            return "(socket) has no options.address"
    return None


def leaks(props: Any) -> str | None:
    """Why a device writes secrets in clear: log_raw true, or hmac_accessor false (Vault docs, audit devices)."""
    options = dig(props, "options")
    if as_bool(dig(options, "log_raw")) is True:
        return "logs request and response values raw (options.log_raw): every secret read lands in the log"
    if as_bool(dig(options, "hmac_accessor")) is False:
        return "logs token accessors in clear (options.hmac_accessor false)"
    return None


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    uses_vault = any(canonical_type(r.type).startswith("vault:") for r in resources)
    if not uses_vault and as_bool(cfg.get("alwaysRequire")) is not True:
        return []
    devices = [r for r in resources if canonical_type(r.type) == AUDIT_TYPE]
    leaking = [f'Vault audit device "{r.name}" {why}' for r in devices if (why := leaks(r.props))]
    return leaking + _sinks(devices)


def _sinks(devices: list[StackResource]) -> list[str]:
    problems = [(r.name, sink_problem(r.props)) for r in devices]
    if any(p is None for _, p in problems):
        return []
    if not devices:
        return ["no Vault audit device (vault:index/audit:Audit) is defined"]
    return [f'Vault audit device "{name}" {problem}; no audit device records requests' for name, problem in problems]
