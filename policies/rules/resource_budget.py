"""Every container sets CPU/memory requests and limits, within the per-instance budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, dig, parse_quantity
from policies.lib.rule import WORKLOAD_TYPES, Rule, containers_of, pod_templates

RULE = Rule(
    name="resource-budget",
    description="Containers must set CPU and memory requests and limits within the per-instance budget "
    "(CPU < 2 cores, memory < 4Gi).",
    severity="medium",
    frameworks={
        "SOC2": ["A1.1", "CC7.2"],
        "ISO27001": ["A.8.6"],
        "CIS": ["K8s 5.7.4"],
        "OWASP": ["K8s Top 10 K05"],
    },
    remediation=(
        "Set resources.requests and resources.limits for cpu and memory on every "
        "container; keep limits below the budget (SPEC: memory < 4 GB, CPU < 2 cores; "
        "targets 2.8 GB / 1.8 cores) and requests <= limits."
    ),
    resource_types=tuple(WORKLOAD_TYPES),
    config_schema={
        "maxCpu": {
            "type": "string",
            "default": "2",
            "description": "Exclusive upper bound for CPU limits/requests (quantity).",
        },
        "maxMemory": {
            "type": "string",
            "default": "4Gi",
            "description": "Exclusive upper bound for memory limits/requests (quantity).",
        },
    },
    tags=("kubernetes", "capacity"),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    bounds = {
        "cpu": (str(cfg["maxCpu"]), parse_quantity(str(cfg["maxCpu"]))),
        "memory": (str(cfg["maxMemory"]), parse_quantity(str(cfg["maxMemory"]))),
    }
    out: list[str] = []
    for template in pod_templates(resource_type, props):
        out += _check_spec(template.where, template.spec, not template.partial, bounds)
    return out


def _check_spec(
    prefix: str, spec: Any, judge_missing: bool, bounds: Mapping[str, tuple[str, float | None]]
) -> list[str]:
    out: list[str] = []
    for fieldname, name, c in containers_of(spec):
        if fieldname == "ephemeralContainers":  # may not set resources
            continue
        where = f'{prefix}{fieldname[:-1]} "{name}"'
        res = dig(c, "resources")
        if res is UNKNOWN:
            continue
        for kind in ("requests", "limits"):
            block = dig(res, kind)
            if block is UNKNOWN:
                continue
            for resource in ("cpu", "memory"):
                raw = dig(block, resource)
                if raw is UNKNOWN:
                    continue
                if raw is None and not judge_missing:
                    continue
                if raw is None:
                    out.append(f"{where}: resources.{kind}.{resource} must be set")
                    continue
                qty = parse_quantity(raw)
                limit_text, limit = bounds[resource]
                if qty is None:
                    out.append(f'{where}: resources.{kind}.{resource} "{raw}" is not a valid quantity')
                elif limit is not None and qty >= limit:
                    out.append(f"{where}: resources.{kind}.{resource} {raw} must be below {limit_text}")
        for resource in ("cpu", "memory"):
            req = parse_quantity(dig(res, "requests", resource))
            lim = parse_quantity(dig(res, "limits", resource))
            if req is not None and lim is not None and req > lim:
                out.append(f"{where}: resources.requests.{resource} must not exceed resources.limits.{resource}")
    return out
