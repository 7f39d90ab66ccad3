"""The canary judge: canary against the SLO and against stable, pass / fail / inconclusive.

Pure: counts in, :class:`Judgement` out; no Pulumi, no I/O, no clock. The
controller queries Prometheus for both tracks over the same window
(:func:`judge_queries`), builds :class:`JudgeInputs` and calls :func:`judge`, then
:func:`decide` turns the verdicts of a bake into wait / extend / pause /
proceed / rollback.

Two layers per check:

* **absolute** (the SLO guard, a hard limit): the canary's error ratio, P95 and
  P99 against the gate's thresholds. Each is an exact one-sided binomial test
  (errors, or requests slower than the limit), so one error in the first 150
  requests is not yet evidence of a breach; a point estimate over the limit
  never passes.
* **relative** (canary against stable over the same window):

  - ``error_ratio_vs_stable``: H0 "canary's error rate <= (1 + maxErrorIncrease) x
    stable's", exact conditional binomial test of two Poisson rates (scipy
    ``binomtest`` on the canary's share of all errors) - exact for sparse counts;
  - ``latency_vs_stable``: H0 "canary's latency <= stable's x (1 + maxLatencyIncrease)",
    Mann-Whitney U on the histogram buckets (ties = same bucket), the stable
    histogram scaled by the allowed increase with Prometheus' in-bucket linear
    interpolation; a Hodges-Lehmann-style confidence interval for the shift
    factor comes from inverting the same test;
  - ``burn_rate_vs_stable``: H0 "canary's burn rate <= stable's + maxBurnRateIncrease"
    (burn rate = error ratio / SLO error budget), scipy's E-test for two Poisson
    means (``poisson_means_test``).

A check fails when its test rejects at the configured confidence. It passes
only when it did not fail *and* the canary has served at least the minimum
sample: the requests the test needs to catch, with the configured power, a
regression twice the allowed increase at the canary's current weight (from
the power of the test, never a fixed number; ``minSample`` is only a floor).
Otherwise it is inconclusive. The judgement is fail if any check fails,
inconclusive if any is inconclusive, pass only if all pass.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import optimize, stats

from rollout.analysis import AnalysisSettings
from rollout.gate import DURATION_BUCKET_METRIC, REQUESTS_METRIC

#: the gate's point-estimate checks that the judge's absolute layer replaces in phases 1-4
SLO_CHECKS: tuple[str, ...] = ("error_ratio", "p95", "p99")
#: what each check's value and threshold are in (``/metrics`` carries no unit; the status
#: view reads it here)
CHECK_UNITS: dict[str, str] = {
    "error_ratio": "ratio",
    "p95": "ms",
    "p99": "ms",
    "error_ratio_vs_stable": "x stable",
    "latency_vs_stable": "x stable",
    "burn_rate_vs_stable": "budgets",
}


class SloLimits(Protocol):
    """The absolute limits (the gate's thresholds, ``rollout.gate``)."""

    @property
    def max_error_ratio(self) -> float: ...
    @property
    def max_p95_ms(self) -> float: ...
    @property
    def max_p99_ms(self) -> float: ...


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Layer(enum.StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class TrackCounts:
    """One track over the window, as ``increase()`` returns it.

    ``buckets``: (le, cumulative count) ascending, ending with ``+Inf``. Counts
    from ``increase()`` are extrapolated floats; the tests round them.
    """

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        # errors > requests can happen by a hair: increase() extrapolates each series
        # on its own; ``k`` clamps it. Negative counts are a query bug.
        if self.requests < 0 or self.errors < 0:
            raise ValueError(f"bad counts: {self.errors} errors of {self.requests} requests")
        les = [le for le, _ in self.buckets]
        if les != sorted(les) or (les and not math.isinf(les[-1])):
            raise ValueError("buckets must ascend by le and end with +Inf")

    @classmethod
    def from_prometheus(
        cls, requests: float, errors: float, buckets_by_le: Mapping[str, float]
    ) -> TrackCounts:
        """From ``sum by (le)`` results keyed by the ``le`` label text (``"+Inf"`` included)."""
        pairs = sorted((float(le), float(v)) for le, v in buckets_by_le.items())
        return cls(requests, errors, tuple(pairs))

    @property
    def n(self) -> int:
        return round(self.requests)

    @property
    def k(self) -> int:
        return min(round(self.errors), self.n)


@dataclass(frozen=True)
class JudgeInputs:
    canary: TrackCounts
    stable: TrackCounts
    weight: float
    """Canary traffic share in percent (the phase's weight)."""
    window: str
    """The range the counts cover (for the explanation)."""


@dataclass(frozen=True)
class JudgeQueries:
    """PromQL for one track; ``increase`` so the judge gets counts, not rates."""

    requests: str
    errors: str
    buckets: str


def judge_queries(matchers: str, window: str) -> JudgeQueries:
    """PromQL for one track; ``matchers`` is the track's label matchers without braces
    (e.g. the gate's selector plus ``destination_version="canary"``)."""
    m = matchers.strip().strip(",")
    err = f'{m},response_code=~"5.."' if m else 'response_code=~"5.."'
    return JudgeQueries(
        requests=f"sum(increase({REQUESTS_METRIC}{{{m}}}[{window}]))",
        errors=f"sum(increase({REQUESTS_METRIC}{{{err}}}[{window}])) or vector(0)",
        buckets=f"sum by (le) (increase({DURATION_BUCKET_METRIC}{{{m}}}[{window}]))",
    )


#: ``query(promql)`` -> the ``result`` list of an instant vector query, as Prometheus'
#: HTTP API returns it (``[{"metric": {...}, "value": [ts, "1.5"]}, ...]``).
QueryFn = Callable[[str], Sequence[Mapping[str, Any]]]


def _value(sample: Mapping[str, Any]) -> float:
    v = float(sample["value"][1])
    return v if math.isfinite(v) else 0.0  # increase() over no data answers NaN


def collect_track(query: QueryFn, matchers: str, window: str) -> TrackCounts:
    """One track's counts over ``window`` through the injected ``query`` (errors propagate)."""
    q = judge_queries(matchers, window)
    requests = sum(_value(r) for r in query(q.requests))
    errors = sum(_value(r) for r in query(q.errors))
    buckets = {
        str(r["metric"]["le"]): _value(r) for r in query(q.buckets) if "le" in r.get("metric", {})
    }
    return TrackCounts.from_prometheus(requests, errors, buckets)


def collect_inputs(
    query: QueryFn, canary_matchers: str, stable_matchers: str, window: str, weight: float
) -> JudgeInputs:
    """Both tracks over the same ``window``: what :func:`judge` needs."""
    return JudgeInputs(
        canary=collect_track(query, canary_matchers, window),
        stable=collect_track(query, stable_matchers, window),
        weight=weight,
        window=window,
    )


# --------------------------------------------------------------------------- histograms


def _grid(buckets: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    les = np.array([le for le, _ in buckets], dtype=float)
    cum = np.maximum.accumulate(np.array([c for _, c in buckets], dtype=float))
    return les, cum


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile``: linear within the bucket, lowest bucket from 0."""
    if not buckets:
        return math.nan
    les, cum = _grid(buckets)
    total = cum[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    i = int(np.searchsorted(cum, rank, side="left"))
    if i >= len(les) - 1:  # the +Inf bucket: Prometheus answers the highest finite bound
        return float(les[-2]) if len(les) > 1 else math.nan
    lower = 0.0 if i == 0 else float(les[i - 1])
    below = 0.0 if i == 0 else float(cum[i - 1])
    in_bucket = float(cum[i]) - below
    if in_bucket <= 0:
        return float(les[i])
    return float(lower + (float(les[i]) - lower) * (rank - below) / in_bucket)


def _cum_at(les: np.ndarray, cum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative count at ``x`` for the shift test: log-linear inside a bucket.

    Istio's buckets grow geometrically (100, 250, 500 ms) and latency is
    right-skewed, so requests spread evenly in log(latency) within a bucket, the
    assumption Prometheus makes for native histograms' exponential buckets.
    Linear interpolation (classic ``histogram_quantile``) understates shifts:
    +30 % reads as +21 % on the scenarios, log-linear as +29 %. The lowest bucket
    (0..0.5 ms) is linear; beyond the last finite bound the count is flat.
    """
    first = float(les[0])
    log_x = np.log(np.maximum(x, first))
    inner = np.interp(log_x, np.log(les[:-1]), cum[:-1])
    out: np.ndarray = np.where(x < first, cum[0] * np.clip(x, 0.0, None) / first, inner)
    return out


def _scaled_counts(buckets: Sequence[tuple[float, float]], factor: float) -> np.ndarray:
    """Per-bucket counts of ``latency x factor`` on the same ``le`` grid."""
    les, cum = _grid(buckets)
    scaled = _cum_at(les, cum, les[:-1] / factor)
    full = np.concatenate((scaled, [cum[-1]]))
    return np.diff(np.concatenate(([0.0], full)))


def _counts(buckets: Sequence[tuple[float, float]]) -> np.ndarray:
    return _scaled_counts(buckets, 1.0)


@dataclass(frozen=True)
class MannWhitney:
    u: float
    """U of the first sample: pairs where it is larger, ties counted half."""
    z: float
    p_greater: float
    """One-sided p-value for "the first sample is stochastically larger"."""


def grouped_mannwhitney(x: np.ndarray, y: np.ndarray) -> MannWhitney:
    """Mann-Whitney U for two samples given as counts on a common ordered grid.

    Same statistic, tie correction and continuity correction as
    ``scipy.stats.mannwhitneyu(..., method="asymptotic")`` on the expanded samples
    (tests check the equality); computed from the counts because the expanded
    samples hold millions of requests.
    """
    n1, n2 = float(x.sum()), float(y.sum())
    n = n1 + n2
    if n1 <= 0 or n2 <= 0:
        return MannWhitney(math.nan, math.nan, 1.0)
    below_y = np.concatenate(([0.0], np.cumsum(y)[:-1]))
    u = float(np.sum(x * (below_y + 0.5 * y)))
    t = x + y
    tie_term = float(np.sum(t**3 - t))
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return MannWhitney(u, 0.0, 1.0)
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return MannWhitney(u, z, float(stats.norm.sf(z)))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """One check, with every number behind it."""

    name: str
    layer: Layer
    outcome: Outcome
    value: float
    """The judged figure (canary's ratio / quantile, canary:stable ratio, shift, burn difference)."""
    threshold: float
    unit: str
    canary: float
    """The canary's own figure (error ratio, quantile, burn rate)."""
    stable: float | None
    canary_n: int
    stable_n: int | None
    min_sample: float
    """Canary requests needed for a pass (power analysis; ``minSample`` is the floor)."""
    p_value: float
    ci: tuple[float, float]
    """Interval for ``value``; its lower end is the one-sided bound at ``confidence``."""
    confidence: float
    window: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer.value,
            "outcome": self.outcome.value,
            "value": _json(self.value),
            "threshold": _json(self.threshold),
            "unit": self.unit,
            "canary": _json(self.canary),
            "stable": _json(self.stable),
            "canary_n": self.canary_n,
            "stable_n": self.stable_n,
            "min_sample": _json(self.min_sample),
            "p_value": _json(self.p_value),
            "ci": [_json(self.ci[0]), _json(self.ci[1])],
            "confidence": self.confidence,
            "window": self.window,
            "text": self.text,
        }


def _json(x: float | None) -> float | str | None:
    if x is None:
        return None
    return float(x) if math.isfinite(x) else str(x)


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    checks: tuple[CheckResult, ...]
    window: str
    weight: float
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.outcome is Outcome.FAIL)

    @property
    def hard_failure(self) -> bool:
        """An SLO (absolute) check failed: roll back whatever the phase's failure action."""
        return any(c.layer is Layer.ABSOLUTE for c in self.failures)

    @property
    def min_sample(self) -> float:
        """Canary requests needed before every check can pass."""
        return max((c.min_sample for c in self.checks), default=0.0)

    def summary(self) -> str:
        shown = (
            self.checks
            if self.outcome is Outcome.PASS
            else tuple(c for c in self.checks if c.outcome is self.outcome)
        )
        return f"judge {self.outcome.value.upper()}: " + "; ".join(c.text for c in shown)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the audit log and the webhook (non-finite numbers as text)."""
        s = self.settings
        return {
            "outcome": self.outcome.value,
            "hard_failure": self.hard_failure,
            "window": self.window,
            "weight": self.weight,
            "min_sample": _json(self.min_sample),
            "settings": {
                "confidence": s.confidence,
                "power": s.power,
                "maxErrorIncrease": s.max_error_increase,
                "maxLatencyIncrease": s.max_latency_increase,
                "maxBurnRateIncrease": s.max_burn_rate_increase,
                "minSample": s.min_sample,
            },
            "checks": [c.to_dict() for c in self.checks],
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class MetricSample:
    name: str
    labels: Mapping[str, str]
    value: float


#: help text per gauge of :func:`metric_samples` (the controller's ``/metrics``)
METRIC_HELP: dict[str, str] = {
    "ce_judge_outcome": "Last judgement of the canary (1 on its outcome)",
    "ce_judge_min_sample": "Canary requests needed before every check can pass",
    "ce_judge_check_outcome": "Last outcome per judge check (1 on its outcome)",
    "ce_judge_check_value": "Value judged per check (canary, or canary/stable ratio)",
    "ce_judge_check_threshold": "Threshold per check",
    "ce_judge_check_p_value": "p-value of the check's test (NaN: no test)",
    "ce_judge_check_ci_low": "Lower bound of the check's confidence interval",
    "ce_judge_check_ci_high": "Upper bound of the check's confidence interval",
    "ce_judge_check_min_sample": "Canary requests the check needs to pass",
    "ce_judge_check_requests": "Requests per track in the check's window",
}


def metric_samples(j: Judgement, labels: Mapping[str, str] | None = None) -> list[MetricSample]:
    """Gauge samples for ``/metrics`` (outcomes one-hot, as kube-state-metrics does phases)."""
    base = dict(labels or {})
    out = [
        MetricSample("ce_judge_outcome", base | {"outcome": o.value}, float(j.outcome is o))
        for o in Outcome
    ]
    out.append(MetricSample("ce_judge_min_sample", base, j.min_sample))
    for c in j.checks:
        cl = base | {"check": c.name, "layer": c.layer.value}
        out += [
            MetricSample("ce_judge_check_outcome", cl | {"outcome": o.value}, float(c.outcome is o))
            for o in Outcome
        ]
        out += [
            MetricSample("ce_judge_check_value", cl, c.value),
            MetricSample("ce_judge_check_threshold", cl, c.threshold),
            MetricSample("ce_judge_check_p_value", cl, c.p_value),
            MetricSample("ce_judge_check_ci_low", cl, c.ci[0]),
            MetricSample("ce_judge_check_ci_high", cl, c.ci[1]),
            MetricSample("ce_judge_check_min_sample", cl, c.min_sample),
            MetricSample("ce_judge_check_requests", cl | {"track": "canary"}, float(c.canary_n)),
        ]
        if c.stable_n is not None:
            out.append(
                MetricSample("ce_judge_check_requests", cl | {"track": "stable"}, float(c.stable_n))
            )
    return out


# --------------------------------------------------------------------------- power


def _z(p: float) -> float:
    return float(stats.norm.isf(p))


def _binomial_n(p0: float, p1: float, alpha: float, power: float) -> float:
    """Trials a one-sided binomial test at ``alpha`` needs to detect ``p1 > p0`` with ``power``."""
    if not 0 < p0 < p1 < 1:
        return math.inf
    num = _z(alpha) * math.sqrt(p0 * (1 - p0)) + _z(1 - power) * math.sqrt(p1 * (1 - p1))
    return (num / (p1 - p0)) ** 2


def _outcome(p: float, n: int, need: float, alpha: float, passable: bool = True) -> Outcome:
    if p < alpha:
        return Outcome.FAIL
    if n >= need and passable:
        return Outcome.PASS
    return Outcome.INCONCLUSIVE


def _ratio(weight: float) -> float:
    """Canary requests per stable request at ``weight`` percent."""
    return weight / (100.0 - weight)


# --------------------------------------------------------------------------- checks


def _word(o: Outcome) -> str:
    return {Outcome.PASS: "ok", Outcome.FAIL: "FAIL", Outcome.INCONCLUSIVE: "inconclusive"}[o]


def _abs_rate_check(
    name: str,
    k: int,
    n: int,
    limit_rate: float,
    value: float,
    limit_value: float,
    unit: str,
    fmt: str,
    detect_rate: float,
    s: AnalysisSettings,
    window: str,
) -> CheckResult:
    """Canary's rate of bad requests ``k/n`` against ``limit_rate`` (exact binomial)."""
    alpha = s.alpha
    need = max(float(s.min_sample), math.ceil(_binomial_n(limit_rate, detect_rate, alpha, s.power)))
    if n > 0:
        test = stats.binomtest(k, n, limit_rate, alternative="greater")
        p = float(test.pvalue)
        ci = test.proportion_ci(confidence_level=s.confidence)
        lo = float(ci.low)
        hi = float(
            stats.binomtest(k, n, limit_rate, alternative="less").proportion_ci(s.confidence).high
        )
    else:
        p, lo, hi = 1.0, 0.0, 1.0
    below = math.isfinite(value) and value < limit_value
    outcome = _outcome(p, n, need, alpha, passable=below)
    shown = "no data" if not math.isfinite(value) else fmt.format(value)
    why = {
        Outcome.FAIL: f"over the limit with {s.confidence:.0%} confidence (p={p:.2g})",
        Outcome.PASS: f"n={n}",
        Outcome.INCONCLUSIVE: f"n={n} of {need:.0f} needed"
        + ("" if below or n == 0 else f", over the limit but p={p:.2g}"),
    }[outcome]
    return CheckResult(
        name=name,
        layer=Layer.ABSOLUTE,
        outcome=outcome,
        value=value,
        threshold=limit_value,
        unit=unit,
        canary=value,
        stable=None,
        canary_n=n,
        stable_n=None,
        min_sample=need,
        p_value=p,
        ci=(lo, hi),
        confidence=s.confidence,
        window=window,
        text=f"{name}: {shown} vs < {fmt.format(limit_value)} ({window}, {why}) {_word(outcome)}",
    )


def _error_ratio_abs(c: TrackCounts, limits: SloLimits, s: AnalysisSettings, w: str) -> CheckResult:
    n, k = c.n, c.k
    limit = limits.max_error_ratio
    value = k / n if n else math.nan
    r = _abs_rate_check(
        "error_ratio",
        k,
        n,
        limit,
        value,
        limit,
        CHECK_UNITS["error_ratio"],
        "{:.4%}",
        min(limit * (1 + 2 * s.max_error_increase), 0.999),
        s,
        w,
    )
    return r


def _quantile_abs(
    name: str, q: float, limit_ms: float, c: TrackCounts, s: AnalysisSettings, w: str
) -> CheckResult:
    """Pq < limit  <=>  fewer than (1-q) of the requests are slower than the limit."""
    n = c.n
    if n and c.buckets:
        les, cum = _grid(c.buckets)
        # linear inside the bucket, as histogram_quantile: the count agrees with the quantile
        lower_les = np.concatenate(([0.0], les[:-1]))
        lower_cum = np.concatenate(([0.0], cum[:-1]))
        at_limit = float(np.interp(limit_ms, lower_les, lower_cum))
        slower = max(0, min(n, round(cum[-1] - at_limit)))
        value = histogram_quantile(q, c.buckets)
    else:
        slower, value = 0, math.nan
    tail = 1.0 - q
    return _abs_rate_check(
        name,
        slower,
        n,
        tail,
        value,
        limit_ms,
        CHECK_UNITS[name],
        "{:.0f} ms",
        min(tail * (1 + 2 * s.max_latency_increase), 0.999),
        s,
        w,
    )


def _error_ratio_rel(inp: JudgeInputs, s: AnalysisSettings, limit: float) -> CheckResult:
    c, st = inp.canary, inp.stable
    nc, ns, kc, ks = c.n, st.n, c.k, st.k
    alpha = s.alpha
    r0 = 1.0 + s.max_error_increase
    r1 = 1.0 + 2.0 * s.max_error_increase
    rho = _ratio(inp.weight)
    # power: errors needed in both tracks, then canary requests that bring them
    base = max(ks / ns if ns else 0.0, s.error_floor * limit)
    pi0, pi1 = r0 * rho / (r0 * rho + 1), r1 * rho / (r1 * rho + 1)
    errors_needed = _binomial_n(pi0, pi1, alpha, s.power)
    need = max(float(s.min_sample), math.ceil(errors_needed / (base * (r1 + 1 / rho))))
    rate_c = kc / nc if nc else math.nan
    rate_s = ks / ns if ns else math.nan
    total = kc + ks
    if nc and ns and total:
        share0 = nc * r0 / (nc * r0 + ns)  # canary's share of all errors at the H0 boundary
        test = stats.binomtest(kc, total, share0, alternative="greater")
        p = float(test.pvalue)
        lo_pi = float(test.proportion_ci(confidence_level=s.confidence).low)
        hi_pi = float(
            stats.binomtest(kc, total, share0, alternative="less").proportion_ci(s.confidence).high
        )

        def to_ratio(pi: float) -> float:
            return math.inf if pi >= 1 else pi / (1 - pi) * ns / nc

        lo, hi = to_ratio(lo_pi), to_ratio(hi_pi)
    else:
        p, lo, hi = 1.0, 0.0, math.inf
    no_errors_ratio = math.inf if kc else 1.0
    ratio = (rate_c / rate_s if ks else no_errors_ratio) if nc and ns else math.nan
    outcome = _outcome(p, nc if ns else 0, need, alpha)
    text = (
        f"error_ratio_vs_stable: canary {kc}/{nc} ({rate_c:.4%}) vs stable {ks}/{ns} "
        f"({rate_s:.4%}) = {ratio:.2f}x, {s.confidence:.0%} CI {lo:.2f}..{hi:.2f}x, "
        f"limit {r0:.2f}x, p={p:.2g}, n={nc} of {need:.0f} needed ({inp.window}) {_word(outcome)}"
    )
    return CheckResult(
        name="error_ratio_vs_stable",
        layer=Layer.RELATIVE,
        outcome=outcome,
        value=ratio,
        threshold=r0,
        unit=CHECK_UNITS["error_ratio_vs_stable"],
        canary=rate_c,
        stable=rate_s,
        canary_n=nc,
        stable_n=ns,
        min_sample=need,
        p_value=p,
        ci=(lo, hi),
        confidence=s.confidence,
        window=inp.window,
        text=text,
    )


def _burn_rel(inp: JudgeInputs, s: AnalysisSettings, limit: float) -> CheckResult:
    c, st = inp.canary, inp.stable
    nc, ns, kc, ks = c.n, st.n, c.k, st.k
    alpha = s.alpha
    m = s.max_burn_rate_increase
    rho = _ratio(inp.weight)
    rate_s = ks / ns if ns else 0.0
    d0, d1 = m * limit, 2 * m * limit
    var_per_request = (rate_s + d1) + rho * rate_s  # canary + stable share, per canary request
    z_sum = _z(alpha) + _z(1 - s.power)
    need = max(float(s.min_sample), math.ceil(z_sum**2 * var_per_request / (d1 - d0) ** 2))
    burn_c = kc / nc / limit if nc else math.nan
    burn_s = ks / ns / limit if ns else math.nan
    if nc and ns:
        p = float(stats.poisson_means_test(kc, nc, ks, ns, diff=d0, alternative="greater").pvalue)
        diff = burn_c - burn_s
        se = math.sqrt(kc / nc**2 + ks / ns**2) / limit
        zc = _z(alpha)
        lo, hi = diff - zc * se, diff + zc * se
    else:
        p, diff, lo, hi = 1.0, math.nan, -math.inf, math.inf
    outcome = _outcome(p, nc if ns else 0, need, alpha)
    text = (
        f"burn_rate_vs_stable: canary burns {burn_c:.2f} vs stable {burn_s:.2f} budgets "
        f"(+{diff:.2f}, {s.confidence:.0%} CI {lo:.2f}..{hi:.2f}), limit +{m:g}, p={p:.2g}, "
        f"n={nc} of {need:.0f} needed ({inp.window}) {_word(outcome)}"
    )
    return CheckResult(
        name="burn_rate_vs_stable",
        layer=Layer.RELATIVE,
        outcome=outcome,
        value=diff,
        threshold=m,
        unit=CHECK_UNITS["burn_rate_vs_stable"],
        canary=burn_c,
        stable=burn_s,
        canary_n=nc,
        stable_n=ns,
        min_sample=need,
        p_value=p,
        ci=(lo, hi),
        confidence=s.confidence,
        window=inp.window,
        text=text,
    )


def _shift_z(canary: np.ndarray, stable: Sequence[tuple[float, float]], factor: float) -> float:
    return grouped_mannwhitney(canary, _scaled_counts(stable, factor)).z


def _shift_at(canary: np.ndarray, stable: Sequence[tuple[float, float]], z: float) -> float:
    """Shift factor s where the test of canary against stable x s has statistic ``z``."""
    lo, hi = math.log(1e-3), math.log(1e3)

    def f(log_s: float) -> float:
        return _shift_z(canary, stable, math.exp(log_s)) - z

    if f(lo) < 0:
        return 0.0
    if f(hi) > 0:
        return math.inf
    return math.exp(float(optimize.brentq(f, lo, hi, xtol=1e-4)))


def _latency_rel(inp: JudgeInputs, s: AnalysisSettings) -> CheckResult:
    c, st = inp.canary, inp.stable
    nc, ns = c.n, st.n
    alpha = s.alpha
    f0 = 1.0 + s.max_latency_increase
    f1 = 1.0 + 2.0 * s.max_latency_increase
    share = inp.weight / 100.0
    if nc and ns and c.buckets and st.buckets:
        canary = _counts(c.buckets)
        test = grouped_mannwhitney(canary, _scaled_counts(st.buckets, f0))
        p = test.p_greater
        # power (Noether): P(canary > stable x f0) when canary = stable x f1, from stable's shape
        stable_counts = _scaled_counts(st.buckets, f1)
        reference = _scaled_counts(st.buckets, f0)
        p1 = grouped_mannwhitney(stable_counts, reference).u / float(ns) ** 2
        z_sum = _z(alpha) + _z(1 - s.power)
        if p1 > 0.5:
            total = z_sum**2 / (12 * share * (1 - share) * (p1 - 0.5) ** 2)
            need = max(float(s.min_sample), math.ceil(share * total))
        else:  # the buckets are too coarse to see this shift at all
            need = math.inf
        zc = _z(alpha)
        estimate = _shift_at(canary, st.buckets, 0.0)
        lo, hi = _shift_at(canary, st.buckets, zc), _shift_at(canary, st.buckets, -zc)
        p95_c, p95_s = histogram_quantile(0.95, c.buckets), histogram_quantile(0.95, st.buckets)
    else:
        p, need, estimate, lo, hi = 1.0, math.inf, math.nan, 0.0, math.inf
        p95_c = p95_s = math.nan
    outcome = _outcome(p, nc if ns else 0, need, alpha)
    text = (
        f"latency_vs_stable: shift {estimate:.2f}x ({s.confidence:.0%} CI {lo:.2f}..{hi:.2f}x), "
        f"P95 {p95_c:.0f} vs {p95_s:.0f} ms, limit {f0:.2f}x, p={p:.2g}, "
        f"n={nc} of {need:.0f} needed ({inp.window}) {_word(outcome)}"
    )
    return CheckResult(
        name="latency_vs_stable",
        layer=Layer.RELATIVE,
        outcome=outcome,
        value=estimate,
        threshold=f0,
        unit=CHECK_UNITS["latency_vs_stable"],
        canary=p95_c,
        stable=p95_s,
        canary_n=nc,
        stable_n=ns,
        min_sample=need,
        p_value=p,
        ci=(lo, hi),
        confidence=s.confidence,
        window=inp.window,
        text=text,
    )


def judge(
    inputs: JudgeInputs,
    limits: SloLimits,
    settings: AnalysisSettings,
    slo: TrackCounts | None = None,
    slo_window: str | None = None,
    relative: bool = True,
) -> Judgement:
    """Judge the canary over one window. With no stable traffic (weight 100) only the
    absolute layer is judged: there is nothing to compare with.

    ``slo`` (the canary over ``slo_window``, the gate's short window) feeds the absolute
    layer when given: a sudden breach is not diluted by the long comparison window.
    ``relative=False`` judges the absolute layer only (between two comparisons, see
    :func:`combine`).
    """
    w = inputs.window
    c, sw = (inputs.canary, w) if slo is None else (slo, slo_window or w)
    checks = [
        _error_ratio_abs(c, limits, settings, sw),
        _quantile_abs("p95", 0.95, limits.max_p95_ms, c, settings, sw),
        _quantile_abs("p99", 0.99, limits.max_p99_ms, c, settings, sw),
    ]
    if relative and 0 < inputs.weight < 100:
        checks += [
            _error_ratio_rel(inputs, settings, limits.max_error_ratio),
            _latency_rel(inputs, settings),
            _burn_rel(inputs, settings, limits.max_error_ratio),
        ]
    return Judgement(_overall(checks), tuple(checks), w, inputs.weight, settings)


def _overall(checks: Sequence[CheckResult]) -> Outcome:
    if any(c.outcome is Outcome.FAIL for c in checks):
        return Outcome.FAIL
    if any(c.outcome is Outcome.INCONCLUSIVE for c in checks):
        return Outcome.INCONCLUSIVE
    return Outcome.PASS


def combine(absolute: Judgement, comparison: Judgement) -> Judgement:
    """The fresh absolute layer of ``absolute`` with the relative layer of the last full
    ``comparison``: the SLO guard is judged every controller turn, the comparison with
    stable every ``interval`` of the analysis settings."""
    checks = tuple(c for c in absolute.checks if c.layer is Layer.ABSOLUTE) + tuple(
        c for c in comparison.checks if c.layer is Layer.RELATIVE
    )
    return Judgement(
        _overall(checks), checks, comparison.window, absolute.weight, absolute.settings
    )


# --------------------------------------------------------------------------- decision


class Action(enum.StrEnum):
    WAIT = "wait"
    """The bake is not over: keep judging (a fail still acts at once)."""
    EXTEND = "extend"
    """The bake is over but the verdict is inconclusive: bake on, up to the cap."""
    PAUSE = "pause"
    """Still inconclusive at the cap: hold the traffic and ask a human."""
    PROCEED = "proceed"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    hard: bool = False
    """The rollback comes from an SLO breach (always roll back, whatever the phase says)."""


def decide(
    history: Sequence[Judgement | Outcome],
    bake_elapsed_s: float,
    bake_s: float,
    max_extension_s: float,
) -> Decision:
    """What the controller does after the latest judgement of this phase.

    ``history`` holds this phase's judgements, oldest first. Any fail rolls back
    (a soft one through the phase's failure action, which the controller maps);
    a pass proceeds only after the bake; inconclusive extends the bake up to
    ``max_extension_s`` and then pauses. Nothing passes by default.
    """
    outcomes = [h.outcome if isinstance(h, Judgement) else h for h in history]
    for h, o in zip(history, outcomes):
        if o is Outcome.FAIL:
            hard = isinstance(h, Judgement) and h.hard_failure
            why = h.summary() if isinstance(h, Judgement) else "a judgement failed"
            return Decision(Action.ROLLBACK, why, hard)
    if bake_elapsed_s < bake_s:
        return Decision(Action.WAIT, f"baking: {bake_elapsed_s:.0f} of {bake_s:.0f} s")
    if outcomes and outcomes[-1] is Outcome.PASS:
        return Decision(Action.PROCEED, f"passed after {bake_elapsed_s:.0f} s of bake")
    over = bake_elapsed_s - bake_s
    last = history[-1] if history else None
    detail = last.summary() if isinstance(last, Judgement) else "no conclusive judgement yet"
    if over < max_extension_s:
        return Decision(
            Action.EXTEND,
            f"inconclusive; bake extended ({over:.0f} of {max_extension_s:.0f} s): {detail}",
        )
    return Decision(
        Action.PAUSE,
        f"still inconclusive {over:.0f} s after the bake (cap {max_extension_s:.0f} s): {detail}",
    )
