"""``claude-enhancer:rollout``: parsed by :mod:`rollout.config`, plus the transition
from the stack's previous phase."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import PROJECT, RolloutSettings, SettingsError
from contract.configreader import decode
from rollout import config as rollout_config
from rollout import phases


def parse_rollout(raw: Mapping[str, Any], previous: int | None) -> RolloutSettings:
    key = f"{PROJECT}:rollout"
    if key not in raw or raw[key] is None:
        raise SettingsError(f"{key}: required value is missing")
    try:
        cfg = rollout_config.parse(decode(raw[key]))
    except phases.RolloutError as e:
        raise SettingsError(str(e)) from None
    if previous is not None and not 0 <= previous <= phases.MAX_PHASE:
        raise SettingsError(
            f"{key}.phase: the stack's previous rolloutPhase output {previous!r} is not a phase"
        )
    try:
        transition = phases.check_transition(previous, cfg.phase, cfg.allow_skip)
    except phases.RolloutError as e:
        raise SettingsError(f"{key}.phase: {e}") from None
    return RolloutSettings(cfg, previous, transition)


def rollout_view(raw: Mapping[str, Any]) -> rollout_config.RolloutConfig:
    """``rollout`` alone (phase, weights), read without the stack's secrets: for the synthetic
    exporter's traffic split while no VirtualService is applied."""
    return parse_rollout(raw, None).config
