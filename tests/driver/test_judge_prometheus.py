"""Integration: the canary judge on what a real Prometheus answers.

The exporter replays seeded scenarios (``--scenario``) at 800 requests/s split at
weight 50 (400 per track); one Prometheus scrapes them every second (one job each).
The judge reads both tracks through :func:`rollout.judge.collect_inputs` and
Prometheus' HTTP API. Needs the Debian ``prometheus`` binary (missing = FAIL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from driver.prom import PrometheusClient
from monitoring.exporter.exporter import load_settings
from rollout.analysis import AnalysisSettings
from rollout.gate import GateThresholds
from rollout.judge import JudgeInputs, Judgement, Layer, Outcome, collect_inputs, judge
from tests.driver.driver_promstack import exporters, prometheus, wait_for_full_window

RPS = ["--rps", "800", "--canary-weight", "50"]
SPECS = {
    "equal": ["--scenario", "equal", *RPS],
    "slower": ["--scenario", "latency-1.3x", *RPS],
    "errors": ["--scenario", "equal", "--canary-error-rate", "0.02", *RPS],
}
WINDOW = "20s"
#: a full window at 400 requests/s is 8000; Prometheus extrapolates, so ask for most of it
FULL = 6000


@pytest.fixture(scope="module")
def prom_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prom-judge")
    with exporters(SPECS) as exps, prometheus({n: e.port for n, e in exps.items()}, work) as url:
        wait_for_full_window(url, list(SPECS), WINDOW)
        deadline = time.monotonic() + 120
        while min(_inputs(url, job).canary.n for job in SPECS) < FULL:
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus never held {FULL} canary requests in {WINDOW}")
            time.sleep(1)
        yield url


def _inputs(url: str, job: str) -> JudgeInputs:
    base = f'reporter="destination",job="{job}"'
    app = load_settings("local").app  # the exporter labels requests with the pods' versions
    return collect_inputs(
        PrometheusClient(url).query,
        f'{base},destination_version="{app.canary_version}"',
        f'{base},destination_version="{app.stable_version}"',
        WINDOW,
        50.0,
    )


def judged(url: str, job: str) -> Judgement:
    inputs = _inputs(url, job)
    assert inputs.canary.n >= FULL and inputs.stable.n >= FULL, inputs
    return judge(inputs, GateThresholds(), AnalysisSettings(interval="1s", window=WINDOW))


def outcome(j: Judgement, name: str) -> Outcome:
    return next(c.outcome for c in j.checks if c.name == name)


def test_latency_plus_30_percent_fails_the_relative_check(prom_url: str) -> None:
    j = judged(prom_url, "slower")
    assert outcome(j, "latency_vs_stable") is Outcome.FAIL, j.summary()
    assert outcome(j, "p95") is not Outcome.FAIL, j.summary()  # P95 stays under 500 ms
    assert j.outcome is Outcome.FAIL and not j.hard_failure


def test_equal_tracks_do_not_fail(prom_url: str) -> None:
    j = judged(prom_url, "equal")
    assert not j.failures, j.summary()
    # a few thousand requests pass the latency comparison but are far too few for errors
    assert outcome(j, "latency_vs_stable") is Outcome.PASS, j.summary()
    assert outcome(j, "error_ratio_vs_stable") is Outcome.INCONCLUSIVE, j.summary()
    assert j.outcome is Outcome.INCONCLUSIVE


def test_two_percent_canary_errors_are_a_hard_failure(prom_url: str) -> None:
    j = judged(prom_url, "errors")
    assert {c.name for c in j.failures if c.layer is Layer.ABSOLUTE} == {"error_ratio"}, j.summary()
    assert j.hard_failure
