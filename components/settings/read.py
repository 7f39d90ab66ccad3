"""What the section parsers share: a top-level object of the raw config (through the one
config reader, :mod:`contract.configreader`), secrets with their environment fallbacks,
the per-container resources block, and the name patterns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.settings.model import PROJECT, ResourceSettings, Secret, SettingsError
from contract.configreader import ConfigObject

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DURATION_RE = re.compile(r"^[0-9]+(ms|s|m|h)$")


def top(raw: Mapping[str, Any], name: str, required: bool = True) -> ConfigObject:
    """The top-level object ``claude-enhancer:<name>`` (empty when absent and not required)."""
    key = f"{PROJECT}:{name}"
    if key not in raw or raw[key] is None:
        if required:
            raise SettingsError(f"{key}: required value is missing")
        return ConfigObject(key, {}, SettingsError)
    return ConfigObject.from_raw(key, raw[key], SettingsError)


def resources(
    r: ConfigObject,
    d: ResourceSettings,
    max_cpu_m: int | None = None,
    max_memory_mi: int | None = None,
) -> ResourceSettings:
    res = ResourceSettings(
        request_cpu_m=r.get_int("requestCpuMilli", d.request_cpu_m, lo=1),
        request_memory_mi=r.get_int("requestMemoryMi", d.request_memory_mi, lo=1),
        limit_cpu_m=r.get_int("limitCpuMilli", d.limit_cpu_m, lo=1, hi=max_cpu_m),
        limit_memory_mi=r.get_int("limitMemoryMi", d.limit_memory_mi, lo=1, hi=max_memory_mi),
    )
    if res.request_cpu_m > res.limit_cpu_m:
        raise SettingsError(f"{r.key_of('requestCpuMilli')}: must be <= limitCpuMilli")
    if res.request_memory_mi > res.limit_memory_mi:
        raise SettingsError(f"{r.key_of('requestMemoryMi')}: must be <= limitMemoryMi")
    r.done()
    return res


def secret(
    raw: Mapping[str, Any], env: Mapping[str, str], key: str, env_name: str, what: str
) -> Secret:
    v = raw.get(key)
    if isinstance(v, str) and v:
        return Secret(v)
    e = env.get(env_name)
    if e:
        return Secret(e)
    raise SettingsError(
        f"{key}: missing {what}; set it with `pulumi config set --secret {key} ...` or export {env_name}"
    )


def optional_secret(
    raw: Mapping[str, Any], env: Mapping[str, str], key: str, env_name: str
) -> Secret | None:
    try:
        return secret(raw, env, key, env_name, "")
    except SettingsError:
        return None
