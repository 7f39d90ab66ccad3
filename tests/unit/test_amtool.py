"""Debian's prometheus-alertmanager loads the rendered alertmanager.yml and routes it.

``amtool check-config`` validates the file Alertmanager would load; ``amtool config routes
test`` walks the real routing tree for every severity and every escalation level.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components.alerting import ESCALATION
from components.monitoring import plain_alertmanager_yaml, webhook_urls
from components.settings import MonitoringSettings
from tests.unit.test_monitoring import RECEIVERS, _with_receivers


def amtool() -> str:
    path = shutil.which("amtool")
    if not path:
        pytest.fail(
            "amtool not found on PATH: install Debian's prometheus-alertmanager "
            "(DEBIAN_TEST_PACKAGES in toolchain/versions.env)",
            pytrace=False,
        )
    return path


def _config(tmp_path: Path, m: MonitoringSettings) -> Path:
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(plain_alertmanager_yaml(m, webhook_urls(m)))
    return cfg


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("receivers", [False, True], ids=["local-no-webhooks", "all-webhooks"])
def test_check_config(tmp_path: Path, receivers: bool) -> None:
    m = _with_receivers(**(RECEIVERS if receivers else {})).monitoring
    r = _amtool("check-config", str(_config(tmp_path, m)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and "7 receivers" in r.stdout and "1 inhibit rules" in r.stdout


ROUTES = [
    (["severity=critical", "family=agents"], "paging,chat"),
    (["severity=warning", "family=agents"], "chat"),
    (["severity=info", "family=rollout"], "email"),
    (["severity=none"], "email"),
    *[
        (["severity=critical", "family=agents", f"escalation={lv.level}"], f"escalation-{lv.level}")
        for lv in ESCALATION[1:]
    ],
]


@pytest.mark.parametrize("labels,expected", ROUTES, ids=[" ".join(x) for x, _ in ROUTES])
def test_routes(tmp_path: Path, labels: list[str], expected: str) -> None:
    cfg = _config(tmp_path, _with_receivers(**RECEIVERS).monitoring)
    r = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={cfg}",
        f"--verify.receivers={expected}",
        *labels,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == expected
