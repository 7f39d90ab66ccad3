"""Vault resources under either back-end the program supports.

The program registers each Vault object either through pulumi-vault (``vault:<module>/<name>:<Name>``)
or through its hvac dynamic provider, whose type tokens follow one naming rule
(``pulumi-python:dynamic/vault[/<module>]:<Name>``, components/vault_hvac.py) and whose inputs
use pulumi-vault's property names. Rules call :func:`canonical_type` and then read both alike.
"""

from __future__ import annotations

import json
from typing import Any

from .props import UNKNOWN, dig

DYNAMIC_PREFIX = "pulumi-python:dynamic/vault"


def canonical_type(resource_type: str) -> str:
    """The pulumi-vault type token a dynamic Vault type stands for; others are returned unchanged.

    ``pulumi-python:dynamic/vault/kubernetes:AuthBackendRole`` ->
    ``vault:kubernetes/authBackendRole:AuthBackendRole``.
    """
    head, sep, name = resource_type.rpartition(":")
    if not sep or not name or not (head == DYNAMIC_PREFIX or head.startswith(DYNAMIC_PREFIX + "/")):
        return resource_type
    module = head[len(DYNAMIC_PREFIX) :].lstrip("/") or "index"
    return f"vault:{module}/{name[0].lower()}{name[1:]}:{name}"


#: pulumi-vault's generic resources: they write any Vault path (``path`` + ``dataJson``)
GENERIC_TYPES = ("vault:generic/endpoint:Endpoint", "vault:generic/secret:Secret")


def generic_write(resource_type: str, props: Any) -> tuple[str, dict[str, Any]] | None:
    """(path, data) a generic endpoint/secret writes, or None (other types, unknown or unparsable data)."""
    if canonical_type(resource_type) not in GENERIC_TYPES:
        return None
    path, data = dig(props, "path"), dig(props, "dataJson")
    if not isinstance(path, str) or data is UNKNOWN:
        return None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return (path.strip("/"), data) if isinstance(data, dict) else None
