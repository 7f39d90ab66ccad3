"""Monitoring: ServiceMonitor (15 s), PrometheusRule from the rule files, Alertmanager
routing (AlertmanagerConfig + a plain alertmanager.yml), Grafana dashboards as ConfigMaps, and
the Prometheus and Alertmanager that prometheus-operator runs (specs: ``components.prometheus``).

The routing tree, escalation ladder and SLO rules are built by ``components.alerting``
(pure); this component only wires them to resources. Webhook URLs reach Kubernetes only
inside Secrets whose data comes from secret Outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import alerting, dashboards
from components import prometheus as prom
from components.common import child, labels, meta, secret_data
from components.settings import MonitoringSettings

RULES_FILE = alerting.RULES_FILE
MON_API = "monitoring.coreos.com/v1"
MON_API_ALPHA = "monitoring.coreos.com/v1alpha1"
#: Secret with the receivers' webhook URLs (read by the operator through urlSecret).
RECEIVERS_SECRET = "alertmanager-receivers"
#: Secret with the plain alertmanager.yml: the operator's own convention (key
#: ``alertmanager.yaml`` in ``alertmanager-<name>``) makes it the program's Alertmanager's config.
PLAIN_CONFIG_SECRET = f"alertmanager-{prom.NAME}"
PLAIN_CONFIG_KEY = "alertmanager.yaml"


def load_rule_groups(files: tuple[Path, ...] = alerting.RULE_FILES) -> list[dict[str, Any]]:
    """The rule groups of every rule file, exactly as promtool checks them."""
    return alerting.all_groups(files)


def webhook_urls(m: MonitoringSettings) -> dict[str, str]:
    """Receiver name -> webhook URL (plaintext: wrap in a secret Output before use)."""
    urls = {alerting.CHAT: m.chat_url, alerting.PAGING: m.paging_url}
    out = {name: s.reveal() for name, s in urls.items() if s is not None}
    for level, url in m.escalation_urls:
        out[alerting.escalation_receiver(level)] = url.reveal()
    return out


def receivers(m: MonitoringSettings, urls: dict[str, str]) -> alerting.Receivers:
    """The alerting model's receivers for ``m`` with the given URLs."""
    return alerting.Receivers(
        chat_url=urls.get(alerting.CHAT),
        paging_url=urls.get(alerting.PAGING),
        escalation_urls={
            lv: urls[alerting.escalation_receiver(lv)]
            for lv, _ in m.escalation_urls
            if alerting.escalation_receiver(lv) in urls
        },
        email_to=m.email_to,
        email_from=m.email_from,
        smarthost=m.smarthost,
    )


def secret_keys(m: MonitoringSettings) -> dict[str, str]:
    """Receiver name -> key in RECEIVERS_SECRET, for every receiver that has a webhook.

    An escalation level without its own URL re-pages: it reads the paging key."""
    urls = webhook_urls(m)
    keys = {name: name for name in urls}
    if alerting.PAGING in urls:
        for lv in alerting.ESCALATION[1:]:
            keys.setdefault(alerting.escalation_receiver(lv.level), alerting.PAGING)
    return keys


def alertmanager_spec(m: MonitoringSettings) -> dict[str, Any]:
    """Pure: the AlertmanagerConfig spec; URLs stay in RECEIVERS_SECRET (never inlined)."""
    # presence only: the spec refers to the Secret, so stand-in values never reach it
    present = {name: f"secret:{name}" for name in webhook_urls(m)}
    return alerting.alertmanager_config_spec(
        RECEIVERS_SECRET, secret_keys(m), receivers(m, present)
    )


def plain_alertmanager_yaml(
    m: MonitoringSettings,
    urls: dict[str, str],
    levels: tuple[alerting.EscalationLevel, ...] = alerting.ESCALATION,
    timing: alerting.Timing = alerting.DEFAULT_TIMING,
) -> str:
    """Pure: alertmanager.yml with the real URLs (only ever built inside a secret Output).

    ``levels`` and ``timing`` are only compressed by the delivery tests."""
    cfg = alerting.alertmanager_config(receivers(m, urls), levels, timing)
    return str(yaml.safe_dump(cfg, sort_keys=False))


@dataclass
class MonitoringArgs:
    """Inputs of the Monitoring component."""

    monitoring: MonitoringSettings
    """Scrape interval and alert receivers."""
    app_namespace: str
    """Where the scraped Services live."""
    namespace: str
    """Monitoring namespace (dashboards, alertmanager config)."""
    data_namespace: str = "claude-enhancer-data"
    """Where the data tier's exporters run (their PodMonitors live there)."""
    pg_pods: Mapping[str, str] = field(default_factory=dict)
    """Labels of the CNPG instance pods."""
    vault_address: str | None = None
    """Vault's address, when the stack uses Vault (its telemetry is scraped)."""
    mesh_root_namespace: str | None = None
    """Where istiod runs (its metrics are scraped)."""
    rule_files: tuple[Path, ...] = alerting.RULE_FILES
    """Rule group files (also used by promtool)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespaces."""


class Monitoring(pulumi.ComponentResource):
    """ServiceMonitor, PrometheusRule, Alertmanager routing, dashboards."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Monitoring", name, None, opts)
        deps = list(args.depends_on or [])
        m = args.monitoring
        mon_labels = {**labels("claude-enhancer", "monitoring"), **prom.SELECTOR}
        # no ServiceMonitor on the app port: through Prometheus' sidecar it is passthrough
        # plaintext, which STRICT resets (components/prometheus.py scrape_objects)
        self.scrape_objects = [
            k8s.apiextensions.CustomResource(
                f"{kind.lower()}-{obj_ns}-{obj_name}",
                api_version=MON_API_ALPHA if kind == "ScrapeConfig" else MON_API,
                kind=kind,
                metadata=meta(obj_name, obj_ns, labels=mon_labels),
                spec=spec,
                opts=child(self, deps),
            )
            for kind, obj_ns, obj_name, spec in prom.scrape_objects(
                m,
                args.app_namespace,
                args.data_namespace,
                args.namespace,
                dict(args.pg_pods),
                args.vault_address,
                args.mesh_root_namespace,
            )
        ]
        self.rules = k8s.apiextensions.CustomResource(
            "prometheus-rule",
            api_version=MON_API,
            kind="PrometheusRule",
            metadata=meta("claude-enhancer", args.namespace, labels=mon_labels),
            spec={"groups": load_rule_groups(args.rule_files)},
            opts=child(self, deps),
        )
        urls = webhook_urls(m)
        secret_urls = pulumi.Output.secret(urls)
        self.receivers_secret = k8s.core.v1.Secret(
            "alertmanager-receivers",
            metadata=meta(RECEIVERS_SECRET, args.namespace, labels=mon_labels),
            type="Opaque",
            # no URLs (the local stack): no data at all; an empty map is stored as none and
            # would show as a change on every preview
            data=secret_data(secret_urls) if urls else None,
            opts=child(self, deps),
        )
        # The operator scopes an AlertmanagerConfig to alerts whose `namespace` label is the
        # CR's namespace unless the Alertmanager sets alertmanagerConfigMatcherStrategy None;
        # platform alerts (no or other namespaces) need that, or the plain config below.
        self.alertmanager = k8s.apiextensions.CustomResource(
            "alertmanager-config",
            api_version="monitoring.coreos.com/v1alpha1",
            kind="AlertmanagerConfig",
            metadata=meta("claude-enhancer", args.namespace, labels=mon_labels),
            spec=alertmanager_spec(m),
            opts=child(self, [*deps, self.receivers_secret]),
        )
        self.plain_config = k8s.core.v1.Secret(
            "alertmanager-plain-config",
            metadata=meta(PLAIN_CONFIG_SECRET, args.namespace, labels=mon_labels),
            type="Opaque",
            data=secret_data(
                secret_urls.apply(lambda u: {PLAIN_CONFIG_KEY: plain_alertmanager_yaml(m, u)})
            ),
            opts=child(self, deps),
        )
        self._operated(args, deps)
        self.dashboards = [
            k8s.core.v1.ConfigMap(
                f"dashboard-{dname}",
                metadata=meta(
                    f"grafana-dashboard-{dname}",
                    args.namespace,
                    labels={**labels("claude-enhancer", "dashboard"), "grafana_dashboard": "1"},
                    annotations={"grafana_folder": "Claude Enhancer"},
                ),
                data={f"claude-enhancer-{dname}.json": body},
                opts=child(self, deps),
            )
            for dname, body in dashboards.render_all().items()
        ]
        self.register_outputs(
            {
                "dashboards": [f"grafana-dashboard-{d}" for d in dashboards.DASHBOARDS],
                "prometheus": f"{args.namespace}/{prom.NAME}",
                "alertmanager": f"{args.namespace}/{prom.NAME}",
            }
        )

    def _operated(self, args: MonitoringArgs, deps: list[pulumi.Resource]) -> None:
        """The Prometheus and Alertmanager CRs, their service accounts and Prometheus' RBAC."""
        ns = args.namespace
        accounts = {
            sa: k8s.core.v1.ServiceAccount(
                f"{sa}-sa",
                metadata=meta(sa, ns, labels=labels(sa, "monitoring")),
                automount_service_account_token=False,  # per pod: see components.prometheus
                opts=child(self, deps),
            )
            for sa in (prom.PROMETHEUS_SA, prom.ALERTMANAGER_SA)
        }
        role = k8s.rbac.v1.ClusterRole(
            "prometheus-role",
            metadata=meta(f"{prom.NAME}-prometheus", labels=labels("prometheus", "monitoring")),
            rules=prom.prometheus_cluster_rules(),
            opts=child(self),
        )
        binding = k8s.rbac.v1.ClusterRoleBinding(
            "prometheus-binding",
            metadata=meta(f"{prom.NAME}-prometheus", labels=labels("prometheus", "monitoring")),
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role.metadata["name"],
            },
            subjects=[{"kind": "ServiceAccount", "name": prom.PROMETHEUS_SA, "namespace": ns}],
            opts=child(self, [accounts[prom.PROMETHEUS_SA]]),
        )
        self.prometheus = k8s.apiextensions.CustomResource(
            "prometheus",
            api_version=MON_API,
            kind="Prometheus",
            metadata=meta(prom.NAME, ns, labels=labels("prometheus", "monitoring")),
            spec=prom.prometheus_spec(args.monitoring, args.app_namespace, ns, args.data_namespace),
            opts=child(self, [*deps, binding]),
        )
        self.alertmanager_server = k8s.apiextensions.CustomResource(
            "alertmanager",
            api_version=MON_API,
            kind="Alertmanager",
            metadata=meta(prom.NAME, ns, labels=labels("alertmanager", "monitoring")),
            spec=prom.alertmanager_spec(),
            opts=child(self, [*deps, accounts[prom.ALERTMANAGER_SA], self.plain_config]),
        )
