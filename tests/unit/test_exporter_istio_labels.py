"""Issue 9 defect 3: the synthetic telemetry carries the labels Istio would report for the
program's pods, and the gate's selectors find it.

Expected values are derived here from the Deployments the program registers (pod template
labels, Deployment name, namespace, service account) with Istio's documented rules, not
from the builder the exporter uses, so a drift between the pods and the telemetry fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rollout.gate import GateTarget, GateThresholds, build_queries
from tests.scripts import load_script
from tests.unit.conftest import program_capture, settings_for

ROOT = Path(__file__).resolve().parents[2]


def _exporter() -> Any:
    return load_script("ce_exporter", ROOT / "monitoring" / "exporter" / "exporter.py")


def _istio_view(dep: dict[str, Any]) -> dict[str, str]:
    """What Istio's telemetry reports as destination_* for a pod of ``dep``."""
    md, tpl = dep["metadata"], dep["spec"]["template"]
    pl = tpl["metadata"]["labels"]
    ns = md["namespace"]
    return {
        "destination_workload": md["name"],
        "destination_workload_namespace": ns,
        "destination_app": pl["app"],
        "destination_version": pl["version"],
        "destination_canonical_service": pl.get(
            "service.istio.io/canonical-name", pl.get("app.kubernetes.io/name", pl["app"])
        ),
        "destination_canonical_revision": pl.get(
            "service.istio.io/canonical-revision",
            pl.get("app.kubernetes.io/version", pl["version"]),
        ),
        "destination_principal": f"spiffe://cluster.local/ns/{ns}/sa/"
        f"{tpl['spec']['serviceAccountName']}",
    }


def _series(text: str, name: str) -> list[dict[str, str]]:
    return [
        s.labels
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


def _selects(promql_selector: str, labels: dict[str, str]) -> bool:
    for k, op, v in re.findall(r'(\w+)(=~|!=|=)"([^"]*)"', promql_selector):
        have = labels.get(k, "")
        ok = {"=": have == v, "!=": have != v, "=~": re.fullmatch(v, have) is not None}[op]
        if not ok:
            return False
    return True


def test_exporter_series_carry_the_programs_pod_labels() -> None:
    exp = _exporter()
    s = settings_for("local", 1, None)
    app = exp.SyntheticIstio(s, exp.Behaviour(canary_weight=s.rollout.weights.canary), seed=1)
    app.tick()
    app.tick()
    from prometheus_client import generate_latest

    text = generate_latest(app.registry).decode()
    deps = {
        d.inputs["metadata"]["name"]: d.inputs
        for d in program_capture("local", 1).of_type("kubernetes:apps/v1:Deployment")
    }
    dest = [x for x in _series(text, "istio_requests_total") if x["reporter"] == "destination"]
    seen = {x["destination_workload"]: x for x in dest}
    assert set(seen) == {"api-blue", "api-green"}
    for workload, labels in seen.items():
        want = _istio_view(deps[workload])
        assert {k: labels[k] for k in want} == want
        assert labels["destination_service"] == "api.claude-enhancer.svc.cluster.local"
    assert {x["destination_version"] for x in dest} == {"5.0.3", "5.1.0"}
    assert {x["reporter"] for x in _series(text, "istio_requests_total")} == {
        "source",
        "destination",
    }


def test_gate_queries_find_the_canary_and_only_it() -> None:
    exp = _exporter()
    s = settings_for("local", 1, None)
    app = exp.SyntheticIstio(s, exp.Behaviour(canary_weight=s.rollout.weights.canary), seed=1)
    app.tick()
    from prometheus_client import generate_latest

    text = generate_latest(app.registry).decode()
    from components.app import traffic_targets

    t = traffic_targets(s.app, s.namespaces.app)["canary"]
    q = build_queries(GateThresholds(), GateTarget("canary", t["destination"], t["pod"]))
    sel = q.request_count[q.request_count.index("{") : q.request_count.index("}") + 1]
    hits = [x for x in _series(text, "istio_requests_total") if _selects(sel, x)]
    assert hits and {x["destination_workload"] for x in hits} == {"api-green"}
    assert {x["reporter"] for x in hits} == {"destination"}
    agents_sel = q.agents_down[q.agents_down.index("{") : q.agents_down.index("}") + 1]
    agents = [x for x in _series(text, "ce_agent_up") if _selects(agents_sel, x)]
    assert len(agents) == len(s.app.agents) == 61


def test_exporter_follows_a_promotion_in_the_stack_file(tmp_path: Path, monkeypatch: Any) -> None:
    exp = _exporter()
    src = ROOT / "stacks" / "Pulumi.local.yaml"
    f = tmp_path / "Pulumi.local.yaml"
    f.write_text(src.read_text())
    monkeypatch.setattr(exp, "stack_file", lambda _stack: f)
    app = exp.SyntheticIstio(exp.load_settings("local"), exp.Behaviour(), seed=1, stack="local")
    f.write_text(src.read_text().replace("stableVersion: 5.0.3", "stableVersion: 5.1.0"))
    os.utime(f, (1, 1))  # a different mtime, whatever the clock's resolution
    app.follow_stack()
    app.tick()
    from prometheus_client import generate_latest

    text = generate_latest(app.registry).decode()
    blue = {
        x["destination_version"]
        for x in _series(text, "istio_requests_total")
        if x["destination_workload"] == "api-blue"
    }
    assert blue == {"5.1.0"}


def test_workflow_series_carry_each_tracks_pod_labels() -> None:
    """The gate's ``workflows`` check selects the judged track's workflow engine by the
    labels Prometheus copies from its pods (``podTargetLabels``), as for ``ce_agent_up``."""
    exp = _exporter()
    s = settings_for("local", 1, None)
    app = exp.SyntheticIstio(s, exp.Behaviour(canary_weight=s.rollout.weights.canary), seed=1)
    for _ in range(8):  # 4 workflows/s per track at 0.25 s ticks: a few finish
        app.tick()
    from prometheus_client import generate_latest

    text = generate_latest(app.registry).decode()
    from components.app import traffic_targets

    deps = {
        d.inputs["metadata"]["name"]: d.inputs
        for d in program_capture("local", 1).of_type("kubernetes:apps/v1:Deployment")
    }
    runs = [x for x in _series(text, "ce_workflow_runs_total") if "result" in x]
    for track, t in traffic_targets(s.app, s.namespaces.app).items():
        q = build_queries(GateThresholds(), GateTarget(track, t["destination"], t["pod"]))
        sel = q.workflow_failure_ratio.rsplit("ce_workflow_runs_total", 1)[1]
        sel = sel[: sel.index("}") + 1]
        hits = [x for x in runs if _selects(sel, x)]
        assert hits, (track, sel)
        workloads = {x["pod"].rsplit("-", 1)[0] for x in hits}
        assert len(workloads) == 1
        (workload,) = workloads
        pod_labels = deps[workload]["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["app"] == "workflow-engine"
        assert {x["version"] for x in hits} == {pod_labels["version"]}
