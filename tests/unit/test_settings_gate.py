"""rollout.gate is accepted and validated with the driver's schema."""

from __future__ import annotations

import pytest

from components import settings as S
from components.settings.rollout import parse_rollout


def _raw(gate: object) -> dict[str, object]:
    return {"claude-enhancer:rollout": {"phase": 0, "gate": gate}}


def test_gate_thresholds_accepted() -> None:
    parse_rollout(
        _raw({"maxErrorRatio": 0.001, "maxP95Ms": 500, "minRequests": 10, "window": "30s"}), None
    )


def test_gate_unknown_key_names_the_key() -> None:
    with pytest.raises(
        S.SettingsError, match=r"claude-enhancer:rollout\.gate: unknown rollout\.gate keys"
    ):
        parse_rollout(_raw({"maxErrors": 1}), None)


def test_gate_must_be_an_object() -> None:
    with pytest.raises(S.SettingsError, match=r"claude-enhancer:rollout\.gate: must be an object"):
        parse_rollout(_raw([1]), None)
