"""``claude-enhancer:app`` and ``claude-enhancer:agents``: images, services, per-container
resources within the SPEC budget, startup probes, the 61-agent registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import (
    PROJECT,
    SERVICES,
    STANDARD_AGENTS,
    SYSTEM_AGENTS,
    Agent,
    AppSettings,
    Namespaces,
    ResourceSettings,
    ServiceSettings,
    SettingsError,
)
from components.settings.namespaces import parse_namespaces
from components.settings.read import DIGEST_RE, NAME_RE, VERSION_RE, resources, top
from contract.configreader import ConfigObject, decode

#: SPEC per-instance budget: < 2 cores, < 4 GB (4e9 bytes = 3814 MiB).
APP_BUDGET_CPU_M = 2000
APP_BUDGET_MEMORY_MI = 3814
#: defaults: requests = SPEC normal usage (1.8 cores, 2.8 GB = 2670 MiB), limits = the budget.
APP_RESOURCES = ResourceSettings(1800, 2670, 1950, 3814)


DEFAULT_SERVICES = {
    "api": {"replicas": 3, "maxReplicas": 9},
    "workflow-engine": {"replicas": 3, "maxReplicas": 6},
    "agent-runtime": {"replicas": 3, "maxReplicas": 9},
}


def parse_agents(raw: Mapping[str, Any]) -> tuple[Agent, ...]:
    key = f"{PROJECT}:agents"
    if key not in raw or raw[key] is None:
        raise SettingsError(f"{key}: required value is missing (the 61-agent registry)")
    value = decode(raw[key])
    if not isinstance(value, list):
        raise SettingsError(f"{key}: must be a list of {{name, kind}} objects")
    agents: list[Agent] = []
    for i, item in enumerate(value):
        o = ConfigObject(f"{key}[{i}]", item, SettingsError) if isinstance(item, Mapping) else None
        if o is None:
            raise SettingsError(f"{key}[{i}]: must be an object with name and kind, got {item!r}")
        name = o.get_str("name", pattern=NAME_RE)
        kind = o.get_str("kind")
        if kind not in ("standard", "system"):
            raise SettingsError(f"{o.key_of('kind')}: must be 'standard' or 'system', got {kind!r}")
        o.done()
        agents.append(Agent(name, kind))
    names = [a.name for a in agents]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SettingsError(f"{key}: duplicate agent names {dup}")
    std = sum(1 for a in agents if a.kind == "standard")
    sys_ = len(agents) - std
    if std != STANDARD_AGENTS or sys_ != SYSTEM_AGENTS:
        raise SettingsError(
            f"{key}: must list {STANDARD_AGENTS} standard + {SYSTEM_AGENTS} system agents, got {std} + {sys_}"
        )
    return tuple(agents)


def parse_app(raw: Mapping[str, Any]) -> AppSettings:
    o = top(raw, "app")
    registry = o.get_str("registry", "registry.local/claude-enhancer")
    stable = o.get_str("stableVersion", "5.0.3", pattern=VERSION_RE)
    canary = o.get_str("canaryVersion", pattern=VERSION_RE)
    svc_o = o.get_obj("services", {})
    services: list[ServiceSettings] = []
    for name in SERVICES:
        s = svc_o.get_obj(name, DEFAULT_SERVICES[name])
        replicas = s.get_int("replicas", DEFAULT_SERVICES[name]["replicas"], lo=1)
        max_r = s.get_int("maxReplicas", max(replicas, DEFAULT_SERVICES[name]["maxReplicas"]), lo=1)
        if max_r < max(replicas, 1):
            raise SettingsError(
                f"{s.key_of('maxReplicas')}: must be >= replicas ({replicas}), got {max_r}"
            )
        dg = s.get_obj("digests", {})
        digests = []
        for version in sorted(dg.data):
            if not VERSION_RE.fullmatch(str(version)):
                raise SettingsError(f"{dg.key_of(str(version))}: not an image version")
            digests.append((str(version), dg.get_str(str(version), pattern=DIGEST_RE)))
        dg.done()
        s.done()
        services.append(ServiceSettings(name, replicas, max_r, digests=tuple(digests)))
    svc_o.done()
    # SPEC per instance: normal usage 1.8 cores / 2.8 GB -> requests (what the scheduler
    # reserves and the HPA targets against); budget < 2 cores / < 4 GB -> limits.
    res = resources(
        o.get_obj("resources", {}),
        APP_RESOURCES,
        max_cpu_m=APP_BUDGET_CPU_M - 1,
        max_memory_mi=APP_BUDGET_MEMORY_MI,
    )
    period = o.get_int("startupPeriodSeconds", 2, lo=1)
    threshold = o.get_int("startupFailureThreshold", 14, lo=1)
    if period * threshold >= 30:
        raise SettingsError(
            f"{o.key_of('startupFailureThreshold')}: startup budget {period}s x {threshold} must stay below 30 s"
        )
    o.done()
    return AppSettings(
        registry, stable, canary, tuple(services), res, period, threshold, parse_agents(raw)
    )


def pods_view(raw: Mapping[str, Any]) -> tuple[AppSettings, Namespaces]:
    """The app's and the namespaces' settings alone (what the pods are labelled from), read
    without the stack's secrets: for the synthetic exporter, which shapes telemetry like theirs."""
    return parse_app(raw), parse_namespaces(raw)
