"""Which metrics the program reads, and who produces each: one table for the static check of the
rendered scrape objects (tests/unit/test_upstream_behaviour.py) and the check of the
configuration the real prometheus-operator renders from them (tests/integration/
test_operator_effects.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import NamedTuple

APP_NS = "claude-enhancer"
DATA_NS = "claude-enhancer-data"
MON_NS = "claude-enhancer-monitoring"


class Producer(NamedTuple):
    kind: str
    """The scrape object's kind."""
    namespace: str
    """Where the scrape object lives."""
    marker: str
    """A text in its spec that shows how it reaches the producer."""
    runs_in: str | None
    """The namespace the producer runs in (None: outside the cluster, or wherever it is
    installed, so the job must not be limited to a namespace of ours)."""


#: metric family prefix -> its producer
PRODUCERS = {
    "istio_": Producer("PodMonitor", APP_NS, "/stats/prometheus", APP_NS),
    "ce_agent_": Producer("PodMonitor", APP_NS, "/stats/prometheus", APP_NS),
    "ce_workflow_": Producer("PodMonitor", APP_NS, "/stats/prometheus", APP_NS),
    "cnpg_": Producer("PodMonitor", DATA_NS, "metrics", DATA_NS),
    "container_": Producer("ServiceMonitor", MON_NS, "/metrics/cadvisor", "kube-system"),
    "kube_": Producer("ServiceMonitor", MON_NS, "kube-state-metrics", None),
    "vault_": Producer("ScrapeConfig", MON_NS, "/v1/sys/metrics", None),
    "citadel_": Producer("ServiceMonitor", MON_NS, "istio", "istio-system"),
}

#: metric family prefix -> why the in-cluster Prometheus has no job for it
UNSCRAPED = {
    "redis_": "no Redis exporter yet (docs/real-cluster.md, Left open)",
    "ce_rollout_": "the rollout controller runs outside the cluster and serves its own "
    "/metrics (driver/README.md, --metrics-port)",
}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a small, conservative tokenizer)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges and subqueries
    # label lists of by/without/on/ignoring/group_*(...)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def metrics_read() -> dict[str, str]:
    """metric -> the first reader that queries it: the gate, the judge, a rule, a dashboard
    panel. Recorded series and ALERTS are Prometheus' own and left out."""
    from components import dashboards
    from components.alerting import all_groups
    from rollout import gate, judge

    reads: list[tuple[str, str]] = [
        ("gate", q)
        for q in (*gate.REQUIRED_METRICS, gate.AGENT_UP_METRIC, gate.WORKFLOW_RUNS_METRIC)
    ]
    reads += [(f"judge {k}", q) for k, q in asdict(judge.judge_queries("", "5m")).items()]
    groups = all_groups()
    reads += [
        (f"rule {r.get('alert') or r.get('record')}", r["expr"]) for g in groups for r in g["rules"]
    ]
    reads += [(f"dashboard {n}/{t}", e) for n, t, _, e in dashboards.panel_queries()]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    out: dict[str, str] = {}
    for where, expr in reads:
        for m in metric_names(expr) - recorded - {"ALERTS"}:
            out.setdefault(m, where)
    return out


def producer_of(metric: str) -> str | None:
    """The PRODUCERS or UNSCRAPED prefix of ``metric``."""
    return next((p for p in (*PRODUCERS, *UNSCRAPED) if metric.startswith(p)), None)
