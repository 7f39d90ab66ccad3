"""Monitoring component: scrape, rules, routing, dashboards."""

from __future__ import annotations

import json

import yaml

from components.monitoring import RULES_FILE, load_rule_groups
from tests.unit.conftest import program_capture


def test_service_monitor_15s() -> None:
    (sm,) = program_capture().crs("ServiceMonitor")
    assert sm.inputs["spec"]["endpoints"][0]["interval"] == "15s"
    assert sm.inputs["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm.inputs["spec"]["jobLabel"] == "app.kubernetes.io/part-of"


def test_prometheus_rule_is_the_promtool_file() -> None:
    (pr,) = program_capture().crs("PrometheusRule")
    groups = pr.inputs["spec"]["groups"]
    assert groups == yaml.safe_load(RULES_FILE.read_text())["groups"]


def _alerts() -> dict[str, dict]:
    return {r["alert"]: r for g in load_rule_groups() for r in g["rules"] if "alert" in r}


def test_seed_thresholds_and_severities() -> None:
    a = _alerts()
    assert (
        "> 0.005" in a["CEHighErrorRate"]["expr"]
        and a["CEHighErrorRate"]["labels"]["severity"] == "critical"
    )
    assert (
        "> 5" in a["CEAgentsFailed"]["expr"]
        and a["CEAgentsFailed"]["labels"]["severity"] == "critical"
    )
    assert (
        "histogram_quantile(0.95" in a["CEHighLatencyP95"]["expr"]
        and "> 0.5" in a["CEHighLatencyP95"]["expr"]
    )
    assert a["CEHighLatencyP95"]["labels"]["severity"] == "warning"
    assert "> 0.8" in a["CEHighCPU"]["expr"] and a["CEHighCPU"]["labels"]["severity"] == "warning"
    assert a["CERolloutPhaseCompleted"]["labels"]["severity"] == "info"
    assert a["CETrafficSwitched"]["labels"]["severity"] == "info"


def test_every_alert_has_fire_and_no_fire_test() -> None:
    doc = yaml.safe_load((RULES_FILE.parent / "rules_test.yaml").read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for t in doc["tests"]:
        for case in t.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    assert set(_alerts()) <= fires
    assert set(_alerts()) <= silent


def test_alertmanager_routes_by_severity() -> None:
    (am,) = program_capture().crs("AlertmanagerConfig")
    spec = am.inputs["spec"]
    routes = {r["receiver"]: r for r in spec["route"]["routes"]}
    assert routes["paging"]["matchers"][0]["value"] == "critical"
    assert routes["chat"]["matchers"][0]["value"] == "critical|warning"
    assert routes["email"]["matchers"][0]["value"] == "info"
    assert {r["name"] for r in spec["receivers"]} == {"paging", "chat", "email"}


def test_dashboards_configmaps() -> None:
    cms = [
        c
        for c in program_capture().of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    titles = set()
    for cm in cms:
        (body,) = cm.inputs["data"].values()
        d = json.loads(body)
        titles.add(d["title"])
        assert d["panels"] and d["uid"].startswith("ce-")
        for p in d["panels"]:
            for t in p.get("targets", []):
                assert t["expr"]
    assert len(cms) == 5
    assert any("Deployment overview" in t for t in titles)
    assert any("Latency" in t for t in titles)
    lat = next(c for c in cms if "latency" in c.inputs["metadata"]["name"])
    body = next(iter(lat.inputs["data"].values()))
    assert "0.5," in body and "0.95," in body and "0.99," in body
    errs = next(c for c in cms if "errors" in c.inputs["metadata"]["name"])
    assert "[5m]" in next(iter(errs.inputs["data"].values()))
