"""Vault Kubernetes auth roles issue short-lived tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, first
from policies.lib.rule import Rule
from policies.lib.vault import canonical_type

ROLE_TYPE = "vault:kubernetes/authBackendRole:AuthBackendRole"
TOKEN_TYPE = "vault:index/token:Token"

RULE = Rule(
    name="vault-k8s-auth-ttl",
    description="Vault Kubernetes auth backend roles must set token_ttl and token_max_ttl within the "
    "configured bounds; no Vault auth role may issue periodic tokens (token_period) longer than the TTL bound.",
    severity="medium",
    frameworks={
        "SOC2": ["CC6.1", "CC6.2"],
        "ISO27001": ["A.5.17", "A.8.5"],
        "OWASP": ["A07:2021"],
    },
    remediation="Set tokenTtl (e.g. 3600) and tokenMaxTtl (e.g. 14400) on the AuthBackendRole; tokens are "
    "renewed by the Vault agent.",
    resource_types=(
        ROLE_TYPE,
        "vault:appRole/authBackendRole:AuthBackendRole",
        "vault:jwt/authBackendRole:AuthBackendRole",
        "vault:tokenauth/authBackendRole:AuthBackendRole",
        TOKEN_TYPE,
    ),
    config_schema={
        "maxTokenTtl": {"type": "integer", "default": 3600, "description": "Upper bound for token_ttl (s)."},
        "maxTokenMaxTtl": {"type": "integer", "default": 86400, "description": "Upper bound for token_max_ttl (s)."},
    },
    tags=("vault", "authentication"),
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _is_auth_role(resource_type: str) -> bool:
    """Any Vault auth role that issues tokens (kubernetes, approle, jwt, token roles, ...) or a token itself."""
    return resource_type == TOKEN_TYPE or (
        resource_type.startswith("vault:") and resource_type.rsplit(":", 1)[-1].endswith("AuthBackendRole")
    )


def to_seconds(value: Any) -> int | None:
    n = as_int(value)
    if n is not None:
        return n
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", value)
        if m:
            return int(m.group(1)) * _UNITS[m.group(2)]
    return None


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    resource_type = canonical_type(resource_type)  # the hvac provider's types read alike
    if not _is_auth_role(resource_type):
        return []
    cfg = RULE.resolve_config(config)
    out: list[str] = []
    # A periodic token is renewed for ever and ignores token_max_ttl: its period is its real lifetime.
    period_raw = first(props, "tokenPeriod", "token_period", "period")
    period = to_seconds(period_raw)
    bound_ttl = as_int(cfg.get("maxTokenTtl"))
    if period and bound_ttl is not None and period > bound_ttl:
        out.append(f"token_period is {period}s; periodic tokens must renew within {bound_ttl}s (maxTokenTtl)")
    explicit = to_seconds(first(props, "tokenExplicitMaxTtl", "token_explicit_max_ttl"))
    bound_max = as_int(cfg.get("maxTokenMaxTtl"))
    if explicit and bound_max is not None and explicit > bound_max:
        out.append(f"token_explicit_max_ttl is {explicit}s; must be at most {bound_max}s")
    if resource_type != ROLE_TYPE:
        return out  # other auth methods: only what they set is judged
    for field, aliases, bound_key in (
        ("token_ttl", ("tokenTtl", "token_ttl"), "maxTokenTtl"),
        ("token_max_ttl", ("tokenMaxTtl", "token_max_ttl"), "maxTokenMaxTtl"),
    ):
        bound = as_int(cfg.get(bound_key))
        raw = first(props, *aliases)
        if raw is UNKNOWN:
            continue
        seconds = to_seconds(raw)
        if raw is None or seconds is None or seconds <= 0:
            out.append(f"{field} must be set to a positive number of seconds (at most {bound})")
        elif bound is not None and seconds > bound:
            out.append(f"{field} is {seconds}s; must be at most {bound}s")
    ttl = to_seconds(first(props, "tokenTtl", "token_ttl"))
    max_ttl = to_seconds(first(props, "tokenMaxTtl", "token_max_ttl"))
    if ttl and max_ttl and ttl > max_ttl:
        out.append(f"token_ttl ({ttl}s) must not exceed token_max_ttl ({max_ttl}s)")
    return out
