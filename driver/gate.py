"""Pure promotion gate: PromQL text, thresholds and the verdict.

Nothing here does I/O. :func:`evaluate_gate` takes what Prometheus answered
(:class:`GateInputs`) and the thresholds (:class:`GateThresholds`) and returns
a :class:`GateResult` listing every check with the value seen, the threshold
and why it failed. Missing data is always a failure, never a pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: Istio standard metric names the gate depends on.
REQUESTS_METRIC = "istio_requests_total"
DURATION_BUCKET_METRIC = "istio_request_duration_milliseconds_bucket"
REQUIRED_METRICS: tuple[str, ...] = (REQUESTS_METRIC, DURATION_BUCKET_METRIC)

_WINDOW_RE = re.compile(r"^[0-9]+(ms|s|m|h|d)$")
_MATCHER_RE = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"\s*$')


class GateConfigError(ValueError):
    """Invalid ``rollout.gate`` configuration."""


@dataclass(frozen=True)
class GateThresholds:
    """Gate thresholds (stack config ``claude-enhancer:rollout.gate``).

    SPEC service levels: error rate < 0.1 %, P95 < 500 ms. ``window`` is the
    PromQL range (SPEC error panel: 5 min); ``min_requests`` is the least
    number of canary requests in the window for the verdict to mean anything.
    ``selector`` holds extra label matchers (e.g. ``reporter="destination"``)
    added to every query.
    """

    max_error_ratio: float = 0.001
    max_p95_ms: float = 500.0
    min_requests: float = 100.0
    window: str = "5m"
    selector: str = 'reporter="destination"'
    canary_version: str = "canary"
    stable_version: str = "stable"

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_ratio <= 1:
            raise GateConfigError(
                f"gate.maxErrorRatio must be within 0..1, got {self.max_error_ratio}"
            )
        if self.max_p95_ms <= 0:
            raise GateConfigError(f"gate.maxP95Ms must be > 0, got {self.max_p95_ms}")
        if self.min_requests < 1:
            raise GateConfigError(
                f"gate.minRequests must be >= 1 (no data must never pass), got {self.min_requests}"
            )
        if not _WINDOW_RE.match(self.window):
            raise GateConfigError(
                f"gate.window must be a PromQL duration like 30s or 5m, got {self.window!r}"
            )
        for part in _split_matchers(self.selector):
            if not _MATCHER_RE.match(part):
                raise GateConfigError(f"gate.selector has an invalid label matcher: {part!r}")
        for name, value in (
            ("canaryVersion", self.canary_version),
            ("stableVersion", self.stable_version),
        ):
            if not re.match(r"^[A-Za-z0-9_.-]+$", value):
                raise GateConfigError(f"gate.{name} must be a plain label value, got {value!r}")

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> GateThresholds:
        """Build from the camelCase ``rollout.gate`` config object (all keys optional)."""
        raw = dict(raw or {})
        keys = {
            "maxErrorRatio": "max_error_ratio",
            "maxP95Ms": "max_p95_ms",
            "minRequests": "min_requests",
            "window": "window",
            "selector": "selector",
            "canaryVersion": "canary_version",
            "stableVersion": "stable_version",
        }
        unknown = sorted(set(raw) - set(keys))
        if unknown:
            raise GateConfigError(f"unknown rollout.gate keys: {unknown}; known: {sorted(keys)}")
        kwargs: dict[str, Any] = {}
        for camel, snake in keys.items():
            if camel not in raw:
                continue
            value = raw[camel]
            if snake in ("max_error_ratio", "max_p95_ms", "min_requests"):
                try:
                    value = float(value)
                except (TypeError, ValueError) as exc:
                    raise GateConfigError(f"gate.{camel} must be a number, got {value!r}") from exc
            else:
                value = str(value)
            kwargs[snake] = value
        return cls(**kwargs)


def _split_matchers(selector: str) -> list[str]:
    # label values are plain (no commas inside quotes in our configs)
    return [p for p in (s.strip() for s in selector.split(",")) if p]


def _matchers(thresholds: GateThresholds, version: str, extra: str = "") -> str:
    parts = _split_matchers(thresholds.selector)
    parts.append(f'destination_version="{version}"')
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class GateQueries:
    """The PromQL the gate runs (kept here so tests and docs show the exact text)."""

    error_ratio: str
    p95_ms: str
    request_count: str


def build_queries(thresholds: GateThresholds, version: str | None = None) -> GateQueries:
    """PromQL for the gate over ``thresholds.window`` for ``version`` (default canary)."""
    v = version or thresholds.canary_version
    w = thresholds.window
    all_req = _matchers(thresholds, v)
    err_req = _matchers(thresholds, v, 'response_code=~"5.."')
    return GateQueries(
        error_ratio=(
            f"(sum(rate({REQUESTS_METRIC}{err_req}[{w}])) or vector(0)) / "
            f"sum(rate({REQUESTS_METRIC}{all_req}[{w}]))"
        ),
        p95_ms=(
            f"histogram_quantile(0.95, sum by (le) (rate({DURATION_BUCKET_METRIC}{all_req}[{w}])))"
        ),
        request_count=f"sum(increase({REQUESTS_METRIC}{all_req}[{w}]))",
    )


@dataclass(frozen=True)
class GateInputs:
    """What Prometheus answered. ``None`` = empty result / query failed."""

    metric_names: frozenset[str] | None
    error_ratio: float | None
    p95_ms: float | None
    request_count: float | None
    version: str = "canary"
    errors: tuple[str, ...] = ()  # transport / API errors seen while querying


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | str | None
    threshold: str
    reason: str


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        if self.passed:
            return "gate PASSED: " + "; ".join(c.reason for c in self.checks)
        return "gate FAILED: " + "; ".join(c.reason for c in self.failures)

    def as_audit(self) -> dict[str, Any]:
        """JSON-friendly form for the audit log (NaN/inf rendered as strings)."""
        out = []
        for c in self.checks:
            d = asdict(c)
            if isinstance(c.value, float) and not math.isfinite(c.value):
                d["value"] = str(c.value)
            out.append(d)
        return {"passed": self.passed, "checks": out}


def _usable(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.3f}%"


def evaluate_gate(inputs: GateInputs, thresholds: GateThresholds) -> GateResult:
    """Decide the gate. Every check must pass; absent data fails."""
    checks: list[Check] = []
    v = inputs.version

    # 1. the metrics exist at all (monitoring is up and scraping Istio telemetry)
    if inputs.metric_names is None:
        detail = f" ({'; '.join(inputs.errors)})" if inputs.errors else ""
        checks.append(
            Check(
                "metrics_present",
                False,
                None,
                ", ".join(REQUIRED_METRICS),
                f"metrics_present: could not list metric names from Prometheus{detail}",
            )
        )
    else:
        missing = [m for m in REQUIRED_METRICS if m not in inputs.metric_names]
        checks.append(
            Check(
                "metrics_present",
                not missing,
                ",".join(missing) if missing else "all",
                ", ".join(REQUIRED_METRICS),
                f"metrics_present: missing {missing} in Prometheus"
                if missing
                else "metrics_present: ok",
            )
        )

    # 2. enough traffic to judge
    rc = inputs.request_count
    if not _usable(rc):
        checks.append(
            Check(
                "request_count",
                False,
                rc,
                f">= {thresholds.min_requests:g}",
                f"request_count: no data for {v} over {thresholds.window} "
                f"(need >= {thresholds.min_requests:g} requests)",
            )
        )
    else:
        assert rc is not None
        ok = rc >= thresholds.min_requests
        checks.append(
            Check(
                "request_count",
                ok,
                rc,
                f">= {thresholds.min_requests:g}",
                f"request_count: {rc:.0f} {'>=' if ok else '<'} {thresholds.min_requests:g} "
                f"({v}, {thresholds.window})",
            )
        )

    # 3. error ratio
    er = inputs.error_ratio
    if not _usable(er):
        checks.append(
            Check(
                "error_ratio",
                False,
                er,
                f"< {_fmt_pct(thresholds.max_error_ratio)}",
                f"error_ratio: no data for {v} over {thresholds.window}",
            )
        )
    else:
        assert er is not None
        ok = er < thresholds.max_error_ratio
        checks.append(
            Check(
                "error_ratio",
                ok,
                er,
                f"< {_fmt_pct(thresholds.max_error_ratio)}",
                f"error_ratio: {_fmt_pct(er)} {'<' if ok else '>='} "
                f"{_fmt_pct(thresholds.max_error_ratio)} ({v})",
            )
        )

    # 4. latency
    p95 = inputs.p95_ms
    if not _usable(p95):
        checks.append(
            Check(
                "p95_latency",
                False,
                p95,
                f"< {thresholds.max_p95_ms:g} ms",
                f"p95_latency: no data for {v} over {thresholds.window}",
            )
        )
    else:
        assert p95 is not None
        ok = p95 < thresholds.max_p95_ms
        checks.append(
            Check(
                "p95_latency",
                ok,
                p95,
                f"< {thresholds.max_p95_ms:g} ms",
                f"p95_latency: {p95:.1f} ms {'<' if ok else '>='} "
                f"{thresholds.max_p95_ms:g} ms ({v})",
            )
        )

    for err in inputs.errors:
        checks.append(Check("prometheus_api", False, err, "no errors", f"prometheus_api: {err}"))

    return GateResult(passed=all(c.passed for c in checks), checks=tuple(checks))


def gate_version_for(phase: int, thresholds: GateThresholds) -> str:
    """Which version the gate judges when leaving ``phase``.

    Leaving phase 0 is the GO/NO-GO: the canary carries no traffic yet, so the
    gate checks that monitoring is up and the *stable* version is healthy.
    From phase 1 on it judges the canary.
    """
    return thresholds.stable_version if phase == 0 else thresholds.canary_version
