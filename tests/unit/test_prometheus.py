"""The Prometheus and Alertmanager the program asks prometheus-operator for (components.prometheus):
they select exactly the program's ServiceMonitor and PrometheusRule, run as the identities the
AuthorizationPolicies admit, fit the monitoring namespace's LimitRange and quota, and pass Pod
Security "restricted" at the pod level (the operator sets the container level)."""

from __future__ import annotations

from typing import Any

import pytest

from components import monitoring
from components import prometheus as prom
from components.mesh import authorization_policies
from tests.unit.conftest import program_capture, settings_for

MON_NS = "claude-enhancer-monitoring"
DATA_NS = "claude-enhancer-data"


def _cr(cap: Any, kind: str) -> Any:
    (cr,) = cap.of_type(f"kubernetes:monitoring.coreos.com/v1:{kind}")
    return cr


def _selects(selector: dict[str, Any], obj_labels: dict[str, str]) -> bool:
    return all(obj_labels.get(k) == v for k, v in selector["matchLabels"].items())


def _ns_values(selector: dict[str, Any]) -> list[str]:
    (expr,) = selector["matchExpressions"]
    assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "In"
    return list(expr["values"])


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_prometheus_selects_the_programs_service_monitor_and_rules(stack: str) -> None:
    cap = program_capture(stack)
    spec = _cr(cap, "Prometheus").inputs["spec"]
    # issue 23: every scrape object (ServiceMonitors, PodMonitors, ScrapeConfigs), not one
    (rule,) = cap.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    scrape = [r for kind in ("ServiceMonitor", "PodMonitor", "ScrapeConfig") for r in cap.crs(kind)]
    assert {r.inputs["kind"] for r in scrape} >= {"ServiceMonitor", "PodMonitor"}
    for sm in scrape:
        field = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}.get(
            sm.inputs["kind"], "scrapeConfig"
        )
        assert _selects(spec[f"{field}Selector"], sm.inputs["metadata"]["labels"])
        ns = sm.inputs["metadata"]["namespace"]
        assert ns in _ns_values(spec[f"{field}NamespaceSelector"])
    assert _selects(spec["ruleSelector"], rule.inputs["metadata"]["labels"])
    assert rule.inputs["metadata"]["namespace"] in _ns_values(spec["ruleNamespaceSelector"])
    # only the program's own namespaces: another team's rules never land in this Prometheus
    assert _ns_values(spec["ruleNamespaceSelector"]) == [MON_NS]
    assert spec["alerting"]["alertmanagers"][0]["namespace"] == MON_NS


def test_alertmanager_reads_the_plain_config_and_merges_no_alertmanager_config() -> None:
    cap = program_capture("local")
    am = _cr(cap, "Alertmanager")
    # the operator's default config Secret for an Alertmanager <name> is alertmanager-<name>
    assert f"alertmanager-{am.inputs['metadata']['name']}" == monitoring.PLAIN_CONFIG_SECRET
    assert monitoring.PLAIN_CONFIG_KEY == "alertmanager.yaml"
    spec = am.inputs["spec"]
    # no selector: the AlertmanagerConfig (for a shared Alertmanager) is not routed a 2nd time
    assert "alertmanagerConfigSelector" not in spec and "configSecret" not in spec
    assert spec["replicas"] == 3 and spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("kind", ["Prometheus", "Alertmanager"])
def test_pod_level_restricted_and_system_pool(kind: str) -> None:
    spec = _cr(program_capture("local"), kind).inputs["spec"]
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["nodeSelector"] == {"node.claude-enhancer.io/pool": "system"}
    # the operator's own pod labels win over podMetadata: selectors use only those
    (spread,) = spec["topologySpreadConstraints"]
    pods = prom.PROMETHEUS_PODS if kind == "Prometheus" else prom.ALERTMANAGER_PODS
    assert spread["labelSelector"]["matchLabels"] == pods
    assert "app.kubernetes.io/name" not in spec["podMetadata"]["labels"]


def test_service_accounts_are_the_ones_the_mesh_admits() -> None:
    cap = program_capture("local")
    s = settings_for("local")
    assert _cr(cap, "Prometheus").inputs["spec"]["serviceAccountName"] == prom.PROMETHEUS_SA
    aps = {(n, name): spec for n, name, spec in authorization_policies(s.namespaces, s.mesh)}
    scrape = aps[(DATA_NS, "allow-prometheus-postgres")]
    principals = scrape["rules"][0]["from"][0]["source"]["principals"]
    assert principals == [f"cluster.local/ns/{MON_NS}/sa/{prom.PROMETHEUS_SA}"]
    to_am = aps[(MON_NS, "allow-prometheus-to-alertmanager")]
    assert to_am["selector"]["matchLabels"] == prom.ALERTMANAGER_PODS
    assert to_am["rules"][0]["to"][0]["operation"]["ports"] == [str(prom.ALERTMANAGER_PORT)]
    peers = aps[(MON_NS, "allow-alertmanager-peers")]
    assert peers["rules"][0]["from"][0]["source"]["principals"] == [
        f"cluster.local/ns/{MON_NS}/sa/{prom.ALERTMANAGER_SA}"
    ]


def _mi(v: str) -> int:
    return int(v[:-2]) * (1024 if v.endswith("Gi") else 1)


def test_monitoring_limit_range_and_quota_admit_the_operated_pods() -> None:
    cap = program_capture("local")
    (lr,) = [
        r
        for r in cap.of_type("kubernetes:core/v1:LimitRange")
        if r.inputs["metadata"]["namespace"] == MON_NS
    ]
    mx = lr.inputs["spec"]["limits"][0]["max"]
    for r in prom.CONTAINERS:
        assert r.limit_cpu_m <= int(mx["cpu"][:-1]) and r.limit_memory_mi <= _mi(mx["memory"])
    (quota,) = [
        r
        for r in cap.of_type("kubernetes:core/v1:ResourceQuota")
        if r.inputs["metadata"]["namespace"] == MON_NS
    ]
    hard = quota.inputs["spec"]["hard"]
    reloader = prom.CONFIG_RELOADER_RESOURCES
    pods = (
        (prom.PROMETHEUS_REPLICAS, prom.PROMETHEUS_RESOURCES),
        (prom.ALERTMANAGER_REPLICAS, prom.ALERTMANAGER_RESOURCES),
    )
    cpu = sum(n * (r.limit_cpu_m + reloader.limit_cpu_m) for n, r in pods)
    mem = sum(n * (r.limit_memory_mi + reloader.limit_memory_mi) for n, r in pods)
    assert cpu <= float(hard["limits.cpu"]) * 1000 and mem <= _mi(hard["limits.memory"])
