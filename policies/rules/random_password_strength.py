"""Generated passwords (pulumi-random) are long enough."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, dig
from policies.lib.rule import Rule

RULE = Rule(
    name="random-password-strength",
    description="random.RandomPassword resources must generate passwords of at least minLength characters.",
    severity="medium",
    frameworks={
        "SOC2": ["CC6.1"],
        "ISO27001": ["A.5.17"],
        "OWASP": ["A07:2021", "ASVS V2.1"],
    },
    remediation="Set length >= 32 on random.RandomPassword (the value is stored as a Pulumi secret).",
    resource_types=("random:index/randomPassword:RandomPassword",),
    config_schema={
        "minLength": {"type": "integer", "default": 24, "description": "Minimum generated password length."},
    },
    tags=("secrets",),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if resource_type != "random:index/randomPassword:RandomPassword":
        return []
    minimum = as_int(RULE.resolve_config(config).get("minLength")) or 24
    raw = dig(props, "length")
    if raw is UNKNOWN:
        return []
    n = as_int(raw)
    if n is None or n < minimum:
        return [f"length is {raw if raw is not None else 'unset'}; must be at least {minimum}"]
    return []
