"""`./ce rollout run` on the local platform, with a real Prometheus scraping the synthetic
Istio exporter (the program's own labels): a fault mid-bake rolls back by itself, a healthy
run goes 0 -> 4 and is promoted, phase 2 pauses, and a `kill -9` mid-step resumes without
double-stepping. A watcher samples the live VirtualService weights against the green api's
Ready replicas the whole time: no weight on a subset without Ready pods, in either direction.

Runs against the shared `local` stack (hold /tmp/ce-platform.lock); the stack file's bytes
are restored and the stack is left at phase 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from driver.identities import ensure_role_identities
from rollout import phases
from tests.driver.driver_promstack import Exporter, exporters, free_port, prometheus
from tests.integration.conftest import ROOT, LocalProject, kubectl

NS = "claude-enhancer"
BAKE_MIN = 0.1  # 6 s per phase
WINDOW = "15s"


@dataclass
class Watch:
    """Samples (t, canary weight, green api ready, green api desired) until stopped."""

    env: dict[str, str]
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> tuple[int, int, int]:
        out = kubectl(
            self.env, "get", "virtualservice.networking.istio.io/claude-enhancer",
            "deployment/api-green", "-n", NS, "-o", "json",
        )  # fmt: skip
        items = json.loads(out)["items"]
        vs = next(i for i in items if i["kind"] == "VirtualService")
        dep = next(i for i in items if i["kind"] == "Deployment")
        route = next(r for r in vs["spec"]["http"] if r["name"] == "weighted")
        w = next(d["weight"] for d in route["route"] if d["destination"]["subset"] == "canary")
        ready = int(dep.get("status", {}).get("readyReplicas") or 0)
        return int(w), ready, int(dep["spec"].get("replicas") or 0)

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(AssertionError):  # object briefly unreadable
                self.samples.append((time.monotonic(), *self.sample()))
            time.sleep(0.2)

    def violations(self, weights: tuple[int, ...]) -> list[tuple[float, int, int, int]]:
        """Samples where the canary had weight but fewer Ready pods than its phase needs."""
        need = {w: phases.canary_replicas(p, 3, weights) for p, w in enumerate(weights)}
        return [s for s in self.samples if s[1] > 0 and s[2] < need.get(s[1], 1)]


class Controller:
    def __init__(
        self, env: dict[str, str], audit: Path, prom: str, *extra: str, auto_approve: bool = True
    ) -> None:
        self.auto_approve = auto_approve
        self.metrics_port = free_port()
        cmd = [
            sys.executable, "-m", "driver", "--stack", "local", "--audit-log", str(audit),
            "run", "--prometheus", prom, "--metrics-port", str(self.metrics_port),
            "--report-dir", str(audit.parent / "reports"), *extra,
        ]  # fmt: skip
        self.env, self.audit = env, audit
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.approved: set[str] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = re.search(r"approve` by a ([a-z-]+)", line)
            if m and self.auto_approve and "PAUSED" not in line and line not in self.approved:
                self.approved.add(line)
                self.approve(m.group(1))

    def approve(self, role: str, decision: str = "continue") -> None:
        ensure_role_identities()  # the user of each role (idempotent)
        r = subprocess.run(
            [sys.executable, "-m", "driver", "--stack", "local", "--audit-log", str(self.audit),
             "approve", "--identity", role, "--decision", decision],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        self.lines.append(f"[approve {role} {decision}] rc={r.returncode} {r.stdout.strip()}")

    def wait_line(self, pattern: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines[-60:]))

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(
                "controller did not finish:\n" + "\n".join(self.lines[-80:])
            ) from None

    def entries(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(x) for x in self.audit.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def telemetry(
    tool_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Exporter]]:
    work = tmp_path_factory.mktemp("prom-controller")
    # 400 requests/s through the gateway, split by the VirtualService the controller applies
    # (20/s to the canary at 5 %), as the platform's exporter does
    mesh = ["--rps", "400", "--kubeconfig", tool_env["KUBECONFIG"]]
    with (
        exporters({"mesh": mesh}) as exps,
        prometheus({"mesh": exps["mesh"].port}, work) as url,
    ):
        deadline = time.monotonic() + 60
        from driver.prom import PrometheusClient

        client = PrometheusClient(url)
        while time.monotonic() < deadline:
            n = client.query_scalar(
                f'sum(increase(istio_requests_total{{destination_workload="api-blue",'
                f'reporter="destination"}}[{WINDOW}]))'
            )
            if n is not None and n > 300:
                break
            time.sleep(1)
        yield url, exps["mesh"]


@pytest.fixture
def rollout_stack(local_project: LocalProject) -> Iterator[LocalProject]:
    """Shortened bakes and a fast loop for the test; stack file bytes restored after."""
    stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
    original = stack_file.read_bytes()
    p = local_project
    for path, value in (
        ("bakeMinutes.1", BAKE_MIN), ("bakeMinutes.2", BAKE_MIN), ("bakeMinutes.3", BAKE_MIN),
        ("bakeMinutes.4", BAKE_MIN), ("intervalSeconds", 1), ("gate.window", WINDOW),
        ("gate.minRequests", 100),
    ):  # fmt: skip
        p.pulumi("config", "set", "--path", f"claude-enhancer:rollout.{path}", str(value))
    p.set_phase(0)
    p.up()
    try:
        yield p
    finally:
        stack_file.write_bytes(original)
        p.pulumi("up", "--yes", "--skip-preview", check=False)


@pytest.fixture
def watch(tool_env: dict[str, str]) -> Iterator[Watch]:
    w = Watch(tool_env)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    yield w
    w.stop.set()
    t.join(5)


def _healthy(url: str, exp: Exporter) -> None:
    """No fault, and none left in the gate's window. A previous test's fault (stable at 0.2 %
    errors until its last second) would otherwise fail this test's GO/NO-GO, which judges the
    last window; a real engineer waits for it to roll over too."""
    from driver.prom import PrometheusClient

    exp.control(
        canary_error_rate=0, stable_error_rate=0, canary_latency_ms=80, canary_agents_down=0,
        canary_reports=1, canary_reports_frozen=0,
    )  # fmt: skip
    client = PrometheusClient(url)
    q = f'sum(increase(istio_requests_total{{reporter="destination",response_code=~"5.."}}[{WINDOW}]))'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        n = client.query_scalar(q)
        if n is None or n == 0:  # None: no 5xx series at all
            return
        time.sleep(1)
    pytest.fail(f"5xx still in the last {WINDOW} a minute after the faults were cleared")


def _phases_applied(entries: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(e.get("from_phase"), e.get("to_phase")) for e in entries if e["result"] == "applied"]


def test_healthy_run_0_to_4_then_promote(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], watch: Watch, tmp_path: Path
) -> None:
    url, exp = telemetry
    _healthy(url, exp)
    c = Controller(rollout_stack.env, tmp_path / "audit.jsonl", url)
    code = c.wait(900)
    assert code == 0, "\n".join(c.lines[-80:])
    assert _phases_applied(c.entries()) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    *_, promoted, reported = c.entries()
    assert promoted["result"] == "promoted"
    # the end of the rollout writes its report (from the platform's Prometheus)
    assert (reported["result"], reported["outcome"]) == ("reported", "promoted")
    assert Path(reported["report"]).parent == tmp_path / "reports"
    assert "query error" not in Path(reported["report"]).read_text()
    # after the controller's own first `up`, a step touches only the phase's resources
    modes = [e["mode"] for e in c.entries() if e["result"] == "applied" and e["to_phase"] > 0]
    assert modes[0] == "full" and all(m.startswith("targeted") for m in modes[1:]), modes
    outs = json.loads(rollout_stack.pulumi("stack", "output", "--json").stdout)
    assert outs["rolloutPhase"] == 0
    assert outs["trafficTargets"]["stable"]["destination"]["destination_version"] == "5.1.0"
    assert watch.samples and not watch.violations(phases.PHASE_WEIGHTS), watch.violations(
        phases.PHASE_WEIGHTS
    )
    # `up` converged after the server-side applied traffic switch: nothing left to change
    rollout_stack.pulumi("preview", "--expect-no-changes")


def test_fault_mid_bake_rolls_back_by_itself(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], watch: Watch, tmp_path: Path
) -> None:
    url, exp = telemetry
    _healthy(url, exp)
    rollout_stack.pulumi(
        "config", "set", "--path", "claude-enhancer:rollout.bakeMinutes.1", "10"
    )  # a long bake: the fault lands in the middle of it
    c = Controller(rollout_stack.env, tmp_path / "audit.jsonl", url)
    c.wait_line(r"phase 1: gate green", 300)
    t_fault = time.monotonic()
    exp.control(canary_error_rate=0.05)
    try:
        code = c.wait(120)
    finally:
        exp.control(canary_error_rate=0)
    assert code == 3, "\n".join(c.lines[-60:])  # rolled back
    on_stable = next(t for t, w, *_ in watch.samples if t > t_fault and w == 0)
    assert on_stable - t_fault <= 20, (
        f"fault -> all traffic on stable took {on_stable - t_fault:.1f} s"
    )
    # the SLO guard (the judge's absolute layer, over the gate's window) caught it
    failed = next(e for e in c.entries() if e["result"] == "judge_failed")
    check = next(x for x in failed["judge"]["checks"] if x["name"] == "error_ratio")
    assert check["outcome"] == "fail" and check["layer"] == "absolute"
    # significant at the judge's confidence; at 5 % (20 canary requests/s) the first failing
    # window is not overwhelming (p 0.026 in one CI run, where 0.02 was asked when each track
    # got the same traffic)
    assert check["window"] == WINDOW and check["p_value"] < 1 - check["confidence"]
    switched = next(e for e in c.entries() if e["result"] == "traffic_switched")
    assert switched["wall_s"] <= 2
    assert not watch.violations(phases.PHASE_WEIGHTS)
    rollout_stack.pulumi("preview", "--expect-no-changes")


def test_errors_3x_stable_under_the_slo_roll_back_on_the_relative_check(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], tmp_path: Path
) -> None:
    """Issue 14: the fixed thresholds pass this canary; the judge compares it with stable."""
    url, exp = telemetry
    p = rollout_stack
    for path, value in (
        ("bakeMinutes.1", 10), ("gate.maxErrorRatio", 0.01),  # SLO 1 %
        ("analysis.phases.1.maxErrorIncrease", 0.5),  # the default: +50 % is a regression
    ):  # fmt: skip
        p.pulumi("config", "set", "--path", f"claude-enhancer:rollout.{path}", str(value))
    _healthy(url, exp)
    exp.control(stable_error_rate=0.002)
    c = Controller(p.env, tmp_path / "audit.jsonl", url)
    try:
        c.wait_line(r"phase 1: gate green", 300)
        exp.control(canary_error_rate=0.006)  # 0.6 %: 3x stable, under the 1 % SLO
        code = c.wait(240)
    finally:
        exp.control(canary_error_rate=0, stable_error_rate=0)
    assert code == 3, "\n".join(c.lines[-60:])  # rolled back: phase 1's failure action
    failed = next(e for e in c.entries() if e["result"] == "judge_failed")
    assert failed["gate"]["passed"], "the fixed gate alone would have let it through"
    checks = {x["name"]: x for x in failed["judge"]["checks"]}
    assert checks["error_ratio_vs_stable"]["outcome"] == "fail", failed["reason"]
    assert checks["error_ratio"]["outcome"] != "fail"  # under the SLO
    rel = checks["error_ratio_vs_stable"]
    # significant at the stack's confidence; the interval's lower end clears the limit
    assert rel["p_value"] < 1 - rel["confidence"] and rel["ci"][0] > rel["threshold"]
    assert rel["stable_n"] > 0
    assert any("error_ratio_vs_stable" in x and "FAIL" in x for x in c.lines)


def test_phase_2_pauses_then_rolls_back_by_decision(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], tmp_path: Path
) -> None:
    url, exp = telemetry
    _healthy(url, exp)
    c = Controller(rollout_stack.env, tmp_path / "audit.jsonl", url)
    c.wait_line(r"phase 2: gate green", 300)
    exp.control(canary_agents_down=6)  # agent coordination broken: soft failure
    try:
        c.wait_line(r"PAUSED at phase 2", 60)
        time.sleep(3)
        assert c.proc.poll() is None  # held, not rolled back, not advanced
        outs = json.loads(rollout_stack.pulumi("stack", "output", "--json").stdout)
        assert outs["rolloutPhase"] == 2 and outs["canaryWeight"] == 20
        metrics = subprocess.run(
            ["curl", "-s", f"http://127.0.0.1:{c.metrics_port}/metrics"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert 'ce_rollout_paused{stack="local"} 1.0' in metrics
        c.approve("sre", "rollback")
        assert c.wait(120) == 3
    finally:
        exp.control(canary_agents_down=0)
    assert [e["result"] for e in c.entries()].count("paused") == 1


def test_kill_9_mid_step_resumes_without_double_stepping(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], tmp_path: Path
) -> None:
    url, exp = telemetry
    _healthy(url, exp)
    audit = tmp_path / "audit.jsonl"
    c = Controller(rollout_stack.env, audit, url, "--until-phase", "2")
    # mid-step: the step's `started` entry is written and the config names phase 1 (the
    # `up` to it is running)
    stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
    end = time.monotonic() + 300
    while not (
        any(e["result"] == "started" and e.get("to_phase") == 1 for e in c.entries())
        and "phase: 1" in stack_file.read_text()
    ):
        assert time.monotonic() < end and c.proc.poll() is None, "\n".join(c.lines[-40:])
        time.sleep(0.1)
    time.sleep(1.0)
    # the whole process group: the controller and the `pulumi up` it runs (a lost node)
    os.killpg(c.proc.pid, signal.SIGKILL)
    c.proc.wait(10)
    # the kernel dropped our lock; pulumi's lock file of the killed `up` is left behind
    c2 = Controller(rollout_stack.env, audit, url, "--until-phase", "2")
    assert c2.wait(600) == 0, "\n".join(c2.lines[-80:])
    applied = _phases_applied(c2.entries())
    assert applied[-2:] == [(0, 1), (1, 2)], applied
    assert applied.count((0, 1)) == 1
    outs = json.loads(rollout_stack.pulumi("stack", "output", "--json").stdout)
    assert outs["rolloutPhase"] == 2


def test_second_controller_is_refused(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], tmp_path: Path
) -> None:
    url, _ = telemetry
    c = Controller(
        rollout_stack.env, tmp_path / "audit.jsonl", url, "--max-turns", "1000", auto_approve=False
    )
    try:
        c.wait_line(r"waiting for the GO/NO-GO", 120)
        r = subprocess.run(
            [sys.executable, "-m", "driver", "--stack", "local", "advance", "--prometheus", url],
            cwd=ROOT, env=rollout_stack.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2 and "held by ./ce rollout run" in r.stderr, r.stderr
    finally:
        c.proc.terminate()
        c.proc.wait(30)


# --------------------------------------------------------------------------- issue 29
#: the test Prometheus' scrape interval (driver_promstack) and the stack's controller interval
SCRAPE_S, INTERVAL_S = 1.0, 1.0


def _applied_at(c: Controller, phase: int) -> float:
    """Seconds since the controller's applied entry into ``phase`` (audit, wall clock)."""
    from datetime import UTC, datetime

    from driver.bake import parse_ts

    e = next(
        e for e in reversed(c.entries()) if e["result"] == "applied" and e["to_phase"] == phase
    )
    return (datetime.now(UTC) - parse_ts(e["ts"])).total_seconds()


def _canary_telemetry_fault_rolls_back(
    p: LocalProject, url: str, exp: Exporter, watch: Watch, audit: Path, fault: dict[str, int]
) -> None:
    """Phase 1 green, then ``fault`` in the canary's telemetry alone 10 s into the phase:
    all traffic on stable within 2 scrape intervals + 1 controller interval (+ the switch's
    own server-side apply and one turn's queries, measured from the audit)."""
    p.pulumi("config", "set", "--path", "claude-enhancer:rollout.bakeMinutes.1", "10")
    _healthy(url, exp)
    c = Controller(p.env, audit, url)
    try:
        c.wait_line(r"phase 1: gate green", 120)
        time.sleep(max(0.0, 10 - _applied_at(c, 1)))  # the case: 10 s into phase 1
        t_fault = time.monotonic()
        exp.control(**fault)
        code = c.wait(60)
    finally:
        exp.control(canary_reports=1, canary_reports_frozen=0)
    assert code == 3, "\n".join(c.lines[-60:])
    on_stable = next(t for t, w, *_ in watch.samples if t > t_fault and w == 0) - t_fault
    switched = next(e for e in c.entries() if e["result"] == "traffic_switched")
    bound = 2 * SCRAPE_S + INTERVAL_S + switched["wall_s"] + 1.0
    assert on_stable <= bound, f"fault -> all traffic on stable took {on_stable:.1f} s > {bound}"
    failed = next(e for e in c.entries() if e["result"] == "gate_failed")
    check = next(x for x in failed["gate"]["checks"] if x["name"] == "canary_signal")
    assert not check["passed"], failed["reason"]
    # a wait for the first data after the step is fine; it ended when the data came, before
    # the fault, which was never awaited
    waits = [e for e in c.entries() if e.get("action") == "await_data"]
    assert [e.get("ended_by") for e in waits if e["result"] == "waited"] == ["data_arrived"] * (
        len(waits) // 2
    ), waits


def test_canary_series_vanish_10s_into_phase_1_roll_back_within_two_scrapes(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], watch: Watch, tmp_path: Path
) -> None:
    """The canary's sidecar stops reporting (its request series leave Prometheus; the
    gateway's reports and the app's metrics stay). Before issue 29: ~50 s, the grace."""
    url, exp = telemetry
    _canary_telemetry_fault_rolls_back(
        rollout_stack, url, exp, watch, tmp_path / "audit.jsonl", {"canary_reports": 0}
    )


def test_a_canary_counter_that_stops_rolls_back_within_two_scrapes(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], watch: Watch, tmp_path: Path
) -> None:
    url, exp = telemetry
    _canary_telemetry_fault_rolls_back(
        rollout_stack, url, exp, watch, tmp_path / "audit.jsonl", {"canary_reports_frozen": 1}
    )


def test_no_data_right_after_a_step_waits_for_it_and_does_not_roll_back(
    rollout_stack: LocalProject, telemetry: tuple[str, Exporter], tmp_path: Path
) -> None:
    """The canary reports nothing at the new weight for 12 s after the step: the phase is
    held (visibly: a line, an audit entry, the gauge), then the data comes and it goes on."""
    url, exp = telemetry
    rollout_stack.pulumi("config", "set", "--path", "claude-enhancer:rollout.bakeMinutes.1", "10")
    _healthy(url, exp)
    exp.control(canary_reports=0)  # the canary's sidecar has not reported yet
    c = Controller(rollout_stack.env, tmp_path / "audit.jsonl", url)
    try:
        c.wait_line(r"phase 1: waiting for data", 120)
        metrics = subprocess.run(
            ["curl", "-s", f"http://127.0.0.1:{c.metrics_port}/metrics"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert 'ce_rollout_awaiting_data{stack="local"} 1.0' in metrics
        time.sleep(max(0.0, 12 - _applied_at(c, 1)))
        exp.control(canary_reports=1)
        c.wait_line(r"phase 1: gate green", 60)
        assert c.proc.poll() is None  # neither rolled back nor stepped
    finally:
        exp.control(canary_reports=1)
        c.proc.terminate()
        c.proc.wait(30)
    waits = [e for e in c.entries() if e.get("action") == "await_data"]
    assert [e["result"] for e in waits] == ["waiting", "waited"], waits
    assert waits[1]["ended_by"] == "data_arrived" and 10 <= waits[1]["waited_s"] < 30
    assert not any(e["result"] in ("gate_failed", "judge_failed") for e in c.entries())
    assert any(
        re.search(r"wait for data ended after [0-9.]+ s \(data_arrived\)", x) for x in c.lines
    )
