"""Every metric a dashboard panel or a rule queries is produced by something we know.

Sources: a recording rule of the rule files, the synthetic exporter (which mirrors Istio's
and the app's series), or a real exporter of a component we deploy, listed in REAL_EXPORTERS
with where its name comes from. A panel or rule that names anything else (a typo, or a
metric nothing exports, like an ``http_requests_total`` the app never had) fails here.
"""

from __future__ import annotations

import pytest

from components import dashboards
from components.alerting import all_groups
from monitoring.exporter.exporter import Behaviour, SyntheticIstio, load_settings
from tests.metric_producers import metric_names

#: metric -> the real exporter that produces it (names checked against upstream sources).
REAL_EXPORTERS: dict[str, str] = {
    # kubelet cAdvisor
    "container_cpu_usage_seconds_total": "cAdvisor",
    "container_memory_working_set_bytes": "cAdvisor",
    # kube-state-metrics
    "kube_pod_container_resource_limits": "kube-state-metrics",
    # CloudNativePG instance exporter: built-in collector + default monitoring queries
    # (config/manager/default-monitoring.yaml: pg_replication, pg_stat_archiver)
    "cnpg_collector_up": "CNPG collector",
    "cnpg_collector_last_available_backup_timestamp": "CNPG collector",
    "cnpg_pg_replication_lag": "CNPG default query pg_replication",
    "cnpg_pg_replication_in_recovery": "CNPG default query pg_replication",
    "cnpg_pg_replication_is_wal_receiver_up": "CNPG default query pg_replication",
    "cnpg_pg_replication_streaming_replicas": "CNPG default query pg_replication",
    "cnpg_pg_replication_timeline_id": "CNPG default query pg_replication",
    "cnpg_pg_stat_archiver_failed_count": "CNPG default query pg_stat_archiver",
    "cnpg_pg_stat_archiver_seconds_since_last_archival": "CNPG default query pg_stat_archiver",
    # oliver006/redis_exporter (the redis-operator's sidecar)
    "redis_up": "redis_exporter",
    "redis_cluster_state": "redis_exporter (CLUSTER INFO, ok=1)",
    "redis_connected_slaves": "redis_exporter (INFO replication)",
    "redis_instance_info": "redis_exporter",
    # Vault telemetry, Prometheus format (/v1/sys/metrics?format=prometheus)
    "vault_core_unsealed": "Vault core telemetry",
    "vault_audit_log_request_failure": "Vault audit telemetry",
    "vault_audit_log_response_failure": "Vault audit telemetry",
    "vault_expire_num_irrevocable_leases": "Vault lease telemetry",
    "vault_database_UpdateUser_error": "Vault dbplugin v5 metrics middleware",
    # istiod
    "citadel_server_root_cert_expiry_timestamp": "istiod",
    # the rollout controller's /metrics (driver/)
    "ce_rollout_canary_weight": "rollout controller",
    "ce_rollout_phase": "rollout controller",
    "ce_rollout_phase_completed_total": "rollout controller",
    "ce_rollout_rollbacks_total": "rollout controller",
    # Prometheus itself
    "ALERTS": "Prometheus rule manager",
}


def test_tokenizer() -> None:
    assert metric_names(
        'sum by (le) (rate(a_bucket{x="y",le=~"1|2"}[5m])) / on (pod) group_left b_total offset 5m'
    ) == {"a_bucket", "b_total"}
    assert metric_names("count(up == 0) > 5 and absent(c) or vector(0)") == {"up", "c"}


def _exporter_names() -> set[str]:
    app = SyntheticIstio(load_settings("local"), Behaviour(), seed=1)
    app.tick()  # every labelled series exists after one tick
    names = set()
    for fam in app.registry.collect():
        names |= {s.name for s in fam.samples}
    return names


def _recorded() -> set[str]:
    return {r["record"] for g in all_groups() for r in g["rules"] if "record" in r}


KNOWN = _exporter_names() | _recorded() | set(REAL_EXPORTERS)


def _panels() -> list[tuple[str, str]]:
    return [(f"{name}/{title}", expr) for name, title, _, expr in dashboards.panel_queries()]


@pytest.mark.parametrize("where,expr", _panels(), ids=[w for w, _ in _panels()])
def test_every_dashboard_query_names_a_produced_metric(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    assert names <= KNOWN, f"{where}: nothing produces {sorted(names - KNOWN)}"


def test_every_rule_names_a_produced_metric() -> None:
    unknown = {
        (r.get("alert") or r.get("record")): sorted(metric_names(r["expr"]) - KNOWN)
        for g in all_groups()
        for r in g["rules"]
        if metric_names(r["expr"]) - KNOWN
    }
    assert not unknown, unknown


def test_exporter_mirrors_the_app_series_the_rules_read() -> None:
    names = _exporter_names()
    for m in ("ce_agent_up", "ce_workflow_runs_total", "ce_workflow_phase_executions_total",
              "ce_workflow_phase_transitions_total", "istio_requests_total",
              "istio_request_duration_milliseconds_bucket"):  # fmt: skip
        assert m in names
