"""Seeded scenarios (monitoring/exporter/scenarios.py) and the exporter replaying them."""

from __future__ import annotations

import math

from monitoring.exporter.exporter import Behaviour, SyntheticIstio, load_settings
from monitoring.exporter.scenarios import (
    ISTIO_BUCKETS,
    SCENARIOS,
    bucket_probabilities,
    exporter_behaviour,
    generate,
)
from rollout.judge import histogram_quantile


def test_a_seed_reproduces_a_window_and_another_seed_does_not():
    sc = SCENARIOS["errors-2x"]
    assert generate(sc, 3) == generate(sc, 3)
    assert generate(sc, 3) != generate(sc, 4)


def test_windows_are_shaped_as_istio_reports_them():
    stable, canary = generate(SCENARIOS["equal"], 0)
    for t in (stable, canary):
        les = [le for le, _ in t.buckets]
        assert les == [*ISTIO_BUCKETS, math.inf]
        counts = [c for _, c in t.buckets]
        assert counts == sorted(counts) and counts[-1] == t.requests
        assert 0 <= t.errors <= t.requests
    # phase 2 at 1100 RPS over 30 min: 220 / 880 RPS
    assert abs(canary.requests - 220 * 1800) < 5 * math.sqrt(220 * 1800)
    assert abs(stable.requests - 880 * 1800) < 5 * math.sqrt(880 * 1800)


def test_latency_factor_moves_the_p95_by_that_factor_and_stays_under_the_slo():
    stable, canary = generate(SCENARIOS["latency-1.3x"], 0)
    p95s, p95c = histogram_quantile(0.95, stable.buckets), histogram_quantile(0.95, canary.buckets)
    assert p95c < 500
    assert 1.15 < p95c / p95s < 1.45  # bucket interpolation blurs the exact 1.3


def test_bucket_probabilities_sum_to_one():
    p = bucket_probabilities(120, 0.5)
    assert len(p) == len(ISTIO_BUCKETS) + 1 and abs(p.sum() - 1) < 1e-12


def test_the_exporter_replays_a_scenario_seeded():
    sc = SCENARIOS["errors-over-slo"]
    behaviour = Behaviour(rps=4000.0)
    for key, value in exporter_behaviour(sc).items():  # as exporter.py --scenario does
        setattr(behaviour, key, value)
    pods = load_settings("local")
    app = SyntheticIstio(pods, behaviour, seed=1, latency_sigma=sc.latency_sigma)
    version = {pods.app.canary_version: "canary", pods.app.stable_version: "stable"}
    for _ in range(40):
        app.tick()  # 1000 requests per tick, split at the scenario's weight (20 %)
    totals: dict[tuple[str, str], float] = {}
    for metric in app.requests.collect():
        for s in metric.samples:
            # each request is reported by the gateway and by the pod's sidecar: count one
            if s.name.endswith("_total") and s.labels["reporter"] == "destination":
                track = version[s.labels["destination_version"]]
                track_code = (track, s.labels["response_code"])
                totals[track_code] = totals.get(track_code, 0) + s.value
    canary_errors = totals.get(("canary", "503"), 0)
    stable_errors = totals.get(("stable", "503"), 0)
    canary = totals[("canary", "200")] + canary_errors
    stable = totals[("stable", "200")] + stable_errors
    assert (canary, stable) == (8000, 32000)
    # 0.2 % of 8 000 vs 0.05 % of 32 000 requests: 16 errors expected on each track
    assert canary_errors / canary > 2 * stable_errors / stable
    assert 6 <= canary_errors <= 30
