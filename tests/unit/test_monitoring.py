"""Monitoring component: scrape, rules, routing, dashboards."""

from __future__ import annotations

import json

import pytest
import yaml

from components.alerting import RULE_FILES
from components.monitoring import (
    PLAIN_CONFIG_KEY,
    PLAIN_CONFIG_SECRET,
    RECEIVERS_SECRET,
    alertmanager_spec,
    load_rule_groups,
)
from components.settings import Settings, SettingsError, load_settings
from tests.unit.conftest import (
    is_secret,
    load_stack_raw,
    program_capture,
    run_program,
    set_obj,
    unsecret,
    with_secrets,
)
from tests.unit.test_data import b64


def test_service_monitor_15s() -> None:
    # issue 23: the app is scraped through Istio's merged metrics (a PodMonitor on the agent's
    # /stats/prometheus), not by a ServiceMonitor on /metrics through the sidecars
    (pm,) = [
        r
        for r in program_capture().crs("PodMonitor")
        if r.inputs["metadata"]["namespace"] == "claude-enhancer"
    ]
    assert pm.inputs["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"
    assert pm.inputs["spec"]["podMetricsEndpoints"][0]["path"] == "/stats/prometheus"
    assert pm.inputs["spec"]["jobLabel"] == "app.kubernetes.io/part-of"


def test_prometheus_rule_is_the_promtool_files() -> None:
    (pr,) = program_capture().crs("PrometheusRule")
    groups = pr.inputs["spec"]["groups"]
    assert groups == [g for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"]]
    assert len(RULE_FILES) == 3


def _alerts() -> dict[str, dict]:
    return {r["alert"]: r for g in load_rule_groups() for r in g["rules"] if "alert" in r}


def test_spec_seed_thresholds_and_severities() -> None:
    a = _alerts()
    assert "> 0.5" in a["CEHighErrorRate"]["expr"]
    assert a["CEHighErrorRate"]["labels"]["severity"] == "critical"
    assert "> 5" in a["CEAgentsFailed"]["expr"]
    assert a["CEAgentsFailed"]["labels"]["severity"] == "critical"
    assert ">= 2" in a["CEAgentsDegraded"]["expr"]
    assert a["CEAgentsDegraded"]["labels"]["severity"] == "warning"
    assert "> 500" in a["CEHighLatencyP95"]["expr"]
    assert a["CEHighLatencyP95"]["labels"]["severity"] == "warning"
    assert "> 80" in a["CEHighCPU"]["expr"] and a["CEHighCPU"]["labels"]["severity"] == "warning"
    assert a["CERolloutPhaseCompleted"]["labels"]["severity"] == "info"
    assert a["CETrafficSwitched"]["labels"]["severity"] == "info"


def _with_receivers(**monitoring: object) -> Settings:
    raw = with_secrets(load_stack_raw("local"))
    for key, value in monitoring.items():
        raw = set_obj(raw, "monitoring", key, value)
    return load_settings(raw, {}, None, stack="local")


CHAT = "https://chat.example/hooks/T0KEN-chat"
PAGE = "https://pager.example/v2/enqueue?routing_key=T0KEN-page"
LEAD = "https://pager.example/v2/enqueue?routing_key=T0KEN-lead"
RECEIVERS = {
    "chatWebhookUrl": CHAT,
    "pagingWebhookUrl": PAGE,
    "escalationWebhookUrls": {"4": LEAD},
}


def test_alertmanager_config_routes_by_severity_and_level() -> None:
    m = _with_receivers(**RECEIVERS).monitoring
    spec = alertmanager_spec(m)
    routes = spec["route"]["routes"]

    def match(r: dict) -> tuple:
        return tuple((x["name"], x["matchType"], x["value"]) for x in r["matchers"])

    got = [(r["receiver"], match(r), r.get("continue", False)) for r in routes]
    assert got == [
        ("escalation-2", (("escalation", "=", "2"),), False),
        ("escalation-3", (("escalation", "=", "3"),), False),
        ("escalation-4", (("escalation", "=", "4"),), False),
        ("escalation-5", (("escalation", "=", "5"),), False),
        ("paging", (("severity", "=", "critical"),), True),
        ("chat", (("severity", "=~", "critical|warning"),), False),
        ("email", (("severity", "=", "info"),), False),
    ]
    assert spec["inhibitRules"] == [
        {
            "sourceMatch": [{"name": "severity", "matchType": "=", "value": "critical"}],
            "targetMatch": [{"name": "severity", "matchType": "=", "value": "warning"}],
            "equal": ["family", "escalation"],
        }
    ]
    hooks = {
        r["name"]: r["webhookConfigs"][0]["urlSecret"]
        for r in spec["receivers"]
        if "webhookConfigs" in r
    }
    # level 4 has its own webhook, the other levels re-page
    assert hooks == {
        "paging": {"name": RECEIVERS_SECRET, "key": "paging"},
        "chat": {"name": RECEIVERS_SECRET, "key": "chat"},
        "escalation-2": {"name": RECEIVERS_SECRET, "key": "paging"},
        "escalation-3": {"name": RECEIVERS_SECRET, "key": "paging"},
        "escalation-4": {"name": RECEIVERS_SECRET, "key": "escalation-4"},
        "escalation-5": {"name": RECEIVERS_SECRET, "key": "paging"},
    }


def test_webhook_urls_are_secrets_never_plaintext() -> None:
    s = _with_receivers(**RECEIVERS)
    assert "T0KEN" not in repr(s.monitoring)
    cap = run_program(s)
    assert len(cap.crs("AlertmanagerConfig")) == 1
    secrets = {r.inputs["metadata"]["name"]: r for r in cap.of_type("kubernetes:core/v1:Secret")}
    for name in (RECEIVERS_SECRET, PLAIN_CONFIG_SECRET):
        assert is_secret(secrets[name].inputs["data"]), name
    receivers = b64(unsecret(secrets[RECEIVERS_SECRET].inputs["data"]))
    assert receivers == {"chat": CHAT, "paging": PAGE, "escalation-4": LEAD}
    plain = yaml.safe_load(
        b64(unsecret(secrets[PLAIN_CONFIG_SECRET].inputs["data"]))[PLAIN_CONFIG_KEY]
    )
    urls = {
        r["name"]: r["webhook_configs"][0]["url"]
        for r in plain["receivers"]
        if "webhook_configs" in r
    }
    assert urls["chat"] == CHAT and urls["escalation-4"] == LEAD and urls["escalation-2"] == PAGE
    # nothing else carries a URL: not the CR, not a ConfigMap
    for r in cap.resources.values():
        if r.typ != "kubernetes:core/v1:Secret":
            assert "T0KEN" not in json.dumps(r.inputs, default=str), r.name


def test_local_stack_without_receivers_drops_pages_but_keeps_email() -> None:
    m = program_capture().crs("AlertmanagerConfig")[0].inputs["spec"]
    by_name = {r["name"]: r for r in m["receivers"]}
    assert set(by_name) == {"paging", "chat", "email", *(f"escalation-{n}" for n in (2, 3, 4, 5))}
    assert "webhookConfigs" not in by_name["paging"]
    # field names as the prometheus-operator CRD spells them
    assert by_name["email"]["emailConfigs"] == [
        {
            "to": "platform-team@claude-enhancer.local",
            "from": "alertmanager@claude-enhancer.local",
            "smarthost": "smtp.claude-enhancer.local:587",
            "requireTLS": True,
            "sendResolved": True,
        }
    ]


@pytest.mark.parametrize(
    "key,value,message",
    [
        (
            "chatWebhookUrl",
            "not a url T0KEN",
            "chatWebhookUrl: must be an http(s) URL (value hidden)",
        ),
        (
            "escalationWebhookUrls",
            {"1": CHAT},
            "escalationWebhookUrls.1: escalation level must be one of",
        ),
        (
            "escalationWebhookUrls",
            {"3": "ftp://x T0KEN"},
            "escalationWebhookUrls.3: must be an http(s) URL",
        ),
        (
            "escalationWebhookUrls",
            "T0KEN",
            "escalationWebhookUrls: must be an object (value hidden)",
        ),
    ],
)
def test_bad_receivers_are_refused_without_echoing_them(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(SettingsError) as e:
        _with_receivers(**{key: value})
    assert message in str(e.value) and "T0KEN" not in str(e.value)


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
