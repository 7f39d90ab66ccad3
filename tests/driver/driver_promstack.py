"""Start the synthetic exporter(s) and a real Prometheus (Debian package) on loopback.

Prometheus runs as a plain child process with a temporary config and data
directory (never the system service). A missing binary is a test FAILURE.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPORTER = ROOT / "monitoring" / "exporter" / "exporter.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> str:
    hint = (
        "the platform part `telemetry` installs it (`./ce bootstrap`; Debian's prometheus) "
        "or point CE_PROMETHEUS_BIN at one; the gate integration tests need a real Prometheus"
    )
    env = os.environ.get("CE_PROMETHEUS_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(
                f"CE_PROMETHEUS_BIN={env} is not an executable prometheus binary: {hint}",
                pytrace=False,
            )
        return env
    path = shutil.which("prometheus")
    if not path:
        pytest.fail(f"prometheus binary not found on PATH: {hint}", pytrace=False)
    return path


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"{what} exited with {proc.returncode}:\n{out[-3000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} not ready at {url} after {timeout} s", pytrace=False)


@dataclass
class Exporter:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, **kw: object) -> str:
        q = "&".join(f"{k}={v}" for k, v in kw.items())
        with urllib.request.urlopen(f"{self.url}/control?{q}", timeout=5) as r:
            return r.read().decode()


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate, and kill after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def exporters(specs: dict[str, list[str]]) -> Iterator[dict[str, Exporter]]:
    """Start one exporter per name with the given CLI flags."""
    started: dict[str, Exporter] = {}
    try:
        for name, flags in specs.items():
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, str(EXPORTER), str(port), "--seed", "7", *flags],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            started[name] = Exporter(name, port, proc)
            _wait_http(f"http://127.0.0.1:{port}/healthz", proc, 20, f"exporter {name}")
        yield started
    finally:
        for e in started.values():
            stop_process(e.proc)


@contextmanager
def prometheus(
    targets: dict[str, int],
    workdir: Path,
    rule_files: tuple[Path, ...] = (),
    alertmanager: str | None = None,
    honor_labels: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """Prometheus scraping each ``job -> port`` every second; yields its base URL.

    ``rule_files`` are evaluated (each group at its own interval); firing alerts go to the
    Alertmanager at ``alertmanager`` (host:port) when given. Jobs in ``honor_labels`` keep
    the labels as exported (the platform's exporter job does: its series carry their own
    ``job``, platform/telemetry.sh)."""
    binary = prometheus_binary()
    port = free_port()
    jobs = "".join(
        f"  - job_name: {job}\n"
        + ("    honor_labels: true\n" if job in honor_labels else "")
        + f"    static_configs:\n      - targets: ['127.0.0.1:{p}']\n"
        for job, p in targets.items()
    )
    cfg = workdir / "prometheus.yml"
    rules = "".join(f"  - {f}\n" for f in rule_files)
    alerting = (
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
        if alertmanager
        else ""
    )
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + alerting
        + f"scrape_configs:\n{jobs}"
    )
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {proc.returncode}:\n"
                    f"{(workdir / 'prometheus.log').read_text()[-3000:]}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("prometheus not ready after 60 s", pytrace=False)
        yield url
    finally:
        stop_process(proc)
        log.close()


def alertmanager_binary() -> str:
    """Debian installs the server as ``prometheus-alertmanager``; upstream as ``alertmanager``."""
    hint = (
        "install Debian's prometheus-alertmanager (DEBIAN_TEST_PACKAGES in toolchain/versions.env) "
        "or point CE_ALERTMANAGER_BIN at one; the alert delivery tests need a real Alertmanager"
    )
    env = os.environ.get("CE_ALERTMANAGER_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(f"CE_ALERTMANAGER_BIN={env} is not executable: {hint}", pytrace=False)
        return env
    path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not path:
        pytest.fail(f"alertmanager binary not found on PATH: {hint}", pytrace=False)
    return path


@contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """Alertmanager on loopback (clustering off) with ``config``; yields its host:port."""
    port = free_port()
    data = workdir / "am-data"
    data.mkdir(exist_ok=True)
    log_path = workdir / "alertmanager.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            alertmanager_binary(),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"alertmanager exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("alertmanager not ready after 30 s", pytrace=False)
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


def wait_for_canary(url: str, job: str, window: str, at_least: float, timeout: float = 60) -> None:
    """Block until ``job``'s canary (api-green) answered ``at_least`` requests within ``window``.

    The mesh sends the canary its share only once the step is applied, so after a step the
    new weight takes a few scrapes to fill a window, as a real bake would."""
    from driver.prom import PrometheusClient

    client = PrometheusClient(url)
    q = (
        f'sum(increase(istio_requests_total{{job="{job}",reporter="destination",'
        f'destination_workload="api-green"}}[{window}]))'
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = client.query_scalar(q)
        if n is not None and n >= at_least:
            return
        time.sleep(1)
    pytest.fail(
        f"{job}: the canary never answered {at_least:g} requests in {window}", pytrace=False
    )


def wait_for_full_window(
    url: str, jobs: list[str], window: str, timeout: float = 90, at_least: float = 600
) -> None:
    """Block until every exporter job has a full ``window`` of stable traffic in Prometheus
    (``at_least`` requests of stable in it)."""
    from driver.prom import PrometheusClient

    client = PrometheusClient(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [
            client.query_scalar(
                f'sum(increase(istio_requests_total{{job="{j}",reporter="destination",'
                f'destination_workload="api-blue"}}[{window}]))'
            )
            for j in jobs
        ]
        if all(c is not None and c >= at_least for c in counts):
            return
        time.sleep(1)
    pytest.fail(
        f"Prometheus never collected a full {window} window from the exporters", pytrace=False
    )
