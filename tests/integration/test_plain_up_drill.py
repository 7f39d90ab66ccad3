"""Issue 23, defect 7 on the real controllers: a plain `pulumi up` (the documented manual flow)
never gives a track weight while it has no ready endpoints.

The `local` stack walks 0 -> 1 -> 2 -> 3 -> 2 -> 3 -> 4 -> 0 with one plain `up` each, while a
watcher thread reads the live VirtualService and the api Service's EndpointSlices (readiness as
the EndpointSlice controller reports it, each endpoint's track from its pod's labels, the
subsets from the live DestinationRule) about every 100 ms. A subset with weight must have a
ready endpoint, and the canary as many as its weight's phase sizes it to. The stack ends at
phase 0.

Slow: seven `pulumi up`s of the phase steps (about 15 s each).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.preflight import KubeApi
from rollout import phases
from tests.integration.conftest import LocalProject

NS = "claude-enhancer"
HOST = "api"
VS_PATH = f"/apis/networking.istio.io/v1beta1/namespaces/{NS}/virtualservices/claude-enhancer"
DR_PATH = f"/apis/networking.istio.io/v1beta1/namespaces/{NS}/destinationrules/{HOST}"
SLICES_PATH = (
    f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
    f"?labelSelector=kubernetes.io/service-name={HOST}"
)
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
WALK = (1, 2, 3, 2, 3, 4, 0)
FULL_REPLICAS = 3  # stacks/Pulumi.local.yaml app.api.replicas


def subset_weights(vs: dict[str, Any]) -> dict[str, int]:
    """subset -> its share of traffic: the weighted route's weight, or 100 when a route (the
    sticky ones, by cookie) sends to it alone; the largest over the routes."""
    out: dict[str, int] = {}
    for http in vs["spec"]["http"]:
        for r in http["route"]:
            w = int(r.get("weight", 100 if len(http["route"]) == 1 else 0))
            sub = r["destination"].get("subset", "")
            out[sub] = max(out.get(sub, 0), w)
    return out


def split(vs: dict[str, Any]) -> dict[str, int]:
    """subset -> weight in the weighted route (the phase's split)."""
    (route,) = [h["route"] for h in vs["spec"]["http"] if h.get("name") == "weighted"]
    return {r["destination"]["subset"]: int(r.get("weight", 0)) for r in route}


def ready_by_subset(
    slices: list[dict[str, Any]], pods: list[dict[str, Any]], subsets: dict[str, dict[str, str]]
) -> dict[str, int]:
    """subset -> ready endpoints (EndpointSlice ``conditions.ready``; unset means ready)."""
    labels = {p["metadata"]["name"]: p["metadata"].get("labels", {}) for p in pods}
    out = dict.fromkeys(subsets, 0)
    for s in slices:
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            pod = labels.get((ep.get("targetRef") or {}).get("name", ""), {})
            for name, sel in subsets.items():
                if sel.items() <= pod.items():
                    out[name] += 1
    return out


@dataclass
class Sample:
    t: float
    weights: dict[str, int]
    """subset_weights of the live VirtualService"""
    canary: int
    """the canary's weight in the weighted route"""
    before: dict[str, int]
    """Ready endpoints read just before the VirtualService ..."""
    after: dict[str, int]
    """... and just after: a sample is a violation only if both agree."""


def violations(samples: list[Sample], need: dict[int, int]) -> list[Sample]:
    """Samples where a subset had weight but no ready endpoint, or the canary fewer than its
    weight's phase sizes it to (``need``: canary weight -> replicas)."""
    out = []
    for s in samples:
        for sub, w in s.weights.items():
            ready = max(s.before.get(sub, 0), s.after.get(sub, 0))
            want = need.get(s.canary, 1) if sub == "canary" else 1
            if w > 0 and ready < want:
                out.append(s)
                break
    return out


@dataclass
class EndpointWatch:
    api: KubeApi
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _ready(self, subsets: dict[str, dict[str, str]]) -> dict[str, int]:
        slices = self.api.get_json(SLICES_PATH)["items"]
        return ready_by_subset(slices, self.api.get_json(PODS_PATH)["items"], subsets)

    def run(self) -> None:
        dr = self.api.get_json(DR_PATH)
        subsets = {s["name"]: s["labels"] for s in dr["spec"]["subsets"]}
        before = self._ready(subsets)
        while not self.stop.wait(0.1):
            try:
                vs = self.api.get_json(VS_PATH)
                after = self._ready(subsets)
            except Exception as e:  # an unreadable sample is noted, not fatal
                self.errors.append(repr(e))
                continue
            sample = Sample(
                time.monotonic(), subset_weights(vs), split(vs)["canary"], before, after
            )
            self.samples.append(sample)
            before = after


@pytest.fixture
def endpoint_watch(local_project: LocalProject) -> Iterator[EndpointWatch]:
    kubeconfig = yaml.safe_load(Path(local_project.env["KUBECONFIG"]).read_text())
    w = EndpointWatch(KubeApi(kubeconfig))
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    yield w
    w.stop.set()
    t.join(10)


def test_plain_up_never_weights_a_track_without_ready_endpoints(
    local_project: LocalProject, endpoint_watch: EndpointWatch
) -> None:
    p = local_project  # at phase 0 after the session's `up`
    marks = []
    try:
        for phase in WALK:
            p.set_phase(phase)
            t0 = time.monotonic()
            p.up()
            marks.append((phase, t0, time.monotonic()))
    finally:
        p.set_phase(0)
    time.sleep(1)  # the last scale-down's endpoints, seen after the last `up`
    w = endpoint_watch
    need = {
        wt: phases.canary_replicas(ph, FULL_REPLICAS) for ph, wt in enumerate(phases.PHASE_WEIGHTS)
    }
    bad = violations(w.samples, need)
    steps = [f"phase {ph}: {t1 - t0:.1f}s" for ph, t0, t1 in marks]
    seen = {s.canary for s in w.samples}
    assert seen >= set(phases.PHASE_WEIGHTS), f"the watch missed weights: {seen}"
    gaps = [b.t - a.t for a, b in zip(w.samples, w.samples[1:], strict=False)]
    print(f"{len(w.samples)} samples, max gap {max(gaps):.2f}s; {steps}")
    assert not bad, (
        f"a track had weight without enough ready endpoints ({len(bad)} samples; steps {steps}):\n"
        + "\n".join(
            f"t={s.t - marks[0][1]:.2f}s canary {s.canary}% routes {s.weights} "
            f"ready {s.before} -> {s.after}"
            for s in bad[:20]
        )
    )
    assert len(w.errors) < len(w.samples) / 10, w.errors[:5]
