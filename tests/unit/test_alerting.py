"""The alert catalogue: what every alert carries, its tests, generated files, runbooks."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from components import alerting
from components.alerting import (
    ESCALATION,
    ESCALATION_ALERT,
    ROOT,
    SEVERITIES,
    all_alerts,
    escalation_rule_group,
)

MON = ROOT / "monitoring"
TEST_FILES = [MON / n for n in ("rules_test.yaml", "slo_test.yaml", "escalation_test.yaml")]
ALERTS = all_alerts()
BY_NAME: dict[str, dict[str, Any]] = {r["alert"]: r for r in ALERTS}


def _seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", d))


def _cases() -> list[tuple[str, dict[str, Any]]]:
    """(test name, alert_rule_test case) over every promtool test file."""
    out = []
    for f in TEST_FILES:
        for t in yaml.safe_load(f.read_text())["tests"]:
            for c in t.get("alert_rule_test", []):
                out.append((f"{f.name}:{t['name']}", c))
    return out


def test_generated_files_are_up_to_date() -> None:
    for path, text in alerting.generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run python -m components.alerting"
    assert alerting.ALERTS_DOC.read_text() == alerting.render_alerts_doc(), (
        "docs/alerts.md is stale: run python -m components.alerting"
    )


@pytest.mark.parametrize(
    "rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels'].get('escalation', '')}"
)
def test_every_alert_carries_severity_summary_value_and_runbook(rule: dict[str, Any]) -> None:
    labels, ann = rule["labels"], rule["annotations"]
    if rule["alert"] == ESCALATION_ALERT:
        # severity and family come from the escalated alert; the level is the value shown
        assert labels["escalation"] in {str(lv.level) for lv in ESCALATION}
        assert "$labels.escalated_alertname" in ann["description"]
    else:
        assert labels["severity"] in SEVERITIES
        assert labels["family"]
        assert "$value" in ann["description"], "the description must show the value"
    assert ann["summary"]
    rb = ROOT / ann["runbook_url"]
    assert ann["runbook_url"] == f"docs/runbooks/{rule['alert']}.md" and rb.is_file(), rb
    assert len(rb.read_text().strip().splitlines()) >= 5, f"{rb} is not a runbook"


@pytest.mark.parametrize(
    "rule",
    [r for r in ALERTS if r["labels"].get("severity") == "critical"],
    ids=lambda r: r["alert"],
)
def test_critical_alerts_detect_within_one_evaluation(rule: dict[str, Any]) -> None:
    assert _seconds(rule.get("for", "0s")) <= 15


def test_every_alert_is_tested_on_both_sides_and_after_its_for() -> None:
    fires: dict[str, list[str]] = {}
    silent: dict[str, list[str]] = {}
    for test, c in _cases():
        (fires if c["exp_alerts"] else silent).setdefault(c["alertname"], []).append(test)
    missing = {
        name: ("fires" if name not in fires else "silent")
        for name in BY_NAME
        if name not in fires or name not in silent
    }
    assert not missing, missing
    # an alert with a `for` is seen silent and then firing within the same input series
    for name, rule in BY_NAME.items():
        if _seconds(rule.get("for", "0s")) > 0:
            assert set(fires[name]) & set(silent[name]), f"{name}: no pending-then-firing test"


def test_warning_and_critical_of_a_family_share_the_family_label() -> None:
    families: dict[str, set[str]] = {}
    for r in ALERTS:
        if r["alert"] != ESCALATION_ALERT:
            families.setdefault(r["labels"]["family"], set()).add(r["labels"]["severity"])
    # the inhibition has something to act on: SPEC agents, memory budget, lag, certs, SLOs
    paired = {f for f, sev in families.items() if {"critical", "warning"} <= sev}
    assert {"agents", "memory", "postgres-lag", "mesh-cert", "slo-request_errors"} <= paired


def test_escalation_rules_follow_the_spec_levels() -> None:
    group = escalation_rule_group()
    assert [lv.after_s for lv in ESCALATION] == [0, 120, 300, 600, 900]
    assert [lv.until_s for lv in ESCALATION] == [120, 300, 600, 900, 1800]
    assert [(r["for"], r["labels"]["escalation"]) for r in group["rules"]] == [
        ("2m", "2"),
        ("5m", "3"),
        ("10m", "4"),
        ("15m", "5"),
    ]
    assert all('severity=~"critical"' in r["expr"] for r in group["rules"])


def test_slo_burn_alerts_cover_every_spec_objective() -> None:
    objectives = {s.name: s.objective for s in alerting.SLOS}
    assert objectives == {
        "request_errors": 0.999,
        "availability": 0.999,
        "latency_p95": 0.95,
        "latency_p99": 0.99,
        "workflow_failures": 0.98,
        "phase_transition_failures": 0.99,
    }
    for s in alerting.SLOS:
        for w in alerting.SLO_WINDOWS:
            assert any(
                g.get("rules")
                and any(r.get("record") == alerting.sli_record(s, w) for r in g["rules"])
                for g in alerting.slo_rule_groups()
            )
        page, ticket = BY_NAME[f"{s.alert}Page"], BY_NAME[f"{s.alert}Ticket"]
        assert (
            page["labels"]["severity"] == "critical" and ticket["labels"]["severity"] == "warning"
        )
        budget = 1 - s.objective
        assert f"> {14.4 * budget:.6g}" in page["expr"] and f"> {6 * budget:.6g}" in page["expr"]
        assert f"> {3 * budget:.6g}" in ticket["expr"] and f"> {budget:.6g}" in ticket["expr"]


def test_runbooks_have_no_orphans() -> None:
    names = {r["alert"] for r in ALERTS}
    files = {p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md")}
    assert files == names
