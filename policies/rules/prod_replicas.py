"""In production, replicated workloads run at least 2 replicas (stack: HPA-aware)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_int, as_list, dig, meta_name, meta_namespace
from policies.lib.rule import Rule, StackResource, base_type, is_production

WORKLOADS = {"kubernetes:apps/v1:Deployment": "Deployment", "kubernetes:apps/v1:StatefulSet": "StatefulSet"}
HPA_TYPES = (
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
)

RULE = Rule(
    name="prod-min-replicas",
    description="When the pack config environment is a production environment (any case), Deployments and "
    "StatefulSets (and their patches) must run at least 2 replicas (spec.replicas, or the minReplicas of the HPA "
    "that scales them), spread over nodes or zones.",
    severity="medium",
    scope="stack",
    frameworks={
        "SOC2": ["A1.2"],
        "ISO27001": ["A.8.14"],
    },
    remediation="Set spec.replicas >= 2, or minReplicas >= 2 on the HorizontalPodAutoscaler that owns the "
    "replica count. Workloads scaled to 0 and the canary track (label track=canary, see exemptLabels) are exempt.",
    resource_types=(*WORKLOADS, *HPA_TYPES),
    config_schema={
        "environment": {
            "type": "string",
            "default": "",
            "description": "Environment of the stack being previewed (set by CI/the driver).",
        },
        "prodEnvironments": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["prod", "production"],
            "description": "Environment names treated as production.",
        },
        "minReplicas": {"type": "integer", "default": 2, "description": "Minimum replicas in production."},
        "exemptLabels": {
            "type": "object",
            "default": {"track": "canary"},
            "description": "Workloads whose metadata.labels contain all of these are exempt.",
        },
    },
    tags=("ha", "kubernetes"),
)


def _hpa_min(resources: list[StackResource]) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for r in resources:
        if base_type(r.type) not in HPA_TYPES:
            continue
        ref = dig(r.props, "spec", "scaleTargetRef")
        kind, name = dig(ref, "kind"), dig(ref, "name")
        if isinstance(kind, str) and isinstance(name, str):
            raw = dig(r.props, "spec", "minReplicas")
            out[(meta_namespace(r.props), kind, name)] = 1 if raw is None else raw
    return out


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    if not is_production(cfg.get("environment"), as_list(cfg.get("prodEnvironments"))):
        return []
    exempt = as_dict(cfg.get("exemptLabels"))
    minimum = as_int(cfg.get("minReplicas")) or 2
    hpas = _hpa_min(resources)
    out: list[str] = []
    for r in resources:
        kind = WORKLOADS.get(base_type(r.type))
        if kind is None:
            continue
        patch = base_type(r.type) != r.type
        labels = as_dict(dig(r.props, "metadata", "labels"))
        if exempt and all(labels.get(k) == v for k, v in exempt.items()):
            continue
        ns, name = meta_namespace(r.props), meta_name(r.props)
        raw = dig(r.props, "spec", "replicas")
        if patch and raw is None:
            continue  # a patch that leaves replicas alone
        source = "spec.replicas"
        if (ns, kind, name) in hpas:
            raw, source = hpas[(ns, kind, name)], "HPA minReplicas"
        if raw is UNKNOWN:
            continue
        n = as_int(raw) if raw is not None else 1
        if n == 0 and source == "spec.replicas":
            continue  # scaled to zero: serves no traffic
        if n is None or n < minimum:
            shown = n if n is not None else raw
            unset = " (unset, defaults to 1)" if raw is None else ""
            out.append(
                f"{kind} {ns}/{name} runs {shown} replica(s) per {source}{unset}; production needs at least {minimum}"
            )
        elif not patch and not _spread(dig(r.props, "spec", "template", "spec")):
            out.append(
                f"{kind} {ns}/{name} runs {n} replicas with no topologySpreadConstraints or podAntiAffinity; "
                "they may all land on one node"
            )
    return sorted(out)


#: topology keys that put replicas on different nodes or zones
SPREAD_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region")


def _spread(pod_spec: Any) -> bool:
    """Replicas are kept apart: a spread constraint or an anti-affinity term over nodes/zones (unknown: yes)."""
    if pod_spec is UNKNOWN:
        return True
    terms = as_list(dig(pod_spec, "topologySpreadConstraints"))
    anti = dig(pod_spec, "affinity", "podAntiAffinity")
    terms += as_list(dig(anti, "requiredDuringSchedulingIgnoredDuringExecution"))
    terms += [dig(t, "podAffinityTerm") for t in as_list(dig(anti, "preferredDuringSchedulingIgnoredDuringExecution"))]
    return any(dig(t, "topologyKey") in SPREAD_KEYS or dig(t, "topologyKey") is UNKNOWN for t in terms)
