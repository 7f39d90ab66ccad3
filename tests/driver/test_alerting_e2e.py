"""Alert delivery end to end, on loopback: synthetic exporter -> real Prometheus evaluating
the rule files -> real Alertmanager with the program's routing -> local webhook receivers.

Time is compressed through configuration only: rule groups evaluate every second, the
escalation ladder is the SPEC's divided by 30 (levels at 4, 10, 20 and 30 s) and
Alertmanager waits 0-1 s. The rules, routing tree and inhibition are the program's own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import alerting, monitoring
from components.settings import MonitoringSettings, Secret
from tests.driver.driver_promstack import (
    Exporter,
    alertmanager,
    exporters,
    free_port,
    prometheus,
)

SCALE = 30
LEVELS = tuple(
    alerting.EscalationLevel(lv.level, lv.after_s // SCALE, lv.until_s // SCALE, lv.audience)
    for lv in alerting.ESCALATION
)
TIMING = alerting.Timing(
    group_wait_critical="0s",
    group_wait="1s",
    group_interval="1s",
    repeat_critical="1h",
    repeat_warning="1h",
    repeat_info="1h",
)


@dataclass
class Delivery:
    at: float
    receiver: str
    body: dict[str, Any]


class Sink:
    """Webhook receivers: one path per receiver, every POST recorded with its arrival time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with sink.lock:
                    sink.deliveries.append(Delivery(time.monotonic(), self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{receiver}"

    def matching(self, pred: Callable[[Delivery], bool]) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if pred(d)]

    def wait(self, what: str, pred: Callable[[Delivery], bool], timeout: float) -> Delivery:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(pred)
            if found:
                return found[0]
            time.sleep(0.1)
        with self.lock:
            seen = [
                (d.receiver, d.body.get("groupLabels"), d.body.get("status"))
                for d in self.deliveries
            ]
        pytest.fail(f"no {what} within {timeout} s; deliveries: {seen}", pytrace=False)


@pytest.fixture()
def sink() -> Iterator[Sink]:
    s = Sink()
    s.thread.start()
    try:
        yield s
    finally:
        s.server.shutdown()
        s.server.server_close()


def _fired(alertname: str, receiver: str, status: str = "firing") -> Callable[[Delivery], bool]:
    return lambda d: (
        d.receiver == receiver
        and d.body["status"] == status
        and any(a["labels"]["alertname"] == alertname for a in d.body["alerts"])
    )


def _escalation(level: int) -> Callable[[Delivery], bool]:
    return lambda d: d.receiver == f"escalation-{level}" and d.body["status"] == "firing"


def _compressed_rule_files(workdir: Path) -> tuple[Path, ...]:
    files = []
    for src in (alerting.RULES_FILE, alerting.SLO_RULES_FILE):
        groups = [{**g, "interval": "1s"} for g in alerting.load_groups(src)]
        files.append(workdir / src.name)
        files[-1].write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    esc = alerting.escalation_rule_group(LEVELS, interval="1s")
    files.append(workdir / "escalation_rules.yaml")
    files[-1].write_text(yaml.safe_dump({"groups": [esc]}, sort_keys=False))
    return tuple(files)


def _am_alerts(am: str, alertname: str) -> list[dict[str, Any]]:
    q = urllib.parse.quote(f'alertname="{alertname}"')
    with urllib.request.urlopen(f"http://{am}/api/v2/alerts?filter={q}", timeout=5) as r:
        return list(json.loads(r.read()))


@contextmanager
def _stack(tmp_path: Path, sink: Sink) -> Iterator[tuple[Exporter, str]]:
    """Exporter, Alertmanager with the program's routing, Prometheus with the rule files."""
    m = MonitoringSettings(
        scrape_interval="1s",
        chat_url=Secret(sink.url("chat")),
        paging_url=Secret(sink.url("paging")),
        escalation_urls=tuple(
            (lv.level, Secret(sink.url(f"escalation-{lv.level}"))) for lv in LEVELS[1:]
        ),
        smarthost=f"127.0.0.1:{free_port()}",  # nothing listens: info mail is not under test
    )
    am_cfg = tmp_path / "alertmanager.yml"
    am_cfg.write_text(
        monitoring.plain_alertmanager_yaml(m, monitoring.webhook_urls(m), LEVELS, TIMING)
    )
    rule_files = _compressed_rule_files(tmp_path)
    with (
        exporters({"app": []}) as exps,
        alertmanager(am_cfg, tmp_path) as am,
        prometheus({"claude-enhancer": exps["app"].port}, tmp_path, rule_files, am) as prom,
    ):
        _wait_for_agents(prom)
        yield exps["app"], am


def _wait_suppressed(am: str, alertname: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = _am_alerts(am, alertname)
        if found and all(a["status"]["state"] == "suppressed" for a in found):
            return found[0]
        if time.monotonic() > deadline:
            pytest.fail(f"{alertname} not inhibited: {[a['status'] for a in found]}", pytrace=False)
        time.sleep(0.5)


def test_agent_faults_are_delivered_grouped_inhibited_and_escalated(
    tmp_path: Path, sink: Sink
) -> None:
    with _stack(tmp_path, sink) as (app, am):
        # 3 agents down: a warning, to chat only, after its 15 s `for`
        app.control(failed_agents=3)
        warned = sink.wait("CEAgentsDegraded in chat", _fired("CEAgentsDegraded", "chat"), 45)
        assert warned.body["groupLabels"] == {"alertname": "CEAgentsDegraded", "family": "agents"}
        assert not sink.matching(lambda d: d.receiver == "paging")

        # 7 agents down: critical, paged at once and posted to chat
        t_fault = time.monotonic()
        app.control(failed_agents=7)
        page = sink.wait("CEAgentsFailed page", _fired("CEAgentsFailed", "paging"), 20)
        detect_s = page.at - t_fault
        # scrape (1 s) + evaluation (1 s) + Alertmanager group_wait 0 s, with slack for 2 cores
        assert detect_s < 8, f"critical delivered {detect_s:.1f} s after the fault"
        assert page.body["groupLabels"] == {"alertname": "CEAgentsFailed", "family": "agents"}
        (alert,) = page.body["alerts"]
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["description"].startswith("7 agents report down")
        sink.wait("CEAgentsFailed in chat", _fired("CEAgentsFailed", "chat"), 10)

        # the critical inhibits the warning of its family
        assert _wait_suppressed(am, "CEAgentsDegraded")["status"]["inhibitedBy"]

        # the ladder: each level once, in order, at its (compressed) start time
        arrivals = {}
        for lv in LEVELS[1:]:
            d = sink.wait(f"escalation level {lv.level}", _escalation(lv.level), lv.after_s + 20)
            (esc,) = d.body["alerts"]
            assert esc["labels"]["escalated_alertname"] == "CEAgentsFailed"
            assert esc["labels"]["escalation"] == str(lv.level)
            assert d.body["groupLabels"] == {
                "alertname": "CEEscalation",
                "family": "agents",
                "escalation": str(lv.level),
            }
            arrivals[lv.level] = d.at - page.at
        for lv in LEVELS[1:]:
            # not before its level starts; at most a few evaluation/notification rounds late
            assert lv.after_s - 1.5 <= arrivals[lv.level] <= lv.after_s + 6, arrivals
        assert all(len(sink.matching(_escalation(lv.level))) == 1 for lv in LEVELS[1:])
        print(
            f"critical delivered {detect_s:.2f} s after the fault; ladder (s after the page): {arrivals}"
        )
        # warnings do not climb the ladder
        assert not sink.matching(
            lambda d: (
                d.receiver.startswith("escalation")
                and any(
                    a["labels"].get("escalated_alertname") == "CEAgentsDegraded"
                    for a in d.body["alerts"]
                )
            )
        )

        # recovery: the page resolves
        app.control(failed_agents=0)
        sink.wait("CEAgentsFailed resolved", _fired("CEAgentsFailed", "paging", "resolved"), 30)


def test_workflow_failures_page_the_slo_and_inhibit_its_ticket(tmp_path: Path, sink: Sink) -> None:
    with _stack(tmp_path, sink) as (app, am):
        # half the workflows fail: 25x the 2 % budget, above the 14.4x page threshold
        app.control(workflow_failure_rate=0.5)
        page = sink.wait("workflow SLO page", _fired("CESLOWorkflowBudgetBurnPage", "paging"), 30)
        assert page.body["groupLabels"] == {
            "alertname": "CESLOWorkflowBudgetBurnPage",
            "family": "slo-workflow_failures",
        }
        (alert,) = page.body["alerts"]
        assert alert["labels"]["slo"] == "workflow_failures"
        # the ticket of the same SLO fires in Prometheus but is inhibited in Alertmanager
        _wait_suppressed(am, "CESLOWorkflowBudgetBurnTicket")
        assert not sink.matching(
            lambda d: any(
                a["labels"]["alertname"] == "CESLOWorkflowBudgetBurnTicket"
                for a in d.body["alerts"]
            )
        )
        # healthy agents: nothing else paged
        assert {
            a["labels"]["alertname"]
            for d in sink.matching(lambda d: d.receiver == "paging")
            for a in d.body["alerts"]
        } == {"CESLOWorkflowBudgetBurnPage"}


def _wait_for_agents(prom: str) -> None:
    # both tracks' agent-runtime pods report the 61 agents, each under its version
    q = urllib.parse.quote('count by (version) (ce_agent_up{job="claude-enhancer"})')
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{prom}/api/v1/query?query={q}", timeout=2) as r:
                res = json.loads(r.read())["data"]["result"]
            if len(res) == 2 and all(float(r["value"][1]) == 61 for r in res):
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("Prometheus never saw the 61 agents of the exporter", pytrace=False)
