"""Gate thresholds, the PromQL the gate runs and the pure verdict.

Nothing here does I/O. :func:`evaluate` takes what Prometheus answered
(:class:`GateInputs`), the thresholds and the checks of the phase's gate profile
and returns a :class:`GateResult`: a :class:`Verdict` plus every check with the
value seen, the threshold and a reason with numbers. Missing data is a failure,
never a pass. Hard checks (SLOs) are marked so the controller rolls back on them
whatever the phase's failure action; a statistical judge can later add
``Verdict.INCONCLUSIVE`` without changing the callers' shape.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: Istio standard metric names the gate depends on.
REQUESTS_METRIC = "istio_requests_total"
DURATION_BUCKET_METRIC = "istio_request_duration_milliseconds_bucket"
REQUIRED_METRICS: tuple[str, ...] = (REQUESTS_METRIC, DURATION_BUCKET_METRIC)
#: per-agent health the app exports (1 = loaded and healthy)
AGENT_UP_METRIC = "ce_agent_up"
#: finished workflows by result, exported by the workflow engine's pods
WORKFLOW_RUNS_METRIC = "ce_workflow_runs_total"

_WINDOW_RE = re.compile(r"^[0-9]+(ms|s|m|h|d)$")
_MATCHER_RE = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"\s*$')
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class GateConfigError(ValueError):
    """Invalid ``rollout.gate`` configuration."""


@dataclass(frozen=True)
class GateThresholds:
    """Gate thresholds (stack config ``claude-enhancer:rollout.gate``, all keys optional).

    SPEC service levels: error rate < 0.1 %, P95 < 500 ms, P99 < 1000 ms; 3 of 61
    agents may fail. ``window`` is the PromQL range; ``min_requests`` is the least
    number of requests in the window for the verdict to mean anything.
    ``selector`` holds extra label matchers added to every Istio query.
    """

    max_error_ratio: float = 0.001
    max_p95_ms: float = 500.0
    max_p99_ms: float = 1000.0
    min_requests: float = 100.0
    max_agents_down: float = 3.0
    max_workflow_failure_ratio: float = 0.02
    """SPEC: workflow success >= 98 %."""
    window: str = "5m"
    selector: str = 'reporter="destination"'

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_ratio <= 1:
            raise GateConfigError(
                f"gate.maxErrorRatio must be within 0..1, got {self.max_error_ratio}"
            )
        for name, value in (("maxP95Ms", self.max_p95_ms), ("maxP99Ms", self.max_p99_ms)):
            if value <= 0:
                raise GateConfigError(f"gate.{name} must be > 0, got {value}")
        if self.min_requests < 1:
            raise GateConfigError(
                f"gate.minRequests must be >= 1 (no data must never pass), got {self.min_requests}"
            )
        if not 0 <= self.max_workflow_failure_ratio <= 1:
            raise GateConfigError(
                "gate.maxWorkflowFailureRatio must be within 0..1, "
                f"got {self.max_workflow_failure_ratio}"
            )
        if self.max_agents_down < 0:
            raise GateConfigError(f"gate.maxAgentsDown must be >= 0, got {self.max_agents_down}")
        if not _WINDOW_RE.match(self.window):
            raise GateConfigError(
                f"gate.window must be a PromQL duration like 30s or 5m, got {self.window!r}"
            )
        for part in _split_matchers(self.selector):
            if not _MATCHER_RE.match(part):
                raise GateConfigError(f"gate.selector has an invalid label matcher: {part!r}")

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> GateThresholds:
        """Build from the camelCase ``rollout.gate`` config object (all keys optional)."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise GateConfigError(f"unknown rollout.gate keys: {unknown}; known: {sorted(_KEYS)}")
        kwargs: dict[str, Any] = {}
        for camel, snake in _KEYS.items():
            if camel not in raw:
                continue
            value = raw[camel]
            if snake in _NUMERIC:
                if isinstance(value, bool):
                    raise GateConfigError(f"gate.{camel} must be a number, got {value!r}")
                try:
                    value = float(value)
                except (TypeError, ValueError) as exc:
                    raise GateConfigError(f"gate.{camel} must be a number, got {value!r}") from exc
            else:
                value = str(value)
            kwargs[snake] = value
        return cls(**kwargs)


_KEYS: dict[str, str] = {
    "maxErrorRatio": "max_error_ratio",
    "maxP95Ms": "max_p95_ms",
    "maxP99Ms": "max_p99_ms",
    "minRequests": "min_requests",
    "maxAgentsDown": "max_agents_down",
    "maxWorkflowFailureRatio": "max_workflow_failure_ratio",
    "window": "window",
    "selector": "selector",
}
_NUMERIC = frozenset(
    {
        "max_error_ratio",
        "max_p95_ms",
        "max_p99_ms",
        "min_requests",
        "max_agents_down",
        "max_workflow_failure_ratio",
    }
)


def _split_matchers(selector: str) -> list[str]:
    # label values are plain (no commas inside quotes in our configs)
    return [p for p in (s.strip() for s in selector.split(",")) if p]


@dataclass(frozen=True)
class GateTarget:
    """The track being judged, as Istio labels it.

    ``labels`` are the ``destination_*`` label values Istio's standard metrics carry
    for the track's pods (the program exports them as ``trafficTargets``), so the
    gate selects exactly what the mesh reports; ``pod_labels`` select the app's own
    metrics (Prometheus copies pod labels onto them).
    """

    track: str
    labels: Mapping[str, str]
    pod_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k, v in (*self.labels.items(), *self.pod_labels.items()):
            if not _LABEL_NAME_RE.match(k) or '"' in v or "\\" in v:
                raise GateConfigError(f"gate target {self.track}: bad label {k}={v!r}")
        if not self.labels:
            raise GateConfigError(f"gate target {self.track}: no destination labels")

    @property
    def version(self) -> str:
        return self.labels.get("destination_version", "?")


def track_matchers(selector: str, labels: Mapping[str, str], extra: str = "") -> str:
    """The label matchers (no braces) selecting one track: the gate's selector plus the
    track's Istio labels; the judge's queries use the same text."""
    parts = _split_matchers(selector)
    parts += [f'{k}="{v}"' for k, v in sorted(labels.items())]
    if extra:
        parts.append(extra)
    return ",".join(parts)


def _matchers(selector: str, labels: Mapping[str, str], extra: str = "") -> str:
    return "{" + track_matchers(selector, labels, extra) + "}"


@dataclass(frozen=True)
class GateQueries:
    """The PromQL the gate runs (kept here so tests and docs show the exact text)."""

    error_ratio: str
    p95_ms: str
    p99_ms: str
    request_count: str
    agents_down: str
    workflow_failure_ratio: str
    burn_rate: str
    """The error ratio in SLO error budgets (1 = burning the budget exactly as fast as the SLO
    allows): the rollout report's charts, not a gate check."""
    requests: str
    """The raw counter selectors (no range): the report reads their scrapes to place a fault."""
    errors: str
    buckets: str


def build_queries(thresholds: GateThresholds, target: GateTarget) -> GateQueries:
    """PromQL for the gate over ``thresholds.window`` for ``target``."""
    w = thresholds.window
    all_req = _matchers(thresholds.selector, target.labels)
    err_req = _matchers(thresholds.selector, target.labels, 'response_code=~"5.."')

    def quantile(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (le) (rate({DURATION_BUCKET_METRIC}{all_req}[{w}])))"
        )

    pod = _matchers("", target.pod_labels)  # the app's own metrics carry the pods' labels
    failed_runs = _matchers("", target.pod_labels, 'result="failure"')
    error_ratio = (
        f"(sum(rate({REQUESTS_METRIC}{err_req}[{w}])) or vector(0)) / "
        f"sum(rate({REQUESTS_METRIC}{all_req}[{w}]))"
    )
    return GateQueries(
        error_ratio=error_ratio,
        p95_ms=quantile(0.95),
        p99_ms=quantile(0.99),
        request_count=f"sum(increase({REQUESTS_METRIC}{all_req}[{w}]))",
        # an agent counts as down when no pod of the track reports it up
        agents_down=f"count(max by (agent) ({AGENT_UP_METRIC}{pod}) == 0) or "
        f"(count(max by (agent) ({AGENT_UP_METRIC}{pod})) * 0)",
        workflow_failure_ratio=(
            f"(sum(rate({WORKFLOW_RUNS_METRIC}{failed_runs}[{w}])) or vector(0)) / "
            f"sum(rate({WORKFLOW_RUNS_METRIC}{pod}[{w}]))"
        ),
        burn_rate=f"({error_ratio}) / {thresholds.max_error_ratio:g}",
        requests=f"{REQUESTS_METRIC}{all_req}",
        errors=f"{REQUESTS_METRIC}{err_req}",
        buckets=f"{DURATION_BUCKET_METRIC}{all_req}",
    )


@dataclass(frozen=True)
class GateInputs:
    """What Prometheus answered. ``None`` = empty result / query failed."""

    metric_names: frozenset[str] | None
    error_ratio: float | None
    p95_ms: float | None
    request_count: float | None
    p99_ms: float | None = None
    agents_down: float | None = None
    workflow_failure_ratio: float | None = None
    track: str = "canary"
    errors: tuple[str, ...] = ()  # transport / API errors seen while querying


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | str | None
    threshold: str
    reason: str
    hard: bool = True
    """A hard (SLO) check: failing it always rolls back."""


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def hard_failure(self) -> bool:
        return any(c.hard for c in self.failures)

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
        return {"verdict": self.verdict.value, "passed": self.passed, "checks": out}


def _usable(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.3f}%"


#: every check the gate knows; a phase's profile picks from these
ALL_CHECKS: tuple[str, ...] = (
    "metrics_present",
    "request_count",
    "error_ratio",
    "p95",
    "p99",
    "agents_up",
    "workflows",
)
#: checks whose failure is a soft (phase-action) failure, not an SLO breach
SOFT_CHECKS: frozenset[str] = frozenset({"agents_up", "workflows"})


def _upper(
    name: str, value: float | None, limit: float, fmt: Any, track: str, window: str
) -> Check:
    """``value < limit`` passes; no data fails. Hard unless ``name`` is in SOFT_CHECKS."""
    hard = name not in SOFT_CHECKS
    if not _usable(value):
        return Check(
            name,
            False,
            value,
            f"< {fmt(limit)}",
            f"{name}: no data for {track} over {window}",
            hard=hard,
        )
    assert value is not None
    ok = value < limit
    return Check(
        name,
        ok,
        value,
        f"< {fmt(limit)}",
        f"{name}: {fmt(value)} {'<' if ok else '>='} {fmt(limit)} ({track})",
        hard=hard,
    )


def evaluate(
    inputs: GateInputs, thresholds: GateThresholds, profile: Iterable[str] = ALL_CHECKS
) -> GateResult:
    """Decide the gate over the checks named in ``profile``; absent data fails."""
    wanted = set(profile)
    unknown = wanted - set(ALL_CHECKS)
    if unknown:
        raise GateConfigError(f"unknown gate checks {sorted(unknown)}; known: {ALL_CHECKS}")
    checks: list[Check] = []
    v, w = inputs.track, thresholds.window

    if "metrics_present" in wanted:
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

    if "request_count" in wanted:
        rc = inputs.request_count
        need = f">= {thresholds.min_requests:g}"
        if not _usable(rc):
            checks.append(
                Check(
                    "request_count",
                    False,
                    rc,
                    need,
                    f"request_count: no data for {v} over {w} (need {need} requests)",
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
                    need,
                    f"request_count: {rc:.0f} {'>=' if ok else '<'} {thresholds.min_requests:g} "
                    f"({v}, {w})",
                )
            )

    if "error_ratio" in wanted:
        checks.append(
            _upper("error_ratio", inputs.error_ratio, thresholds.max_error_ratio, _fmt_pct, v, w)
        )
    if "p95" in wanted:
        checks.append(
            _upper("p95", inputs.p95_ms, thresholds.max_p95_ms, lambda x: f"{x:.1f} ms", v, w)
        )
    if "p99" in wanted:
        checks.append(
            _upper("p99", inputs.p99_ms, thresholds.max_p99_ms, lambda x: f"{x:.1f} ms", v, w)
        )
    if "agents_up" in wanted:
        down = inputs.agents_down
        limit = thresholds.max_agents_down
        if not _usable(down):
            checks.append(
                Check(
                    "agents_up",
                    False,
                    down,
                    f"<= {limit:g} down",
                    f"agents_up: no {AGENT_UP_METRIC} data for {v}",
                    hard=False,
                )
            )
        else:
            assert down is not None
            ok = down <= limit
            checks.append(
                Check(
                    "agents_up",
                    ok,
                    down,
                    f"<= {limit:g} down",
                    f"agents_up: {down:.0f} agents down {'<=' if ok else '>'} {limit:g} ({v})",
                    hard=False,
                )
            )

    if "workflows" in wanted:
        checks.append(
            _upper(
                "workflows",
                inputs.workflow_failure_ratio,
                thresholds.max_workflow_failure_ratio,
                _fmt_pct,
                v,
                w,
            )
        )

    for err in inputs.errors:
        checks.append(Check("prometheus_api", False, err, "no errors", f"prometheus_api: {err}"))

    verdict = Verdict.PASS if all(c.passed for c in checks) else Verdict.FAIL
    return GateResult(verdict=verdict, checks=tuple(checks))
