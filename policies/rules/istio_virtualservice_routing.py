"""Istio VirtualService weighted routes sum to 100 and the canary weight is a rollout phase weight."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.phases import PHASE_WEIGHTS

from policies.lib.istio import canary_weights, host_splits, pinned_conflicts, route_label, routes
from policies.lib.props import UNKNOWN, as_int, as_list, dig
from policies.lib.rule import Rule, crd_kind

RULE = Rule(
    name="istio-virtualservice-weights",
    description="VirtualService route weights must sum to 100, every weighted split must give the canary subset "
    "the same rollout phase weight, and sticky (pinned) routes may only target subsets the split still serves.",
    severity="high",
    frameworks={
        "SOC2": ["CC8.1", "A1.2"],
        "ISO27001": ["A.8.32"],
        "OWASP": ["A04:2021"],
    },
    remediation="Give every destination of a multi-destination route an explicit weight summing to 100; set "
    "the canary weight from rollout/phases.py (weights_for(phase)) instead of by hand.",
    resource_types=tuple(f"kubernetes:networking.istio.io/{v}:VirtualService" for v in ("v1", "v1beta1", "v1alpha3")),
    config_schema={
        "phaseWeights": {
            "type": "array",
            "items": {"type": "integer"},
            "default": list(PHASE_WEIGHTS),
            "description": "Allowed canary weights, index = rollout phase.",
        },
        "canarySubset": {
            "type": "string",
            "default": "canary",
            "description": "DestinationRule subset name of the new version.",
        },
    },
    tags=("istio", "rollout"),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "networking.istio.io", ["VirtualService"]) is None:
        return []
    cfg = RULE.resolve_config(config)
    out: list[str] = []
    for section, i, route in routes(props):
        dests = dig(route, "route")
        if dests is UNKNOWN:
            continue
        dests = as_list(dests)
        if len(dests) < 2:
            w = as_int(dig(dests[0], "weight")) if dests else None
            if w is not None and w != 100:
                out.append(f"{route_label(section, i, route)}: route weights sum to {w}; must be 100")
            continue
        weights = [dig(d, "weight") for d in dests]
        if any(w is UNKNOWN for w in weights):
            continue
        total = sum(as_int(w) or 0 for w in weights)
        if total != 100:
            out.append(f"{route_label(section, i, route)}: route weights sum to {total}; must be 100")
    subset = str(cfg.get("canarySubset"))
    allowed = sorted({int(w) for w in as_list(cfg.get("phaseWeights")) if as_int(w) is not None})
    splits = canary_weights(props, subset)
    if isinstance(splits, dict):
        for label, cw in splits.items():
            if cw not in allowed:
                out.append(
                    f'{label}: canary subset "{subset}" weight {cw} is not a rollout phase weight '
                    f"({', '.join(str(w) for w in allowed)})"
                )
        if len(set(splits.values())) > 1:
            shown = ", ".join(f"{label} {w}%" for label, w in splits.items())
            out.append(
                f'weighted routes disagree on the canary subset "{subset}" weight ({shown}); every split '
                "must carry the phase's weight"
            )
    out += pinned_conflicts(props, subset)
    for label, hosts in host_splits(props):
        out.append(
            f"{label}: splits traffic by weight between hosts {', '.join(map(str, hosts))}; a canary split "
            f'must be between subsets of one host (stable / "{subset}") so the rollout rules can read its phase'
        )
    return out
