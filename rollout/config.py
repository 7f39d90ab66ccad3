"""The only parser of ``claude-enhancer:rollout``.

The program's settings, the policy pack's schema defaults and the controller
all read the rollout config through :func:`parse`; the defaults are the phase
table's, so a stack file carries only what differs from them (usually
``phase`` and, for a test stack, shorter bakes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.configreader import ConfigObject, number
from rollout import phases
from rollout.analysis import Analysis, AnalysisConfigError, parse_analysis
from rollout.gate import GateConfigError, GateThresholds

KEY = "claude-enhancer:rollout"
#: default controller evaluation interval: the SPEC's scrape interval
DEFAULT_INTERVAL_S = 15.0
#: after a step, "no data" for the new weight is expected for about two scrapes (a series
#: that did not exist needs two samples before increase() sees it): not yet a breach
DEFAULT_DATA_GRACE_S = 60.0
_KNOWN = (
    "phase",
    "phaseWeights",
    "allowSkip",
    "bakeMinutes",
    "gate",
    "intervalSeconds",
    "dataGraceSeconds",
    "analysis",
)


class RolloutConfigError(phases.RolloutError):
    """Invalid ``claude-enhancer:rollout`` value; the message starts with the full key."""


@dataclass(frozen=True)
class RolloutConfig:
    """``claude-enhancer:rollout``, validated, with the table's defaults filled in."""

    phase: int = 0
    phase_weights: tuple[int, ...] = phases.PHASE_WEIGHTS
    allow_skip: bool = False
    bake_minutes: Mapping[int, float] = field(
        default_factory=lambda: dict(phases.PROD_BAKE_MINUTES)
    )
    """Minimum bake time per phase 1..4 (minutes; fractions allowed for test stacks)."""
    gate: GateThresholds = field(default_factory=GateThresholds)
    interval_s: float = DEFAULT_INTERVAL_S
    """How often the controller evaluates the gate."""
    data_grace_s: float = DEFAULT_DATA_GRACE_S
    """How long after entering a phase missing data is awaited before it fails the gate."""
    analysis: Analysis = field(default_factory=Analysis)
    """The canary judge's settings per phase (``rollout.analysis``)."""

    def weights(self, phase: int | None = None) -> phases.Weights:
        return phases.weights_for(self.phase if phase is None else phase, self.phase_weights)

    def bake_seconds(self, phase: int) -> float:
        phases.validate_phase(phase)
        return 0.0 if phase == 0 else float(self.bake_minutes[phase]) * 60.0

    def step(self, full_replicas: int, phase: int | None = None) -> phases.Step:
        """The resolved step (weights + green api replicas) at ``phase`` (default: current)."""
        return phases.resolve_step(
            self.phase if phase is None else phase, self.phase_weights, full_replicas
        )


def _minutes(value: float) -> float:
    # whole minutes stay ints so exported outputs keep their shape
    return int(value) if float(value).is_integer() else value


def parse(raw: Mapping[str, Any] | str | None) -> RolloutConfig:
    """Parse the raw config value (a JSON string as the engine passes it, or an object).

    Values set with ``pulumi config set --path`` may arrive as strings; both are read.
    Unknown keys are rejected (typos must not silently fall back to defaults).
    """
    o = ConfigObject.from_raw(KEY, raw, RolloutConfigError)
    o.reject_unknown(_KNOWN)

    phase_raw = o.get("phase", 0)
    if isinstance(phase_raw, str) and re.fullmatch(r"[0-9]+", phase_raw.strip()):
        phase_raw = int(phase_raw)  # `config set --path` values can come back as strings
    if isinstance(phase_raw, bool) or not isinstance(phase_raw, int):
        raise o.fail("phase", f"must be an integer 0..{phases.MAX_PHASE}, got {phase_raw!r}")
    phase = phase_raw
    if not 0 <= phase <= phases.MAX_PHASE:
        raise o.fail("phase", f"unknown phase {phase} (phases are 0..{phases.MAX_PHASE})")

    weights_raw = o.get("phaseWeights", list(phases.PHASE_WEIGHTS))
    if not isinstance(weights_raw, list):
        raise o.fail("phaseWeights", f"must be a list of integers, got {weights_raw!r}")
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in weights_raw):
        raise o.fail("phaseWeights", f"must be a list of integers, got {weights_raw!r}")
    weights = tuple(weights_raw)
    try:
        phases.validate_phase_weights(weights)
    except phases.RolloutError as e:
        raise o.fail("phaseWeights", str(e)) from None

    bake_o = o.get_obj("bakeMinutes", {})
    bake_raw: Mapping[Any, Any] = bake_o.data  # a Python caller's keys may be ints
    known_phases = {str(p) for p in phases.PROD_BAKE_MINUTES}
    bad = sorted(str(k) for k in bake_raw if str(k) not in known_phases)
    if bad:
        raise bake_o.fail(bad[0], f"unknown phase (phases with a bake: {sorted(known_phases)})")
    bake: dict[int, float] = {}
    for p, default in phases.PROD_BAKE_MINUTES.items():
        value = bake_raw.get(str(p), bake_raw.get(p, default))
        minutes = number(value, bake_o.key_of(str(p)), RolloutConfigError)
        if minutes < 0:
            raise bake_o.fail(str(p), f"must be >= 0, got {value!r}")
        bake[p] = _minutes(minutes)

    gate_o = o.get_obj("gate", {})
    try:
        gate = GateThresholds.from_config(gate_o.data)
    except GateConfigError as e:
        raise o.fail("gate", str(e)) from None

    interval = o.get_number("intervalSeconds", DEFAULT_INTERVAL_S)
    if interval <= 0:
        raise o.fail("intervalSeconds", f"must be > 0, got {interval}")

    grace = o.get_number("dataGraceSeconds", DEFAULT_DATA_GRACE_S)
    if grace < 0:
        raise o.fail("dataGraceSeconds", f"must be >= 0, got {grace}")

    analysis_o = o.get_obj("analysis", {})
    try:
        analysis = parse_analysis(analysis_o.data)
    except AnalysisConfigError as e:
        raise RolloutConfigError(str(e)) from None  # already names the full key

    return RolloutConfig(
        phase=phase,
        phase_weights=weights,
        allow_skip=o.get_bool("allowSkip", False),
        bake_minutes=bake,
        gate=gate,
        interval_s=interval,
        data_grace_s=grace,
        analysis=analysis,
    )


def policy_settings(
    raw: Mapping[str, Any] | str | None, deployed_phase: int | None
) -> dict[str, Any]:
    """What the policy pack's rollout rules learn about a stack, in their config's words.

    The one channel from a stack to ``rollout-phase-step`` and ``istio-virtualservice-weights``:
    the stack's own ``phaseWeights`` and ``allowSkip`` (parsed like the program parses them) and
    the phase deployed before this run (``None`` or < 0: never deployed).
    """
    cfg = parse(raw)
    out: dict[str, Any] = {"phaseWeights": list(cfg.phase_weights), "allowSkip": cfg.allow_skip}
    if deployed_phase is not None and deployed_phase >= 0:
        out["previousPhase"] = phases.validate_phase(deployed_phase)
    return out
