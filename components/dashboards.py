"""Grafana dashboards as code (grafana-foundation-sdk), pure JSON builders.

Queries only; nothing here depends on the rollout phase (the traffic split
panel reads it live from Istio metrics). ``python -m components.dashboards --out DIR``
(``./ce dashboards``) writes each as ``DIR/<name>.json`` for Grafana's import.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

DS = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
JOB = 'job="claude-enhancer"'
#: the api as Istio's destination sidecars report it (the app has no HTTP metrics of its own)
API = 'destination_service_name="api",reporter="destination"'


def _q(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def _thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def _ts(title: str, unit: str, *queries: tuple[str, str], w: int = 12) -> timeseries.Panel:
    p = timeseries.Panel().title(title).unit(unit).datasource(DS).span(w).height(8)
    for i, (expr, legend) in enumerate(queries):
        p = p.with_target(_q(expr, legend, chr(ord("A") + i)))
    return p


def _stat(title: str, unit: str, expr: str, th: db.ThresholdsConfig, w: int = 6) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .unit(unit)
        .datasource(DS)
        .span(w)
        .height(5)
        .with_target(_q(expr, title))
        .thresholds(th)
    )


def _dash(uid: str, title: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(["claude-enhancer"])
        .refresh("15s")
        .time("now-1h", "now")
        .timezone("browser")
        .readonly()
    )


def deployment_overview() -> db.Dashboard:
    """Live traffic split between stable and canary plus overall health."""
    split = (
        'sum by (destination_version) (rate(istio_requests_total{destination_service_name="api",'
        'reporter="destination"}[1m]))'
    )
    return (
        _dash("ce-deployment-overview", "Claude Enhancer / Deployment overview")
        .with_row(db.Row("Traffic split"))
        .with_panel(
            _ts("Requests per version (live split)", "reqps", (split, "{{destination_version}}"))
        )
        .with_panel(
            _ts(
                "Share per version",
                "percentunit",
                (
                    f"{split} / ignoring(destination_version) group_left sum(rate(istio_requests_total"
                    '{destination_service_name="api",reporter="destination"}[1m]))',
                    "{{destination_version}}",
                ),
            )
        )
        .with_panel(
            _stat(
                "Canary weight",
                "percent",
                "max(ce_rollout_canary_weight)",
                _thresholds((None, "blue")),
            )
        )
        .with_panel(
            _stat(
                "Total RPS",
                "reqps",
                f"sum(rate(istio_requests_total{{{API}}}[1m]))",
                _thresholds((None, "red"), (1000, "green")),
            )
        )
    )


def latency() -> db.Dashboard:
    """P50/P95/P99 latency per version (stable/canary), from Istio's histogram in ms."""

    def q(quant: float) -> str:
        return (
            f"histogram_quantile({quant}, sum by (le, destination_version) "
            f"(rate(istio_request_duration_milliseconds_bucket{{{API}}}[1m])))"
        )

    return (
        _dash("ce-latency", "Claude Enhancer / Latency")
        .with_panel(
            _ts(
                "Latency P50 / P95 / P99",
                "ms",
                (q(0.5), "P50 {{destination_version}}"),
                (q(0.95), "P95 {{destination_version}}"),
                (q(0.99), "P99 {{destination_version}}"),
                w=24,
            )
        )
        .with_panel(_stat("P95", "ms", q(0.95), _thresholds((None, "green"), (500, "red"))))
        .with_panel(_stat("P99", "ms", q(0.99), _thresholds((None, "green"), (1000, "red"))))
    )


def errors() -> db.Dashboard:
    """Error ratio over a 5-minute window."""
    total = f"sum by (destination_version) (rate(istio_requests_total{{{API}}}[5m]))"
    # a version without a single 5xx has no 5xx series: 0 for it, not a missing line
    ratio = (
        f'(sum by (destination_version) (rate(istio_requests_total{{{API},response_code=~"5.."}}[5m]))'
        f" or {total} * 0) / {total}"
    )
    return (
        _dash("ce-errors", "Claude Enhancer / Errors (5m)")
        .with_panel(_ts("5xx ratio (5m)", "percentunit", (ratio, "{{destination_version}}"), w=24))
        .with_panel(
            _stat(
                "Error ratio (5m)",
                "percentunit",
                f"sum({ratio})",
                _thresholds((None, "green"), (0.001, "orange"), (0.005, "red")),
            )
        )
    )


def agents() -> db.Dashboard:
    """State of the 61 agents."""
    return (
        _dash("ce-agents", "Claude Enhancer / Agent status")
        .with_panel(
            _stat(
                "Agents up",
                "none",
                f"sum(ce_agent_up{{{JOB}}})",
                _thresholds((None, "red"), (58, "orange"), (60, "green")),
            )
        )
        .with_panel(
            _stat(
                "Agents failed",
                "none",
                f"count(ce_agent_up{{{JOB}}} == 0) or vector(0)",
                _thresholds((None, "green"), (1, "orange"), (6, "red")),
            )
        )
        .with_panel(
            _ts("Agent up (per agent)", "none", (f"ce_agent_up{{{JOB}}}", "{{agent}}"), w=24)
        )
        .with_panel(
            _ts(
                "Workflow phase executions",
                "ops",
                (
                    f"sum by (phase) (rate(ce_workflow_phase_executions_total{{{JOB}}}[5m]))",
                    "phase {{phase}}",
                ),
                w=24,
            )
        )
    )


def resources() -> db.Dashboard:
    """CPU / memory per pod against limits."""
    sel = 'container=~"api|workflow-engine|agent-runtime"'
    return (
        _dash("ce-resources", "Claude Enhancer / Resources")
        .with_panel(
            _ts(
                "CPU (cores)",
                "none",
                (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{sel}}}[5m]))", "{{pod}}"),
            )
        )
        .with_panel(
            _ts(
                "Memory (working set)",
                "bytes",
                (f"sum by (pod) (container_memory_working_set_bytes{{{sel}}})", "{{pod}}"),
            )
        )
        .with_panel(
            _ts(
                "CPU / limit",
                "percentunit",
                (
                    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{sel}}}[5m])) / "
                    f'sum by (pod) (kube_pod_container_resource_limits{{resource="cpu",{sel}}})',
                    "{{pod}}",
                ),
                w=24,
            )
        )
    )


DASHBOARDS = {
    "deployment-overview": deployment_overview,
    "latency": latency,
    "errors": errors,
    "agents": agents,
    "resources": resources,
}


def render_all() -> dict[str, str]:
    """name -> dashboard JSON."""
    enc = JSONEncoder(sort_keys=True, indent=2)
    return {name: enc.encode(fn().build()) for name, fn in DASHBOARDS.items()}


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel title, legend, PromQL) of every panel target."""
    out = []
    for name, body in render_all().items():
        for p in json.loads(body)["panels"]:
            for t in p.get("targets", []):
                out.append((name, str(p.get("title")), str(t.get("legendFormat", "")), t["expr"]))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the Grafana dashboards as JSON files.")
    ap.add_argument("--out", default="dashboards", help="directory (default %(default)s)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in render_all().items():
        (out / f"{name}.json").write_text(body + "\n", encoding="utf-8")
        print(out / f"{name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
