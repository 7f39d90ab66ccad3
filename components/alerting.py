"""Alerting model, pure: SLO burn-rate rules, escalation rules and the Alertmanager config.

One home for the SLO table, the five escalation levels and the routing tree:

- ``slo_rule_groups()`` renders ``monitoring/slo_rules.yaml`` (recording rules per SLI and
  window, multi-window multi-burn-rate alerts as in the SRE workbook, chapter 5);
- ``escalation_rule_group()`` renders ``monitoring/escalation_rules.yaml``: Alertmanager has no
  notion of "still firing after N minutes", so Prometheus raises ``CEEscalation`` alerts from
  the ``ALERTS`` series with increasing ``for`` and an ``escalation`` label; Alertmanager
  routes on that label;
- ``alertmanager_config()`` (plain ``alertmanager.yml``) and ``alertmanager_config_spec()``
  (the operator's ``AlertmanagerConfig``) render the same tree.

``python -m components.alerting`` rewrites the generated rule files and ``docs/alerts.md``;
``tests/unit/test_alerting.py`` fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
RULES_FILE = MONITORING / "rules.yaml"
SLO_RULES_FILE = MONITORING / "slo_rules.yaml"
ESCALATION_RULES_FILE = MONITORING / "escalation_rules.yaml"
#: every rule file, in the order the PrometheusRule lists its groups.
RULE_FILES = (RULES_FILE, SLO_RULES_FILE, ESCALATION_RULES_FILE)
ALERTS_DOC = ROOT / "docs" / "alerts.md"
#: runbook_url values are repo-relative: the tests check that each file exists.
RUNBOOK_BASE = "docs/runbooks"

SEVERITIES = ("critical", "warning", "info")

# --------------------------------------------------------------------------- SLOs

#: Istio's destination-side view of the api Service (what the VirtualService splits).
API_REQUESTS = 'reporter="destination",destination_service_name="api"'
#: the ingress gateway's view: also counts requests that never reached a healthy pod.
GATEWAY_REQUESTS = (
    'reporter="source",source_workload="istio-ingressgateway",destination_service_name="api"'
)
APP_JOB = 'job="claude-enhancer"'


@dataclass(frozen=True)
class Slo:
    """One SPEC service level as an SLI ratio of bad events."""

    name: str
    """Recording-rule infix and alert family (``slo-<name>``)."""
    title: str
    """What the SPEC promises."""
    objective: float
    """Fraction of good events (0.999 = 99.9 %)."""
    bad: str
    """PromQL template of the bad-event rate; ``{w}`` is the window."""
    total: str
    """PromQL template of the all-event rate."""
    alert: str
    """Alert name stem."""


SLOS: tuple[Slo, ...] = (
    Slo(
        "request_errors",
        "error rate < 0.1 % (5xx answered by the api pods)",
        0.999,
        f'sum(rate(istio_requests_total{{{API_REQUESTS},response_code=~"5.."}}[{{w}}]))',
        f"sum(rate(istio_requests_total{{{API_REQUESTS}}}[{{w}}]))",
        "CESLOErrorBudgetBurn",
    ),
    Slo(
        "availability",
        "availability >= 99.9 % (5xx seen at the ingress gateway, incl. no healthy upstream)",
        0.999,
        f'sum(rate(istio_requests_total{{{GATEWAY_REQUESTS},response_code=~"5.."}}[{{w}}]))',
        f"sum(rate(istio_requests_total{{{GATEWAY_REQUESTS}}}[{{w}}]))",
        "CESLOAvailabilityBudgetBurn",
    ),
    Slo(
        "latency_p95",
        "P95 < 500 ms (at most 5 % of requests slower than 500 ms)",
        0.95,
        f"(sum(rate(istio_request_duration_milliseconds_count{{{API_REQUESTS}}}[{{w}}]))"
        f' - sum(rate(istio_request_duration_milliseconds_bucket{{{API_REQUESTS},le="500"}}[{{w}}])))',
        f"sum(rate(istio_request_duration_milliseconds_count{{{API_REQUESTS}}}[{{w}}]))",
        "CESLOLatencyP95BudgetBurn",
    ),
    Slo(
        "latency_p99",
        "P99 < 1000 ms (at most 1 % of requests slower than 1000 ms)",
        0.99,
        f"(sum(rate(istio_request_duration_milliseconds_count{{{API_REQUESTS}}}[{{w}}]))"
        f' - sum(rate(istio_request_duration_milliseconds_bucket{{{API_REQUESTS},le="1000"}}[{{w}}])))',
        f"sum(rate(istio_request_duration_milliseconds_count{{{API_REQUESTS}}}[{{w}}]))",
        "CESLOLatencyP99BudgetBurn",
    ),
    Slo(
        "workflow_failures",
        "workflow success >= 98 %",
        0.98,
        f'sum(rate(ce_workflow_runs_total{{{APP_JOB},result="failure"}}[{{w}}]))',
        f"sum(rate(ce_workflow_runs_total{{{APP_JOB}}}[{{w}}]))",
        "CESLOWorkflowBudgetBurn",
    ),
    Slo(
        "phase_transition_failures",
        "phase-transition success >= 99 %",
        0.99,
        f'sum(rate(ce_workflow_phase_transitions_total{{{APP_JOB},result="failure"}}[{{w}}]))',
        f"sum(rate(ce_workflow_phase_transitions_total{{{APP_JOB}}}[{{w}}]))",
        "CESLOPhaseTransitionBudgetBurn",
    ),
)


@dataclass(frozen=True)
class BurnWindow:
    """One (long, short, burn-rate) pair of the SRE workbook's table."""

    long: str
    short: str
    factor: float


#: SRE workbook, "multiwindow, multi-burn-rate alerts" (30-day budget): page on 2 % of the
#: budget in 1 h or 5 % in 6 h; ticket on 10 % in 1 d or 10 % in 3 d.
PAGE_WINDOWS = (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6.0))
TICKET_WINDOWS = (BurnWindow("1d", "2h", 3.0), BurnWindow("3d", "6h", 1.0))
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def sli_record(slo: Slo, window: str) -> str:
    """Name of the recording rule holding the bad-event ratio of ``slo`` over ``window``."""
    return f"ce_slo:{slo.name}:ratio_rate{window}"


def runbook_url(alert: str) -> str:
    """Where the runbook of ``alert`` lives (docs/runbooks/<alert>.md)."""
    return f"{RUNBOOK_BASE}/{alert}.md"


def _burn_expr(slo: Slo, windows: Sequence[BurnWindow]) -> str:
    budget = 1 - slo.objective
    parts = [
        f"({sli_record(slo, w.long)} > {w.factor * budget:.6g}"
        f" and {sli_record(slo, w.short)} > {w.factor * budget:.6g})"
        for w in windows
    ]
    return "\n  or\n".join(parts)


def slo_rule_groups() -> list[dict[str, Any]]:
    """Recording rules per SLI and window, then page/ticket burn-rate alerts per SLO."""
    records = [
        {
            "record": sli_record(slo, w),
            "expr": slo.bad.replace("{w}", w) + "\n/\n" + slo.total.replace("{w}", w),
            "labels": {"slo": slo.name},
        }
        for slo in SLOS
        for w in SLO_WINDOWS
    ]
    alerts: list[dict[str, Any]] = []
    for slo in SLOS:
        budget = 1 - slo.objective
        for kind, severity, windows in (
            ("Page", "critical", PAGE_WINDOWS),
            ("Ticket", "warning", TICKET_WINDOWS),
        ):
            name = f"{slo.alert}{kind}"
            speed = (
                "2 % of the 30-day budget in 1 h (or 5 % in 6 h)"
                if kind == "Page"
                else "10 % of the 30-day budget in 1 d (or 3 d)"
            )
            alerts.append(
                {
                    "alert": name,
                    "expr": _burn_expr(slo, windows),
                    "labels": {"severity": severity, "family": f"slo-{slo.name}"},
                    "annotations": {
                        "summary": f"SLO {slo.title}: error budget burning fast"
                        if kind == "Page"
                        else f"SLO {slo.title}: error budget burning",
                        "description": (
                            f'Bad-event ratio {{{{ printf "%.4f" $value }}}} against a budget of '
                            f"{budget:.4g}: at this rate the service spends {speed}."
                        ),
                        "runbook_url": runbook_url(name),
                    },
                }
            )
    return [
        {"name": "claude-enhancer.slo.records", "interval": "15s", "rules": records},
        {"name": "claude-enhancer.slo.alerts", "interval": "15s", "rules": alerts},
    ]


# --------------------------------------------------------------------------- escalation


@dataclass(frozen=True)
class EscalationLevel:
    """One SPEC escalation level: who is told once an alert has fired for ``after``."""

    level: int
    after_s: int
    """Seconds an alert has been firing when this level starts."""
    until_s: int
    """Seconds when the next level takes over (the last level ends the ladder)."""
    audience: str


#: SPEC: escalation in 5 levels (0-2, 2-5, 5-10, 10-15, 15-30 min).
ESCALATION: tuple[EscalationLevel, ...] = (
    EscalationLevel(1, 0, 120, "on-call engineer (severity route)"),
    EscalationLevel(2, 120, 300, "on-call engineer, re-paged"),
    EscalationLevel(3, 300, 600, "secondary on-call"),
    EscalationLevel(4, 600, 900, "team lead"),
    EscalationLevel(5, 900, 1800, "incident commander"),
)
ESCALATION_ALERT = "CEEscalation"
#: severities that escalate: only pages are acknowledged; a warning is worked from chat
#: (a stale backup must not reach the incident commander after 15 minutes).
ESCALATING = ("critical",)


def _dur(seconds: float) -> str:
    """Prometheus duration (whole seconds or milliseconds)."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(seconds * 1000)}ms"


def escalation_rule_group(
    levels: Sequence[EscalationLevel] = ESCALATION, interval: str = "15s"
) -> dict[str, Any]:
    """One alert per level >= 2: the firing alert, copied, after the level's start time."""
    rules = []
    for lv in levels[1:]:
        rules.append(
            {
                "alert": ESCALATION_ALERT,
                # the source alert's name moves to escalated_alertname (alertname is this
                # rule's); alertstate is dropped so this alert's own ALERTS series is clean
                "expr": (
                    "max without (alertstate) (label_replace(\n"
                    f'  ALERTS{{alertstate="firing",severity=~"{"|".join(ESCALATING)}",'
                    f'alertname!="{ESCALATION_ALERT}"}},\n'
                    '  "escalated_alertname", "$1", "alertname", "(.*)"))'
                ),
                "for": _dur(lv.after_s),
                "labels": {"escalation": str(lv.level)},
                "annotations": {
                    "summary": (
                        f"{{{{ $labels.escalated_alertname }}}} still firing after "
                        f"{_dur(lv.after_s)}: escalation level {lv.level} ({lv.audience})"
                    ),
                    "description": (
                        f"{{{{ $labels.escalated_alertname }}}} ({{{{ $labels.severity }}}}) has been "
                        f"firing for at least {_dur(lv.after_s)}; level {lv.level} of 5 "
                        f"({_dur(lv.after_s)}-{_dur(lv.until_s)}) notifies the {lv.audience}."
                    ),
                    "runbook_url": runbook_url(ESCALATION_ALERT),
                },
            }
        )
    return {"name": "claude-enhancer.escalation", "interval": interval, "rules": rules}


# --------------------------------------------------------------------------- Alertmanager


@dataclass(frozen=True)
class Timing:
    """Alertmanager notification timing (compressed in tests, never in a stack)."""

    group_wait_critical: str = "0s"
    group_wait: str = "10s"
    group_interval: str = "15s"
    repeat_critical: str = "5m"
    repeat_warning: str = "30m"
    repeat_info: str = "4h"


@dataclass(frozen=True)
class Receivers:
    """Where notifications go. URLs are plaintext here: callers pass them in inside an
    ``Output.apply`` (Pulumi) or from a test; the program never stores the result outside a
    secret."""

    chat_url: str | None
    paging_url: str | None
    escalation_urls: Mapping[int, str]
    """Escalation level (2-5) -> webhook; a missing level re-pages the paging webhook."""
    email_to: str
    email_from: str
    smarthost: str


DEFAULT_TIMING = Timing()

#: receiver names (fixed: routes, inhibition and docs refer to them).
CHAT, PAGING, EMAIL = "chat", "paging", "email"


def escalation_receiver(level: int) -> str:
    """Receiver name of escalation ``level``."""
    return f"escalation-{level}"


def _route(
    receiver: str,
    matchers: Sequence[str],
    wait: str,
    repeat: str,
    interval: str,
    cont: bool = False,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "receiver": receiver,
        "matchers": list(matchers),
        "group_wait": wait,
        "group_interval": interval,
        "repeat_interval": repeat,
    }
    if cont:
        r["continue"] = True
    return r


def alertmanager_config(
    rc: Receivers,
    levels: Sequence[EscalationLevel] = ESCALATION,
    timing: Timing = DEFAULT_TIMING,
) -> dict[str, Any]:
    """Plain ``alertmanager.yml``.

    Escalation alerts (label ``escalation``) are matched first and never fall through, so a
    level is told exactly once per group; then critical pages and continues to chat, warning
    goes to chat, info to email. A critical alert inhibits the warning of the same family.
    """
    t = timing
    esc_routes = [
        _route(
            escalation_receiver(lv.level),
            [f'escalation="{lv.level}"'],
            t.group_wait_critical,
            # the ladder re-notifies each level only if it is still open after the whole ladder
            _dur(levels[-1].until_s),
            t.group_interval,
        )
        for lv in levels[1:]
    ]
    routes = [
        *esc_routes,
        _route(
            PAGING,
            ['severity="critical"'],
            t.group_wait_critical,
            t.repeat_critical,
            t.group_interval,
            cont=True,
        ),
        _route(
            CHAT, ['severity=~"critical|warning"'], t.group_wait, t.repeat_warning, t.group_interval
        ),
        _route(EMAIL, ['severity="info"'], t.group_wait, t.repeat_info, t.group_interval),
    ]

    def webhook(name: str, url: str | None) -> dict[str, Any]:
        # no URL (e.g. the local stack): a receiver without integrations drops the alert
        return {
            "name": name,
            **({"webhook_configs": [{"url": url, "send_resolved": True}]} if url else {}),
        }

    receivers = [
        webhook(PAGING, rc.paging_url),
        webhook(CHAT, rc.chat_url),
        {
            "name": EMAIL,
            "email_configs": [
                {
                    "to": rc.email_to,
                    "from": rc.email_from,
                    "smarthost": rc.smarthost,
                    "require_tls": True,
                    "send_resolved": True,
                }
            ],
        },
        *[
            webhook(escalation_receiver(lv.level), rc.escalation_urls.get(lv.level, rc.paging_url))
            for lv in levels[1:]
        ],
    ]
    return {
        "route": {
            "receiver": EMAIL,
            "group_by": ["alertname", "family", "escalation"],
            "group_wait": t.group_wait,
            "group_interval": t.group_interval,
            "repeat_interval": t.repeat_info,
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                # escalation is part of the key: a critical's own ladder inhibits only the
                # ladder of the warning of the same family, level by level
                "equal": ["family", "escalation"],
            }
        ],
        "receivers": receivers,
    }


_MATCHER_RE = re.compile(r'^([a-z_]+)(=~|!~|!=|=)"(.*)"$')


def _crd_matcher(m: str) -> dict[str, str]:
    mt = _MATCHER_RE.fullmatch(m)
    if not mt:
        raise ValueError(f"unsupported matcher {m!r}")
    return {"name": mt.group(1), "matchType": mt.group(2), "value": mt.group(3)}


#: Alertmanager keys whose CRD field is not plain camelCase.
_CRD_KEYS = {"require_tls": "requireTLS"}


def _camel(key: str) -> str:
    if key in _CRD_KEYS:
        return _CRD_KEYS[key]
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def alertmanager_config_spec(
    receivers_secret: str,
    keys: Mapping[str, str],
    rc: Receivers,
    levels: Sequence[EscalationLevel] = ESCALATION,
    timing: Timing = DEFAULT_TIMING,
) -> dict[str, Any]:
    """``AlertmanagerConfig`` spec with the same tree as ``alertmanager_config``.

    Webhook URLs are never inlined: each receiver refers to ``keys[receiver]`` in the Secret
    ``receivers_secret`` (the operator reads it); ``rc``'s URLs only decide which receivers
    have a webhook.
    """
    plain = alertmanager_config(rc, levels, timing)

    def route(r: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in r.items():
            if k == "matchers":
                out["matchers"] = [_crd_matcher(m) for m in v]
            elif k == "routes":
                out["routes"] = [route(x) for x in v]
            else:
                out[_camel(k)] = v
        return out

    def receiver(r: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": r["name"]}
        if "webhook_configs" in r:
            out["webhookConfigs"] = [
                {
                    "urlSecret": {"name": receivers_secret, "key": keys[r["name"]]},
                    "sendResolved": True,
                }
            ]
        if "email_configs" in r:
            out["emailConfigs"] = [{_camel(k): v for k, v in c.items()} for c in r["email_configs"]]
        return out

    return {
        "route": route(plain["route"]),
        "receivers": [receiver(r) for r in plain["receivers"]],
        "inhibitRules": [
            {
                "sourceMatch": [_crd_matcher(m) for m in ir["source_matchers"]],
                "targetMatch": [_crd_matcher(m) for m in ir["target_matchers"]],
                "equal": ir["equal"],
            }
            for ir in plain["inhibit_rules"]
        ],
    }


# --------------------------------------------------------------------------- files + docs


def load_groups(path: Path) -> list[dict[str, Any]]:
    """The rule groups of one file exactly as promtool reads them."""
    # libyaml when present: the same safe loader, 10x faster on these files, and every `up`
    # (a rollout step too) parses them.
    doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not groups:
        raise ValueError(f"{path}: no rule groups")
    return groups


def all_groups(files: Sequence[Path] = RULE_FILES) -> list[dict[str, Any]]:
    """Every rule group of every rule file."""
    return [g for f in files for g in load_groups(f)]


def all_alerts(files: Sequence[Path] = RULE_FILES) -> list[dict[str, Any]]:
    """Every alerting rule (escalation levels included, one entry per level)."""
    return [r for g in all_groups(files) for r in g["rules"] if "alert" in r]


_HEADER = (
    "# GENERATED by `python -m components.alerting` from components/alerting.py; do not edit.\n"
)


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as literal blocks, so the generated files read like hand-written ones."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_rules(groups: list[dict[str, Any]]) -> str:
    """A rule file as written to disk."""
    body = yaml.dump(
        {"groups": groups}, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True
    )
    return _HEADER + str(body)


def render_alerts_doc(files: Sequence[Path] = RULE_FILES) -> str:
    """docs/alerts.md: one row per alert, grouped by rule group."""
    out = [
        "# Alert catalogue",
        "",
        "Generated by `python -m components.alerting` from the rule files "
        "(`monitoring/rules.yaml`, `monitoring/slo_rules.yaml`, `monitoring/escalation_rules.yaml`); "
        "do not edit by hand. Routing: critical pages and posts to chat, warning posts to chat, "
        "info mails; `CEEscalation` levels 2-5 go to the escalation receivers "
        "(see `components/alerting.py`).",
        "",
    ]
    for f in files:
        for g in load_groups(f):
            alerts = [r for r in g["rules"] if "alert" in r]
            if not alerts:
                continue
            out += [
                f"## {g['name']} (`{f.relative_to(ROOT)}`)",
                "",
                "| alert | severity | family | for | summary | runbook |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for r in alerts:
                lb = r.get("labels", {})
                sev = lb.get("severity", "(source's)")
                fam = lb.get("family", f"escalation {lb.get('escalation', '')}".strip())
                summary = str(r["annotations"]["summary"]).replace("|", "\\|")
                rb = str(r["annotations"]["runbook_url"]).rsplit("/", 1)[-1]
                out.append(
                    f"| `{r['alert']}` | {sev} | {fam} | {r.get('for', '0s')} | {summary} "
                    f"| [{rb}](runbooks/{rb}) |"
                )
            out.append("")
    return "\n".join(out)


def generated_files() -> dict[Path, str]:
    """Every generated file and its expected content."""
    return {
        SLO_RULES_FILE: render_rules(slo_rule_groups()),
        ESCALATION_RULES_FILE: render_rules([escalation_rule_group()]),
    }


def main() -> int:
    for path, text in generated_files().items():
        path.write_text(text)
    ALERTS_DOC.write_text(render_alerts_doc())
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in [*generated_files(), ALERTS_DOC]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
