"""Monitoring: ServiceMonitor (15 s), PrometheusRule from monitoring/rules.yaml,
AlertmanagerConfig routing by severity, Grafana dashboards as ConfigMaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import dashboards
from components.app import APP_METRIC_POD_LABELS
from components.common import PART_OF, child, labels, meta
from components.settings import MonitoringSettings

RULES_FILE = Path(__file__).resolve().parent.parent / "monitoring" / "rules.yaml"
MON_API = "monitoring.coreos.com/v1"

#: SPEC escalation levels (minutes since firing) -> repeat interval.
ESCALATION = ("0-2m", "2-5m", "5-10m", "10-15m", "15-30m")


def load_rule_groups(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    """The rule groups exactly as promtool checks them."""
    doc = yaml.safe_load(path.read_text())
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not groups:
        raise ValueError(f"{path}: no rule groups")
    return groups


def alertmanager_spec(m: MonitoringSettings) -> dict[str, Any]:
    """Pure: route critical -> paging (+chat), warning -> chat, info -> email."""
    return {
        "route": {
            "receiver": "email",
            "groupBy": ["alertname", "severity"],
            "groupWait": "10s",
            "groupInterval": "1m",
            "repeatInterval": "4h",
            "routes": [
                {
                    "receiver": "paging",
                    "matchers": [{"name": "severity", "value": "critical", "matchType": "="}],
                    "groupWait": "0s",
                    "repeatInterval": "5m",
                    "continue": True,
                },
                {
                    "receiver": "chat",
                    "matchers": [
                        {"name": "severity", "value": "critical|warning", "matchType": "=~"}
                    ],
                    "groupWait": "10s",
                    "repeatInterval": "15m",
                },
                {
                    "receiver": "email",
                    "matchers": [{"name": "severity", "value": "info", "matchType": "="}],
                    "repeatInterval": "1h",
                },
            ],
        },
        "receivers": [
            {"name": "paging", "webhookConfigs": [{"url": m.paging_url, "sendResolved": True}]},
            {"name": "chat", "webhookConfigs": [{"url": m.chat_url, "sendResolved": True}]},
            {
                "name": "email",
                "emailConfigs": [
                    {
                        "to": m.email_to,
                        "from": m.email_from,
                        "smarthost": m.smarthost,
                        "requireTLS": True,
                        "sendResolved": True,
                    }
                ],
            },
        ],
        "inhibitRules": [
            {
                "sourceMatch": [{"name": "severity", "value": "critical", "matchType": "="}],
                "targetMatch": [{"name": "severity", "value": "warning", "matchType": "="}],
                "equal": ["alertname"],
            }
        ],
    }


@dataclass
class MonitoringArgs:
    """Inputs of the Monitoring component."""

    monitoring: MonitoringSettings
    """Scrape interval and alert receivers."""
    app_namespace: str
    """Where the scraped Services live."""
    namespace: str
    """Monitoring namespace (dashboards, alertmanager config)."""
    rules_file: Path = RULES_FILE
    """Rule groups file (also used by promtool)."""
    depends_on: list[pulumi.Resource] | None = None
    """Namespaces."""


class Monitoring(pulumi.ComponentResource):
    """ServiceMonitor, PrometheusRule, AlertmanagerConfig, dashboards."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:Monitoring", name, None, opts)
        deps = list(args.depends_on or [])
        m = args.monitoring
        mon_labels = {**labels("claude-enhancer", "monitoring"), "release": "prometheus"}
        self.service_monitor = k8s.apiextensions.CustomResource(
            "service-monitor",
            api_version=MON_API,
            kind="ServiceMonitor",
            metadata=meta("claude-enhancer", args.app_namespace, labels=mon_labels),
            spec={
                "jobLabel": "app.kubernetes.io/part-of",
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/part-of": PART_OF,
                        "app.kubernetes.io/component": "service",
                    }
                },
                "namespaceSelector": {"matchNames": [args.app_namespace]},
                # the rollout gate tells the tracks' app metrics apart by the pods' version
                "podTargetLabels": list(APP_METRIC_POD_LABELS),
                "endpoints": [
                    {
                        "port": "http",
                        "path": "/metrics",
                        "interval": m.scrape_interval,
                        "scrapeTimeout": "10s",
                    }
                ],
            },
            opts=child(self, deps),
        )
        self.rules = k8s.apiextensions.CustomResource(
            "prometheus-rule",
            api_version=MON_API,
            kind="PrometheusRule",
            metadata=meta("claude-enhancer", args.namespace, labels=mon_labels),
            spec={"groups": load_rule_groups(args.rules_file)},
            opts=child(self, deps),
        )
        self.alertmanager = k8s.apiextensions.CustomResource(
            "alertmanager-config",
            api_version="monitoring.coreos.com/v1alpha1",
            kind="AlertmanagerConfig",
            metadata=meta("claude-enhancer", args.namespace, labels=mon_labels),
            spec=alertmanager_spec(m),
            opts=child(self, deps),
        )
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
            {"dashboards": [f"grafana-dashboard-{d}" for d in dashboards.DASHBOARDS]}
        )
