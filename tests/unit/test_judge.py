"""The canary judge (rollout/judge.py) on seeded scenarios from the exporter.

Volumes (monitoring/exporter/scenarios.py defaults): the SPEC's service at
1100 RPS (1000-1200), phase 2 = 20 % canary, so 220 RPS canary / 880 RPS stable;
a 30 min window (what the judge sees 30 min into the 45 min phase-2 bake):
~396 000 canary and ~1 584 000 stable requests; stable error rate 0.05 %
(half the 0.1 % budget), log-normal latency, median 120 ms, P95 ~ 270-330 ms.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from monitoring.exporter.scenarios import SCENARIOS, Scenario, generate
from rollout.analysis import AnalysisSettings
from rollout.gate import GateThresholds
from rollout.judge import (
    Action,
    JudgeInputs,
    Judgement,
    Layer,
    Outcome,
    TrackCounts,
    collect_inputs,
    decide,
    grouped_mannwhitney,
    histogram_quantile,
    judge,
    judge_queries,
    metric_samples,
)

SEEDS = range(60)


LIMITS = GateThresholds()  # the SPEC service levels are its defaults
DEFAULTS = AnalysisSettings()


def inputs(scenario: Scenario, seed: int, window: str = "30m") -> JudgeInputs:
    stable, canary = generate(scenario, seed)
    return JudgeInputs(
        canary=TrackCounts(canary.requests, canary.errors, canary.buckets),
        stable=TrackCounts(stable.requests, stable.errors, stable.buckets),
        weight=scenario.canary_weight,
        window=window,
    )


def check(j: Judgement, name: str):
    (c,) = [c for c in j.checks if c.name == name]
    return c


def outcomes(scenario: Scenario, settings: AnalysisSettings = DEFAULTS) -> Counter[Outcome]:
    return Counter(judge(inputs(scenario, s), LIMITS, settings).outcome for s in SEEDS)


def test_one_error_in_the_first_150_requests_is_inconclusive_not_fail():
    sc = SCENARIOS["first-150"]
    assert (sc.canary_requests, sc.canary_errors, sc.stable_requests, sc.stable_errors) == (
        150,
        1,
        150,
        0,
    )
    j = judge(inputs(sc, 0), LIMITS, DEFAULTS)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert not j.failures
    # the point estimate (0.67 %) is over the SLO, but one error is no evidence yet
    absolute = check(j, "error_ratio")
    assert absolute.value > LIMITS.max_error_ratio
    assert absolute.outcome is Outcome.INCONCLUSIVE
    assert absolute.p_value > DEFAULTS.alpha
    rel = check(j, "error_ratio_vs_stable")
    assert rel.outcome is Outcome.INCONCLUSIVE
    assert rel.min_sample > 150  # from the power analysis, not the minSample floor
    assert "inconclusive" in rel.text and "150" in rel.text


def test_three_times_stable_errors_under_the_slo_fails_on_the_relative_check():
    sc = SCENARIOS["errors-3x-under-slo"]
    assert sc.canary_error_rate < LIMITS.max_error_ratio
    for seed in range(10):
        j = judge(inputs(sc, seed), LIMITS, DEFAULTS)
        assert j.outcome is Outcome.FAIL
        assert check(j, "error_ratio").outcome is not Outcome.FAIL  # the SLO alone passes it
        rel = check(j, "error_ratio_vs_stable")
        assert rel.outcome is Outcome.FAIL
        assert rel.p_value < DEFAULTS.alpha
        assert rel.ci[0] > 1 + DEFAULTS.max_error_increase
        assert not j.hard_failure  # soft: the phase's failure action applies


def test_latency_plus_30_percent_under_the_p95_slo_fails_at_20_percent_allowed():
    sc = SCENARIOS["latency-1.3x"]
    at20 = AnalysisSettings(max_latency_increase=0.2)
    at40 = AnalysisSettings(max_latency_increase=0.4)
    for seed in range(10):
        j = judge(inputs(sc, seed), LIMITS, at20)
        p95 = check(j, "p95")
        assert p95.value < LIMITS.max_p95_ms and p95.outcome is Outcome.PASS
        lat = check(j, "latency_vs_stable")
        assert lat.outcome is Outcome.FAIL
        assert lat.ci[0] > 1.2 and lat.value == pytest.approx(1.3, abs=0.05)
        assert j.outcome is Outcome.FAIL
        # the same canary is within a 40 % allowance
        assert check(judge(inputs(sc, seed), LIMITS, at40), "latency_vs_stable").outcome is (
            Outcome.PASS
        )


def test_equal_distributions_pass_with_at_most_2_percent_false_fails():
    got = outcomes(SCENARIOS["equal"])
    assert got[Outcome.FAIL] / len(SEEDS) <= 0.02, got
    assert got[Outcome.PASS] + got[Outcome.FAIL] == len(SEEDS), got  # 30 min is enough to decide


def test_twice_the_errors_at_phase_2_is_detected_in_95_percent_of_seeds():
    sc = SCENARIOS["errors-2x"]
    assert sc.canary_weight == 20 and sc.canary_error_rate < LIMITS.max_error_ratio
    got = outcomes(sc)
    assert got[Outcome.FAIL] / len(SEEDS) >= 0.95, got


def test_errors_over_the_slo_are_a_hard_failure():
    j = judge(inputs(SCENARIOS["errors-over-slo"], 0), LIMITS, DEFAULTS)
    assert j.outcome is Outcome.FAIL and j.hard_failure
    assert check(j, "error_ratio").outcome is Outcome.FAIL


def test_no_canary_traffic_never_passes():
    sc = SCENARIOS["equal"].with_(canary_requests=0, canary_errors=0)
    j = judge(inputs(sc, 0), LIMITS, DEFAULTS)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert all(c.outcome is Outcome.INCONCLUSIVE for c in j.checks)


def test_minimum_sample_comes_from_power_and_weight():
    eq = SCENARIOS["equal"]
    phase1 = check(
        judge(inputs(eq.with_(canary_weight=5), 0), LIMITS, DEFAULTS), "error_ratio_vs_stable"
    )
    phase2 = check(judge(inputs(eq, 0), LIMITS, DEFAULTS), "error_ratio_vs_stable")
    tighter = check(
        judge(inputs(eq, 0), LIMITS, AnalysisSettings(max_error_increase=0.25)),
        "error_ratio_vs_stable",
    )
    assert phase2.min_sample > DEFAULTS.min_sample
    # at 5 % the canary needs fewer requests (stable's rate is known more precisely) but
    # gets them 4x slower: the time to a decision is longer
    assert phase1.min_sample / 5 > phase2.min_sample / 20
    assert tighter.min_sample > phase2.min_sample
    # right at the minimum it passes, one request short it is inconclusive
    need = int(phase2.min_sample)
    for n, want in ((need - 1, Outcome.INCONCLUSIVE), (need, Outcome.PASS)):
        sc = eq.with_(canary_requests=n, canary_errors=round(n * eq.stable_error_rate))
        assert check(judge(inputs(sc, 0), LIMITS, DEFAULTS), "error_ratio_vs_stable").outcome is (
            want
        )


def test_at_full_weight_only_the_slo_is_judged():
    j = judge(inputs(SCENARIOS["equal"].with_(canary_weight=100), 0), LIMITS, DEFAULTS)
    assert {c.layer for c in j.checks} == {Layer.ABSOLUTE}
    assert j.outcome is Outcome.PASS


def test_grouped_mann_whitney_equals_scipy_on_the_expanded_samples():
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = rng.integers(0, 40, size=8).astype(float)
        y = rng.integers(0, 40, size=8).astype(float)
        ours = grouped_mannwhitney(x, y)
        xs, ys = np.repeat(np.arange(8), x.astype(int)), np.repeat(np.arange(8), y.astype(int))
        ref = stats.mannwhitneyu(xs, ys, alternative="greater", method="asymptotic")
        assert ours.u == pytest.approx(float(ref.statistic))
        assert ours.p_greater == pytest.approx(float(ref.pvalue), rel=1e-9)


def test_histogram_quantile_follows_prometheus():
    b = ((100.0, 50.0), (250.0, 100.0), (math.inf, 100.0))
    assert histogram_quantile(0.75, b) == pytest.approx(175.0)
    assert histogram_quantile(0.25, b) == pytest.approx(50.0)  # lowest bucket starts at 0
    # a quantile in the +Inf bucket answers the highest finite bound
    assert histogram_quantile(0.99, ((100.0, 50.0), (math.inf, 100.0))) == 100.0


def test_track_counts_from_prometheus_le_labels():
    t = TrackCounts.from_prometheus(10, 1, {"+Inf": 10, "100": 4, "50": 1})
    assert t.buckets == ((50.0, 1.0), (100.0, 4.0), (math.inf, 10.0))
    with pytest.raises(ValueError):
        TrackCounts(10, 1, ((100.0, 4.0), (50.0, 10.0)))
    with pytest.raises(ValueError):
        TrackCounts(-1, 0)
    # increase() extrapolates each series alone: a hair more errors than requests is clamped
    t = TrackCounts(99.6, 100.4)
    assert (t.n, t.k) == (100, 100)


def test_every_decision_is_explained_in_json_and_metrics():
    j = judge(inputs(SCENARIOS["first-150"], 0), LIMITS, DEFAULTS)
    d = json.loads(json.dumps(j.to_dict(), allow_nan=False))
    assert d["outcome"] == "inconclusive"
    for c in d["checks"]:
        for key in ("value", "threshold", "window", "canary_n", "p_value", "ci", "min_sample"):
            assert key in c
        assert c["text"].startswith(c["name"] + ":")
    samples = metric_samples(j, {"stack": "local", "phase": "2"})
    outcome = {s.labels["outcome"]: s.value for s in samples if s.name == "ce_judge_outcome"}
    assert outcome == {"pass": 0.0, "fail": 0.0, "inconclusive": 1.0}
    values = {s.labels["check"]: s.value for s in samples if s.name == "ce_judge_check_value"}
    assert set(values) == {c.name for c in j.checks}
    assert all(s.labels["stack"] == "local" for s in samples)


def test_judge_queries_ask_for_counts_of_one_track():
    q = judge_queries('reporter="destination",destination_version="canary"', "30m")
    assert q.requests == (
        'sum(increase(istio_requests_total{reporter="destination",'
        'destination_version="canary"}[30m]))'
    )
    assert 'response_code=~"5.."' in q.errors
    assert q.buckets.startswith("sum by (le) (increase(istio_request_duration_milliseconds_bucket{")


def _j(outcome: Outcome, scenario: str = "equal") -> Judgement:
    j = judge(inputs(SCENARIOS[scenario], 0), LIMITS, DEFAULTS)
    assert j.outcome is outcome
    return j


def test_decide_waits_extends_pauses_proceeds_and_rolls_back():
    bake, cap = 1800.0, 900.0
    ok, unsure = Outcome.PASS, Outcome.INCONCLUSIVE
    assert decide([ok], 600, bake, cap).action is Action.WAIT
    assert decide([unsure, ok], 1800, bake, cap).action is Action.PROCEED
    assert decide([ok, unsure], 1800, bake, cap).action is Action.EXTEND
    assert decide([unsure], 2699, bake, cap).action is Action.EXTEND
    assert decide([unsure], 2700, bake, cap).action is Action.PAUSE
    assert decide([], 2700, bake, cap).action is Action.PAUSE  # no judgement never passes
    # a fail acts at once, even mid-bake, and is not forgotten by a later pass
    soft = decide([_j(Outcome.FAIL, "errors-3x-under-slo"), ok], 60, bake, cap)
    assert soft.action is Action.ROLLBACK and not soft.hard
    assert "error_ratio_vs_stable" in soft.reason
    hard = decide([_j(Outcome.FAIL, "errors-over-slo")], 60, bake, cap)
    assert hard.action is Action.ROLLBACK and hard.hard


def test_collect_inputs_reads_prometheus_answers():
    stable, canary = generate(SCENARIOS["latency-1.3x"], 0)
    tracks = {'destination_version="canary"': canary, 'destination_version="stable"': stable}
    asked: list[str] = []

    def query(promql: str) -> list[dict[str, object]]:
        asked.append(promql)
        (track,) = [t for m, t in tracks.items() if m in promql]
        if promql.startswith("sum by (le)"):
            return [
                {"metric": {"le": "+Inf" if math.isinf(le) else f"{le:g}"}, "value": [0, str(c)]}
                for le, c in track.buckets
            ]
        if "5.." in promql:
            return [{"metric": {}, "value": [0, str(track.errors)]}]
        return [{"metric": {}, "value": [0, str(track.requests)]}]

    got = collect_inputs(
        query,
        'reporter="destination",destination_version="canary"',
        'reporter="destination",destination_version="stable"',
        "30m",
        20.0,
    )
    assert got == inputs(SCENARIOS["latency-1.3x"], 0)
    assert len(asked) == 6 and all("[30m]" in q for q in asked)
    # a track without data (increase() answers NaN or nothing) is empty, not an error
    empty = collect_inputs(lambda q: [{"metric": {}, "value": [0, "NaN"]}], "a", "b", "5m", 5)
    assert (empty.canary.n, empty.canary.buckets) == (0, ())
    assert judge(empty, LIMITS, DEFAULTS).outcome is Outcome.INCONCLUSIVE


def test_the_p95_check_counts_slow_requests_as_histogram_quantile_interpolates():
    # 2000 requests, 120 of them between 250 and 500 ms: P95 = 250 + 250 * 20/120 ~ 292 ms
    b = ((250.0, 1880.0), (500.0, 2000.0), (math.inf, 2000.0))
    canary = TrackCounts(2000, 0, b)

    def p95(limit: float):
        j = judge(
            JudgeInputs(canary, canary, 100.0, "5m"), GateThresholds(max_p95_ms=limit), DEFAULTS
        )
        return check(j, "p95")

    # 300 ms: 96 requests (4.8 %) slower, P95 under the limit: the two agree
    assert p95(300).value == pytest.approx(250 + 250 * 20 / 120)
    assert p95(300).outcome is Outcome.PASS
    # 270 ms: 110 requests (5.5 %) slower, P95 over the limit: never a pass, but 110 of
    # 2000 is no evidence against 5 % at 98 % yet
    assert p95(270).outcome is Outcome.INCONCLUSIVE
    assert p95(270).p_value > DEFAULTS.alpha
