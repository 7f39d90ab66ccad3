"""The rollout phase (canary weight of the VirtualService) advances at most one step at a time.

The engine has no memory of the previous deployment, so the previous phase is
passed in as pack config ``previousPhase`` (the rollout driver / CI writes it
into the policy-pack config file from the stack's ``rolloutPhase`` output).
Without ``previousPhase`` the step cannot be judged; a canary weight that maps to no phase
of the stack's ``phaseWeights`` is always a violation. ``previousPhase``, ``phaseWeights`` and
``allowSkip`` reach the pack through one function, ``rollout.config.policy_settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.phases import PHASE_WEIGHTS, RolloutError, check_transition

from policies.lib.istio import canary_weights
from policies.lib.props import as_bool, as_int, as_list
from policies.lib.rule import Rule, crd_kind

RULE = Rule(
    name="rollout-phase-step",
    description="A rollout may advance only one phase (5% -> 20% -> 50% -> 100%) per deployment unless "
    "allowSkip is set; rollbacks are always allowed.",
    severity="high",
    frameworks={
        "SOC2": ["CC8.1", "CC7.4"],
        "ISO27001": ["A.8.32", "A.5.37"],
        "OWASP": ["A04:2021"],
    },
    remediation="Deploy the next phase only (rollout.phase = previous + 1) after its gate is approved; to "
    "skip deliberately set the pack config allowSkip: true (and rollout.allowSkip in the stack).",
    resource_types=tuple(f"kubernetes:networking.istio.io/{v}:VirtualService" for v in ("v1", "v1beta1", "v1alpha3")),
    config_schema={
        "previousPhase": {
            "type": ["integer", "null"],
            "default": None,
            "description": "Phase deployed before this run (set by CI / the rollout driver).",
        },
        "allowSkip": {
            "type": "boolean",
            "default": False,
            "description": "Allow advancing more than one phase at once.",
        },
        "phaseWeights": {
            "type": "array",
            "items": {"type": "integer"},
            "default": list(PHASE_WEIGHTS),
            "description": "Canary weight per phase (index = phase).",
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
    previous = as_int(cfg.get("previousPhase"))
    weights = [as_int(w) for w in as_list(cfg.get("phaseWeights"))]
    splits = canary_weights(props, str(cfg.get("canarySubset")))
    if not isinstance(splits, dict):
        return []  # no canary route, or unknown until the update runs
    out: list[str] = []
    # A weight that maps to no phase is an error, never a pass: the step cannot be judged.
    for cw in sorted(set(splits.values())):
        if cw not in weights:
            out.append(
                f"canary weight {cw}% is no phase of this stack (phaseWeights {weights}); the rollout step "
                "cannot be judged"
            )
    if previous is None or previous < 0:
        return out
    if not 0 <= previous < len(weights):
        return [*out, f"previousPhase {previous} is not a rollout phase (0..{len(weights) - 1})"]
    allow_skip = as_bool(cfg.get("allowSkip")) is True
    # Every split is judged: a later route must not carry a phase the first one does not.
    for cw in sorted(set(splits.values())):
        if cw not in weights:
            continue
        new = weights.index(cw)
        try:
            check_transition(previous, new, allow_skip=allow_skip)
        except RolloutError:
            out.append(
                f"rollout phase jumps from {previous} ({weights[previous]}%) to {new} ({cw}%); phases advance one "
                f"step at a time (next allowed is {previous + 1}); set allowSkip to override"
            )
    return out
