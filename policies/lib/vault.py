"""Vault resources under either back-end the program supports.

The program registers each Vault object either through pulumi-vault (``vault:<module>/<name>:<Name>``)
or through its hvac dynamic provider, whose type tokens follow one naming rule
(``pulumi-python:dynamic/vault[/<module>]:<Name>``, components/vault_hvac.py) and whose inputs
use pulumi-vault's property names. Rules call :func:`canonical_type` and then read both alike.
"""

from __future__ import annotations

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
