"""Seeded canary-vs-stable traffic scenarios, shaped as Istio reports them.

One analysis window of one service split between a stable and a canary track:
requests (``istio_requests_total``), 5xx answers, and the latency histogram
(``istio_request_duration_milliseconds_bucket``: cumulative counts per ``le`` on
Istio's default buckets, ending with ``+Inf``). Prometheus' ``increase()`` over the
window returns exactly these numbers, so the judge can be tested and benchmarked
on them without a mesh; the exporter replays a scenario's rates and latency
shape live (``exporter.py --scenario NAME``).

Latencies are log-normal (a service's latency is right-skewed); a canary's
latency is the stable distribution times ``latency_factor``, its error rate the
stable rate times ``error_factor``. Counts are drawn with numpy from a seed:
requests ~ Poisson(rate x window), errors ~ Binomial, buckets ~ Multinomial over
the log-normal's bucket probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

#: Istio's default buckets for istio_request_duration_milliseconds (ms)
ISTIO_BUCKETS: tuple[float, ...] = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)


@dataclass(frozen=True)
class Scenario:
    """One analysis window. Defaults: SPEC load (1000-1200 RPS) at phase 2 (20 %)."""

    name: str
    rps: float = 1100.0
    """Requests per second of the whole service (stable + canary)."""
    canary_weight: float = 20.0
    """Canary share of the traffic in percent (the VirtualService weight)."""
    window_s: float = 1800.0
    stable_error_rate: float = 0.0005
    """Half the SPEC's 0.1 % error budget: a healthy service that still has errors."""
    error_factor: float = 1.0
    latency_median_ms: float = 120.0
    latency_sigma: float = 0.5
    """Log-normal shape; with the median above, stable P95 ~ 270 ms, P99 ~ 380 ms."""
    latency_factor: float = 1.0
    canary_requests: int | None = None
    """Fixed request counts instead of Poisson draws (for hand-made windows)."""
    stable_requests: int | None = None
    canary_errors: int | None = None
    """Fixed error counts instead of Binomial draws."""
    stable_errors: int | None = None

    @property
    def canary_error_rate(self) -> float:
        return self.stable_error_rate * self.error_factor

    def with_(self, **changes: object) -> Scenario:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrackWindow:
    """What ``increase(...[window])`` returns for one track."""

    requests: int
    errors: int
    buckets: tuple[tuple[float, int], ...]
    """(le, cumulative count), ascending, the last le is +Inf (== requests)."""


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1.0 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2.0))))


def bucket_probabilities(median_ms: float, sigma: float) -> np.ndarray:
    """Probability of each Istio bucket (plus +Inf) for a log-normal latency."""
    cdf = np.array([_lognormal_cdf(le, median_ms, sigma) for le in ISTIO_BUCKETS] + [1.0])
    probs = np.diff(np.concatenate(([0.0], cdf)))
    probs = np.clip(probs, 0.0, None)
    out: np.ndarray = probs / probs.sum()
    return out


def _track(
    rng: np.random.Generator,
    rate_rps: float,
    window_s: float,
    error_rate: float,
    median_ms: float,
    sigma: float,
    fixed_requests: int | None,
    fixed_errors: int | None,
) -> TrackWindow:
    n = int(rng.poisson(rate_rps * window_s)) if fixed_requests is None else fixed_requests
    errors = int(rng.binomial(n, error_rate)) if fixed_errors is None else fixed_errors
    counts = rng.multinomial(n, bucket_probabilities(median_ms, sigma))
    cumulative = np.cumsum(counts)
    les = (*ISTIO_BUCKETS, math.inf)
    return TrackWindow(n, errors, tuple((le, int(c)) for le, c in zip(les, cumulative)))


def generate(scenario: Scenario, seed: int) -> tuple[TrackWindow, TrackWindow]:
    """(stable, canary) counts for one window of ``scenario``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    w = scenario.canary_weight / 100.0
    stable = _track(
        rng,
        scenario.rps * (1.0 - w),
        scenario.window_s,
        scenario.stable_error_rate,
        scenario.latency_median_ms,
        scenario.latency_sigma,
        scenario.stable_requests,
        scenario.stable_errors,
    )
    canary = _track(
        rng,
        scenario.rps * w,
        scenario.window_s,
        scenario.canary_error_rate,
        scenario.latency_median_ms * scenario.latency_factor,
        scenario.latency_sigma,
        scenario.canary_requests,
        scenario.canary_errors,
    )
    return stable, canary


def exporter_behaviour(scenario: Scenario) -> dict[str, float]:
    """The exporter's live behaviour for ``scenario`` (its ``Behaviour`` fields)."""
    return {
        "canary_weight": scenario.canary_weight,
        "stable_error_rate": scenario.stable_error_rate,
        "canary_error_rate": scenario.canary_error_rate,
        "stable_latency_ms": scenario.latency_median_ms,
        "canary_latency_ms": scenario.latency_median_ms * scenario.latency_factor,
    }


#: The named scenarios (tests, benchmark and ``exporter.py --scenario``).
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("equal"),
        # twice stable's errors, still under the SPEC's 0.1 % (0.04 % -> 0.08 %)
        Scenario("errors-2x", stable_error_rate=0.0004, error_factor=2.0),
        # 3x stable's errors and still under the SPEC's 0.1 % (0.03 % -> 0.09 %)
        Scenario("errors-3x-under-slo", stable_error_rate=0.0003, error_factor=3.0),
        Scenario("errors-over-slo", error_factor=4.0),
        # +30 %: canary P95 ~ 350 ms, still under the SPEC's 500 ms
        Scenario("latency-1.3x", latency_factor=1.3),
        Scenario("latency-1.1x", latency_factor=1.1),
        # the first requests of a canary: 0 errors on stable, 1 on the canary, 150 each
        Scenario(
            "first-150",
            canary_requests=150,
            stable_requests=150,
            canary_errors=1,
            stable_errors=0,
        ),
    )
}
