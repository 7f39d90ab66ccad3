"""Per-phase analysis settings for the canary judge (``claude-enhancer:rollout.analysis``).

The rollout config parser (``rollout.config``) hands the ``analysis`` object to
:func:`parse_analysis`; this module parses only that section. Shape (every key
optional; ``phases`` overrides the defaults per phase)::

    analysis:
      confidence: 0.98
      window: 30m
      phases:
        "1": {maxErrorIncrease: 1.0}

Errors name the full config key, e.g.
``claude-enhancer:rollout.analysis.phases.2.confidence: must be ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

KEY = "claude-enhancer:rollout.analysis"
_DURATION_RE = re.compile(r"^([0-9]+)(s|m|h)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}
#: phases whose canary is judged (phase 0 is the GO/NO-GO on stable alone)
JUDGED_PHASES: tuple[int, ...] = (1, 2, 3, 4)


class AnalysisConfigError(ValueError):
    """Invalid analysis setting. ``path`` is relative to the analysis section."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{KEY}.{path}: {detail}" if path else f"{KEY}: {detail}")


def duration_seconds(text: str) -> int:
    """Seconds of a PromQL-style duration (``90s``, ``5m``, ``1h``)."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"must be a duration like 30s, 5m or 1h, got {text!r}")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


@dataclass(frozen=True)
class AnalysisSettings:
    """How the judge compares canary with stable in one phase.

    Defaults suit the SPEC load (1000-1200 RPS) from phase 2 on; phase 1 (5 %)
    usually needs a larger allowed increase or a longer window to reach a
    decision within its 30 min bake (the judge says so: it stays inconclusive).
    """

    interval: str = "1m"
    """How often the controller asks for a judgement."""
    window: str = "1h"
    """Range of the counts judged. The controller caps it at the time since the phase
    began, so the default means "everything since the phase began" for the SPEC's
    bakes (30-45 min plus the extension): the sample only grows while baking."""
    min_sample: int = 100
    """Floor on canary requests; the power analysis may ask for more, never fewer."""
    max_error_increase: float = 0.5
    """Fail when the canary's error rate exceeds stable's by more than this (0.5 = +50 %)."""
    max_latency_increase: float = 0.2
    """Fail when the canary's latency is shifted up by more than this (0.2 = +20 %)."""
    max_burn_rate_increase: float = 0.5
    """Fail when the canary burns the error budget this much faster than stable (in budgets)."""
    confidence: float = 0.98
    """Confidence of a fail; 1 - confidence is the false-fail probability per check."""
    power: float = 0.8
    """Probability of catching a regression twice the allowed increase, once the sample
    is as large as the minimum sample (smaller samples are inconclusive)."""
    error_floor: float = 0.25
    """Baseline error rate for the power analysis when stable's is lower, as a fraction
    of the SLO error budget: a doubling below it stays far inside the SLO."""
    max_extension: str = "15m"
    """How long an inconclusive judgement may extend the bake before pausing for a human."""

    def __post_init__(self) -> None:
        for key, value in (
            ("interval", self.interval),
            ("window", self.window),
            ("maxExtension", self.max_extension),
        ):
            try:
                duration_seconds(value)
            except ValueError as e:
                raise AnalysisConfigError(key, str(e)) from None
        if self.interval_s <= 0:
            raise AnalysisConfigError("interval", f"must be > 0, got {self.interval!r}")
        if self.window_s < self.interval_s:
            raise AnalysisConfigError(
                "window", f"must be at least the interval ({self.interval}), got {self.window!r}"
            )
        if isinstance(self.min_sample, bool) or not isinstance(self.min_sample, int):
            raise AnalysisConfigError("minSample", f"must be an integer, got {self.min_sample!r}")
        if self.min_sample < 1:
            raise AnalysisConfigError(
                "minSample", f"must be >= 1 (no data never passes), got {self.min_sample}"
            )
        for key, increase in (
            ("maxErrorIncrease", self.max_error_increase),
            ("maxLatencyIncrease", self.max_latency_increase),
            ("maxBurnRateIncrease", self.max_burn_rate_increase),
        ):
            if not 0 < increase <= 100:
                raise AnalysisConfigError(key, f"must be > 0 and <= 100, got {increase}")
        if not 0.5 < self.confidence < 1:
            raise AnalysisConfigError("confidence", f"must be > 0.5 and < 1, got {self.confidence}")
        if not 0.5 <= self.power < 1:
            raise AnalysisConfigError("power", f"must be >= 0.5 and < 1, got {self.power}")
        if not 0 < self.error_floor <= 1:
            raise AnalysisConfigError("errorFloor", f"must be > 0 and <= 1, got {self.error_floor}")

    @property
    def interval_s(self) -> int:
        return duration_seconds(self.interval)

    @property
    def window_s(self) -> int:
        return duration_seconds(self.window)

    @property
    def max_extension_s(self) -> int:
        return duration_seconds(self.max_extension)

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


#: camelCase config key -> field name
_KEYS: dict[str, str] = {
    "interval": "interval",
    "window": "window",
    "minSample": "min_sample",
    "maxErrorIncrease": "max_error_increase",
    "maxLatencyIncrease": "max_latency_increase",
    "maxBurnRateIncrease": "max_burn_rate_increase",
    "confidence": "confidence",
    "power": "power",
    "errorFloor": "error_floor",
    "maxExtension": "max_extension",
}
_FIELD_TYPES = {f.name: f.type for f in fields(AnalysisSettings)}


@dataclass(frozen=True)
class Analysis:
    """The parsed section: defaults plus per-phase settings."""

    default: AnalysisSettings = field(default_factory=AnalysisSettings)
    phases: Mapping[int, AnalysisSettings] = field(default_factory=dict)

    def for_phase(self, phase: int) -> AnalysisSettings:
        return self.phases.get(phase, self.default)


def _value(raw: Any, field_name: str, path: str) -> Any:
    kind = _FIELD_TYPES[field_name]
    if kind == "str":
        if not isinstance(raw, str):
            raise AnalysisConfigError(path, f"must be a duration string like 5m, got {raw!r}")
        return raw
    if isinstance(raw, bool):
        raise AnalysisConfigError(path, f"must be a number, got {raw!r}")
    if kind == "int":
        if isinstance(raw, str) and raw.strip().isdigit():
            return int(raw)  # `pulumi config set --path` values can arrive as strings
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if not isinstance(raw, int):
            raise AnalysisConfigError(path, f"must be an integer, got {raw!r}")
        return raw
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise AnalysisConfigError(path, f"must be a number, got {raw!r}") from None


def _settings(raw: Any, base: AnalysisSettings, prefix: str) -> AnalysisSettings:
    if not isinstance(raw, Mapping):
        raise AnalysisConfigError(prefix.rstrip("."), f"must be an object, got {raw!r}")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "phases" and not prefix:
            continue
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS) + ([] if prefix else ["phases"]))
            raise AnalysisConfigError(f"{prefix}{key}", f"unknown setting (known: {known})")
        kwargs[_KEYS[key]] = _value(value, _KEYS[key], f"{prefix}{key}")
    merged = {f.name: getattr(base, f.name) for f in fields(AnalysisSettings)} | kwargs
    try:
        return AnalysisSettings(**merged)
    except AnalysisConfigError as e:
        raise AnalysisConfigError(f"{prefix}{e.path}", e.detail) from None


def parse_analysis(
    raw: Mapping[str, Any] | None, judged_phases: Iterable[int] = JUDGED_PHASES
) -> Analysis:
    """Parse ``claude-enhancer:rollout.analysis`` (``None`` or ``{}``: all defaults).

    Per-phase objects override the section's own keys, which override the
    dataclass defaults. Unknown keys and phases are rejected.
    """
    raw = {} if raw is None else raw
    default = _settings(raw, AnalysisSettings(), "")
    phases_raw = raw.get("phases", {})
    if not isinstance(phases_raw, Mapping):
        raise AnalysisConfigError("phases", f"must be an object, got {phases_raw!r}")
    known = {str(p) for p in judged_phases}
    per_phase: dict[int, AnalysisSettings] = {}
    for key, value in phases_raw.items():
        if str(key) not in known:
            raise AnalysisConfigError(
                f"phases.{key}", f"unknown phase (judged phases: {', '.join(sorted(known))})"
            )
        per_phase[int(key)] = _settings(value, default, f"phases.{key}.")
    return Analysis(default=default, phases=per_phase)
