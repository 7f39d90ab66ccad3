"""The synthetic telemetry splits requests between the tracks as the mesh does: by the canary
weight of the VirtualService the API server holds, read as the policy pack reads a split; the
stack file's phase only while no VirtualService is applied.

The VirtualServices here are the program's own (``components.mesh``), at every phase.
"""

from __future__ import annotations

import json
import os
import queue
from pathlib import Path
from typing import Any

import pytest

from components import mesh
from monitoring.exporter.routes import VirtualServiceWatch, canary_percent, watch_argv
from rollout import phases
from tests.scripts import load_script
from tests.unit.conftest import settings_for

ROOT = Path(__file__).resolve().parents[2]


def _exporter() -> Any:
    return load_script("ce_exporter", ROOT / "monitoring" / "exporter" / "exporter.py")


def _vs(phase: int) -> dict[str, Any]:
    s = settings_for("local", phase)
    return mesh.virtual_service_manifest(phases.weights_for(phase), s.mesh, s.namespaces.app)


def _answered(app: Any) -> dict[str, float]:
    """Requests per track as the pods' sidecars report them (one report per request)."""
    version = {app.settings.app.canary_version: "canary", app.settings.app.stable_version: "stable"}
    out = {"stable": 0.0, "canary": 0.0}
    for metric in app.requests.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and s.labels["reporter"] == "destination":
                out[version[s.labels["destination_version"]]] += s.value
    return out


@pytest.mark.parametrize("phase", range(phases.MAX_PHASE + 1))
def test_the_programs_virtual_service_reads_as_its_phase_weight(phase: int) -> None:
    """The sticky routes come first and carry no weight (issue 9 defect 4): the split route's
    canary weight is what the gateway applies to new users."""
    vs = _vs(phase)
    assert vs["spec"]["http"][0]["name"].startswith("sticky-")
    assert canary_percent(vs) == phases.PHASE_WEIGHTS[phase]


def test_a_virtual_service_without_the_canary_subset_has_no_split() -> None:
    vs = _vs(2)
    for route in vs["spec"]["http"]:
        route["route"] = [d for d in route["route"] if d["destination"]["subset"] != "canary"]
    vs["spec"]["http"] = [r for r in vs["spec"]["http"] if r["route"]]
    assert canary_percent(vs) is None


@pytest.mark.parametrize(
    ("weight", "canary"), [(0, 0), (5, 200), (20, 800), (50, 2000), (100, 4000)]
)
def test_requests_split_by_the_canary_weight(weight: int, canary: int) -> None:
    exp = _exporter()
    app = exp.SyntheticIstio(
        exp.load_settings("local"), exp.Behaviour(rps=400, canary_weight=weight), seed=1
    )
    for _ in range(40):  # 10 s at 0.25 s ticks: 4000 requests through the gateway
        app.tick()
    got = _answered(app)
    assert abs(got["canary"] - canary) <= 1
    assert abs(got["stable"] + got["canary"] - 4000) <= 1


def test_the_applied_virtual_service_wins_over_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a rollback the controller applies phase 0 weights before the stack file changes: the
    traffic moves with the object. With no VirtualService, the stack file's phase is used."""
    exp = _exporter()
    src = ROOT / "stacks" / "Pulumi.local.yaml"
    f = tmp_path / "Pulumi.local.yaml"
    f.write_text(src.read_text().replace("phase: 0", "phase: 2"))
    monkeypatch.setattr(exp, "stack_file", lambda _stack: f)
    applied: list[int | None] = [None]
    app = exp.SyntheticIstio(
        exp.load_settings("local"), exp.Behaviour(), seed=1, stack="local",
        mesh_split=lambda: applied[0],
    )  # fmt: skip
    assert app.canary_weight() == 20  # no VirtualService: the stack's phase 2
    applied[0] = 5
    assert app.canary_weight() == 5
    f.write_text(src.read_text().replace("phase: 0", "phase: 3"))
    os.utime(f, (1, 1))
    app.follow_stack()
    assert app.canary_weight() == 5  # still the applied object
    applied[0] = None
    assert app.canary_weight() == 50
    app.control("canary_weight=100")
    assert app.canary_weight() == 100
    app.control("canary_weight=")
    assert app.canary_weight() == 50


def test_the_watch_follows_added_modified_and_deleted_events() -> None:
    w = VirtualServiceWatch(["true"])
    assert w.percent() is None
    w.feed(json.dumps({"type": "ADDED", "object": _vs(1)}))
    assert w.percent() == 5
    w.feed(json.dumps({"type": "MODIFIED", "object": _vs(0)}))
    assert w.percent() == 0
    w.feed("not json\n")
    w.feed(json.dumps({"type": "BOOKMARK", "object": {"metadata": {}}}))
    assert w.percent() == 0
    w.feed(json.dumps({"type": "DELETED", "object": _vs(0)}))
    assert w.percent() is None


def test_the_watch_reads_a_real_process_stream(tmp_path: Path) -> None:
    """The thread reads kubectl's line-per-event output (a script prints two events here)."""
    events = tmp_path / "events"
    events.write_text("".join(json.dumps({"type": t, "object": _vs(p)}) + "\n"
                              for t, p in (("ADDED", 3), ("MODIFIED", 2))))  # fmt: skip
    w = VirtualServiceWatch(["sh", "-c", f"cat {events}; sleep 30"], retry_s=0.1)
    w.start()
    try:
        for _ in range(100):
            if w.percent() == 20:
                break
            import time

            time.sleep(0.05)
        assert w.percent() == 20
    finally:
        w.stop()


def test_the_watch_lists_by_field_selector_so_a_missing_object_is_no_error() -> None:
    argv = watch_argv("kubectl", "/k", "ns", mesh.VIRTUAL_SERVICE_NAME)
    assert argv[argv.index("--field-selector") + 1] == f"metadata.name={mesh.VIRTUAL_SERVICE_NAME}"
    assert {"--watch", "--output-watch-events"} <= set(argv)


def test_a_vanished_stack_file_keeps_the_traffic_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's exporter may outlive the checkout it was started from (a CI clone)."""
    exp = _exporter()
    f = tmp_path / "Pulumi.local.yaml"
    f.write_text((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
    monkeypatch.setattr(exp, "stack_file", lambda _stack: f)
    app = exp.SyntheticIstio(exp.load_settings("local"), exp.Behaviour(), seed=1, stack="local")
    f.unlink()
    app.follow_stack()
    app.tick()
    assert _answered(app)["stable"] > 0


def _reported(app: Any, track: str) -> dict[str, float]:
    """Per reporter, the requests of ``track`` in the exposition (absent series: absent key)."""
    version = {"canary": app.settings.app.canary_version, "stable": app.settings.app.stable_version}
    out: dict[str, float] = {}
    for metric in app.requests.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and s.labels["destination_version"] == version[track]:
                out[s.labels["reporter"]] = out.get(s.labels["reporter"], 0.0) + s.value
    return out


def test_the_canary_sidecar_stops_reporting_or_freezes_alone() -> None:
    """Issue 29's faults, as Istio presents them: the canary's sidecar series (reporter
    destination) leave the exposition or stop counting; the gateway's reports of the same
    requests, stable's series and the app's metrics go on."""
    exp = _exporter()
    app = exp.SyntheticIstio(exp.load_settings("local"), exp.Behaviour(rps=400, canary_weight=5))
    for _ in range(8):
        app.tick()
    before = _reported(app, "canary")
    assert before["destination"] > 0 and before["source"] == before["destination"]
    app.control("canary_reports_frozen=1")
    stable = _reported(app, "stable")["destination"]
    for _ in range(8):
        app.tick()
    frozen = _reported(app, "canary")
    assert frozen["destination"] == before["destination"]  # there, not counting
    assert frozen["source"] > before["source"]  # the gateway still sends it traffic
    assert _reported(app, "stable")["destination"] > stable
    app.control("canary_reports_frozen=0&canary_reports=0")
    app.tick()
    gone = _reported(app, "canary")
    assert "destination" not in gone and gone["source"] > frozen["source"]
    duration = {
        s.labels["reporter"]
        for m in app.duration.collect()
        for s in m.samples
        if s.labels.get("destination_version") == app.settings.app.canary_version
    }
    assert duration == {"source"}
    assert any(m.samples for m in app.agent_up.collect())  # the app's own metrics stay
    app.control("canary_reports=1")
    app.tick()
    assert _reported(app, "canary")["destination"] > 0  # reporting again, from zero


def test_a_late_wake_serves_the_time_that_passed_not_one_tick() -> None:
    """Under the full suite's load the traffic thread wakes late. The mesh's rate does not
    depend on our CPU, so a late wake serves every second that passed (the CI flake of
    test_bad_canary_rolls_back: a 5 % canary answered 59 requests in 15 s at 400 rps)."""
    exp = _exporter()
    now = [0.0]
    app = exp.SyntheticIstio(
        exp.load_settings("local"),
        exp.Behaviour(rps=400, canary_weight=5),
        seed=1,
        tick_s=0.01,
        clock=lambda: now[0],
    )
    ticks: queue.Queue[float | None] = queue.Queue()
    real_tick = app.tick

    def tick(dt: float | None = None) -> None:
        real_tick(dt)
        ticks.put(dt)

    app.tick = tick
    app.thread.start()
    try:
        for _ in range(10):
            now[0] += 1.0  # each wake comes a whole second after the last
            while ticks.get(timeout=5) == 0:  # a wake before the clock moved serves 0 s
                pass
    finally:
        app.stop()
        app.thread.join(timeout=5)
    got = _answered(app)
    assert round(got["stable"] + got["canary"]) == 4000, got
    assert round(got["canary"]) == 200, got
