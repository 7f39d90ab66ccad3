"""The Grafana dashboards show data: every panel's query returns series from a real
Prometheus during a rollout.

Grafana itself is not installed here (README: how to import the dashboards into yours), so
each panel is checked as Grafana would run it: its PromQL as an instant query against the
private promstack (driver_promstack through driver_rollout: the synthetic exporter and the
rollout controller's ``/metrics``, scraped every second, the exporter's labels kept as on the
platform) while the rollout is at phase 2, both tracks taking traffic. A panel whose legend
splits by version must show both.
"""

from __future__ import annotations

from pathlib import Path

from components.dashboards import panel_queries
from driver import core
from driver.prom import PrometheusClient
from tests.driver.driver_fakes import advance_as, approve
from tests.driver.driver_rollout import mesh_rollout

PANELS = panel_queries()


def test_every_panel_returns_series_during_a_rollout(tmp_path: Path) -> None:
    with mesh_rollout(tmp_path) as m:
        d = m.driver
        assert approve(d, "deployment-commander") == core.OK
        assert advance_as(d, "deployment-commander", m.prom_url).code == core.OK
        m.wait_canary(100)
        m.wait_bake(1)
        assert approve(d, "tech-lead") == core.OK
        assert advance_as(d, "tech-lead", m.prom_url).code == core.OK, m.lines
        m.wait_canary(400)  # phase 2's 20 % in the window
        api = PrometheusClient(m.prom_url)
        empty, one_version = [], []
        for dash, title, legend, expr in PANELS:
            result = api.query(expr)
            if not result:
                empty.append(f"{dash}/{title}: {expr}")
            elif "destination_version" in legend:
                versions = {r["metric"].get("destination_version") for r in result}
                if len(versions) < 2:
                    one_version.append(f"{dash}/{title}: {versions}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
        assert not one_version, "panels missing a track:\n" + "\n".join(one_version)
    print(f"{len(PANELS)} panel queries, each with series")


def test_the_panels_are_all_checked() -> None:
    dashboards = {d for d, *_ in PANELS}
    assert dashboards == {"deployment-overview", "latency", "errors", "agents", "resources"}
    assert len(PANELS) >= 15, PANELS
