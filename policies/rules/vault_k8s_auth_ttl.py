"""Vault Kubernetes auth roles issue short-lived tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_int, as_list, first
from policies.lib.rule import Rule
from policies.lib.vault import canonical_type, generic_write

ROLE_TYPE = "vault:kubernetes/authBackendRole:AuthBackendRole"
TOKEN_TYPE = "vault:index/token:Token"

RULE = Rule(
    name="vault-k8s-auth-ttl",
    description="Vault auth roles (any method, also written through generic endpoints) must set token_ttl and "
    "token_max_ttl within the configured bounds, tokens a ttl, AppRoles an expiring secret_id_ttl; no periodic "
    "token may outlive the TTL bound; Kubernetes roles must not admit every namespace.",
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


def _role_props(resource_type: str, props: Any) -> tuple[str, Any] | None:
    """(canonical type, props) of a token-issuing object: an auth role, a token, or a generic write
    to ``auth/<mount>/role/<name>`` (judged as that mount's role, snake_case fields)."""
    resource_type = canonical_type(resource_type)  # the hvac provider's types read alike
    if _is_auth_role(resource_type):
        return resource_type, props
    written = generic_write(resource_type, props)
    if written and re.fullmatch(r"auth/[^/]+/role/[^/]+", written[0]):
        mount = written[0].split("/")[1]
        kind = "kubernetes" if "kubernetes" in mount or "k8s" in mount else "generic"
        return f"vault:{kind}/authBackendRole:AuthBackendRole", written[1]
    return None


def _bounded(field: str, aliases: tuple[str, ...], bound: int | None, props: Any) -> list[str]:
    raw = first(props, *aliases)
    if raw is UNKNOWN:
        return []
    seconds = to_seconds(raw)
    if raw is None or seconds is None or seconds <= 0:
        return [f"{field} must be set to a positive number of seconds (at most {bound})"]
    if bound is not None and seconds > bound:
        return [f"{field} is {seconds}s; must be at most {bound}s"]
    return []


def _any_sa(props: Any) -> list[str]:
    """A Kubernetes role that any pod of any namespace can log in with."""
    names = [str(n) for n in as_list(first(props, "boundServiceAccountNames", "bound_service_account_names"))]
    raw_spaces = first(props, "boundServiceAccountNamespaces", "bound_service_account_namespaces")
    spaces = [str(n) for n in as_list(raw_spaces)]
    selector = first(props, "boundServiceAccountNamespaceSelector", "bound_service_account_namespace_selector")
    any_ns = any("*" in n for n in spaces) or selector in ("{}", {})
    if any_ns and any(n == "*" for n in names):
        return ["bound to every service account in every namespace: any pod of the cluster can log in"]
    if any_ns:
        return [f"bound_service_account_namespaces {spaces or selector} admits (nearly) every namespace"]
    return []


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    found = _role_props(resource_type, props)
    if found is None:
        return []
    resource_type, props = found
    cfg = RULE.resolve_config(config)
    out: list[str] = []
    # A periodic token is renewed for ever and ignores token_max_ttl: its period is its real lifetime.
    period_raw = first(props, "tokenPeriod", "token_period", "period")
    period = to_seconds(period_raw)
    bound_ttl = as_int(cfg.get("maxTokenTtl"))
    bound_max = as_int(cfg.get("maxTokenMaxTtl"))
    if period and bound_ttl is not None and period > bound_ttl:
        out.append(f"token_period is {period}s; periodic tokens must renew within {bound_ttl}s (maxTokenTtl)")
    explicit = to_seconds(first(props, "tokenExplicitMaxTtl", "token_explicit_max_ttl", "explicitMaxTtl"))
    if explicit and bound_max is not None and explicit > bound_max:
        out.append(f"token_explicit_max_ttl is {explicit}s; must be at most {bound_max}s")
    if resource_type == TOKEN_TYPE:
        # a token without a TTL lives for the mount's max (32 days by default)
        return out if period else out + _bounded("ttl", ("ttl",), bound_ttl, props)
    if resource_type.startswith("vault:tokenauth/"):
        return out  # token roles: only what they set (period / explicit max) is judged
    # every auth method's role issues tokens with the token_* fields (Vault docs, "Token fields")
    if not period:
        out += _bounded("token_ttl", ("tokenTtl", "token_ttl"), bound_ttl, props)
        out += _bounded("token_max_ttl", ("tokenMaxTtl", "token_max_ttl"), bound_max, props)
    ttl = to_seconds(first(props, "tokenTtl", "token_ttl"))
    max_ttl = to_seconds(first(props, "tokenMaxTtl", "token_max_ttl"))
    if ttl and max_ttl and ttl > max_ttl:
        out.append(f"token_ttl ({ttl}s) must not exceed token_max_ttl ({max_ttl}s)")
    if resource_type.startswith("vault:appRole/"):
        secret_ttl = first(props, "secretIdTtl", "secret_id_ttl")
        seconds = to_seconds(secret_ttl)
        if secret_ttl is not UNKNOWN and (seconds is None or seconds <= 0):
            out.append("secret_id_ttl is unset or 0: AppRole secret IDs never expire")
        elif seconds is not None and bound_max is not None and seconds > bound_max:
            out.append(f"secret_id_ttl is {seconds}s; must be at most {bound_max}s")
    if "kubernetes/" in resource_type:
        out += _any_sa(props)
    return out
