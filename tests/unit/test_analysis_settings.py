"""``claude-enhancer:rollout.analysis``: per-phase judge settings (rollout/analysis.py)."""

from __future__ import annotations

import pytest

from rollout.analysis import (
    AnalysisConfigError,
    AnalysisSettings,
    duration_seconds,
    parse_analysis,
)


def test_absent_section_gives_the_defaults_for_every_phase():
    a = parse_analysis(None)
    assert a == parse_analysis({})
    for phase in (1, 2, 3, 4):
        s = a.for_phase(phase)
        assert s == AnalysisSettings()
        assert (s.confidence, s.max_latency_increase, s.window_s, s.interval_s) == (
            0.98,
            0.2,
            3600,
            60,
        )


def test_phase_overrides_inherit_the_section_keys():
    a = parse_analysis(
        {
            "confidence": 0.99,
            "window": "20m",
            "phases": {"1": {"maxErrorIncrease": 1.0, "window": "30m"}, 3: {"minSample": "500"}},
        }
    )
    p1, p2, p3 = a.for_phase(1), a.for_phase(2), a.for_phase(3)
    assert (p1.confidence, p1.max_error_increase, p1.window) == (0.99, 1.0, "30m")
    assert (p2.confidence, p2.max_error_increase, p2.window) == (0.99, 0.5, "20m")
    assert (p3.min_sample, p3.window) == (500, "20m")
    assert p1.alpha == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"confidnce": 0.9}, "claude-enhancer:rollout.analysis.confidnce: unknown setting"),
        ({"confidence": 1.5}, "claude-enhancer:rollout.analysis.confidence: must be"),
        ({"confidence": True}, "claude-enhancer:rollout.analysis.confidence: must be a number"),
        ({"window": 300}, "claude-enhancer:rollout.analysis.window: must be a duration"),
        ({"window": "5 min"}, "claude-enhancer:rollout.analysis.window: must be a duration"),
        ({"interval": "10m", "window": "5m"}, "claude-enhancer:rollout.analysis.window: must be"),
        ({"minSample": 0}, "claude-enhancer:rollout.analysis.minSample: must be >= 1"),
        ({"minSample": 2.5}, "claude-enhancer:rollout.analysis.minSample: must be an integer"),
        ({"maxLatencyIncrease": 0}, "claude-enhancer:rollout.analysis.maxLatencyIncrease:"),
        ({"phases": {"0": {}}}, "claude-enhancer:rollout.analysis.phases.0: unknown phase"),
        ({"phases": {"5": {}}}, "claude-enhancer:rollout.analysis.phases.5: unknown phase"),
        ({"phases": []}, "claude-enhancer:rollout.analysis.phases: must be an object"),
        ({"phases": {"2": 3}}, "claude-enhancer:rollout.analysis.phases.2: must be an object"),
        (
            {"phases": {"2": {"power": 1}}},
            "claude-enhancer:rollout.analysis.phases.2.power: must be",
        ),
        (
            {"phases": {"2": {"phases": {}}}},
            "claude-enhancer:rollout.analysis.phases.2.phases: unknown setting",
        ),
        (
            {"window": "2m", "phases": {"2": {"interval": "5m"}}},
            "claude-enhancer:rollout.analysis.phases.2.window: must be at least the interval",
        ),
    ],
)
def test_errors_name_the_config_key(raw, key):
    with pytest.raises(AnalysisConfigError) as e:
        parse_analysis(raw)
    assert str(e.value).startswith(key), str(e.value)
    # the rollout config parser can re-home the message under its own key
    assert str(e.value) == f"claude-enhancer:rollout.analysis.{e.value.path}: {e.value.detail}"


def test_judged_phases_come_from_the_caller():
    assert parse_analysis({"phases": {"6": {}}}, judged_phases=range(1, 7)).for_phase(6)
    with pytest.raises(AnalysisConfigError):
        parse_analysis({"phases": {"4": {}}}, judged_phases=(1, 2, 3))


def test_settings_are_frozen_and_validated_when_built_directly():
    s = AnalysisSettings()
    with pytest.raises(AttributeError):
        s.confidence = 0.5  # type: ignore[misc]
    with pytest.raises(AnalysisConfigError, match="maxExtension"):
        AnalysisSettings(max_extension="soon")


def test_durations():
    assert [duration_seconds(d) for d in ("45s", "5m", "2h")] == [45, 300, 7200]
    with pytest.raises(ValueError):
        duration_seconds("1d")
