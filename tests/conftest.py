"""Test lanes: the markers, declared once and applied by what a test uses (issue 24).

    platform    the shared local platform and its `local` stack (tests/integration, and the
                driver's end-to-end walk); they share one stack, so they never run in parallel
    prometheus  a private Prometheus (+ synthetic exporter) the test starts and waits on
    tools       an external program (the Pulumi CLI, promtool, amtool, actionlint, mypy, ...)
    cold        empty caches: the fresh-machine fetch

`./ce test --fast` is the lane `-m "not platform and not cold"` (no platform is started), spread
over the cores with pytest-xdist. `./ce test` runs everything. A test that needs more than 60 s
says why in its docstring (a line starting "Slow:"); the run's summary names any that does not.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SLOW_S = 60.0

# by module, relative to tests/: what a module uses that no fixture shows
PLATFORM = {"driver/test_driver_e2e.py", "driver/test_driver_bench.py"}
COLD = {"integration/test_fresh_machine.py"}
TOOLS = {
    "unit/test_amtool.py",
    "unit/test_promtool.py",
    "unit/test_lint.py",
    "unit/test_langhost.py",
    "unit/test_shell_syntax.py",
    "unit/test_entrypoint_tools.py",
    "ci/test_workflows.py",
    "ci/test_user_errors.py",
    "ci/test_offline_preview.py",
    "policies/test_noncompliant_programs.py",
    "policies/test_main_program_mocked.py",
    "driver/test_cli_stack.py",
    "driver/test_stale_lock.py",
    "driver/test_rollout_view.py",  # tmux
    "driver/test_rollout_report_browser.py",  # chromium
}
PLATFORM_FIXTURES = {"tool_env", "local_project"}
MARKERS = {
    "platform": "uses the shared local platform and its `local` stack (serial)",
    "prometheus": "starts and waits on a private Prometheus",
    "tools": "runs an external program",
    "cold": "starts from empty caches (the fresh-machine fetch)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def _lanes(item: pytest.Item) -> set[str]:
    rel = Path(str(item.fspath)).resolve().relative_to(TESTS).as_posix()
    lanes = set()
    if rel.startswith("integration/") or rel in PLATFORM:
        lanes.add("platform")
    if PLATFORM_FIXTURES & set(getattr(item, "fixturenames", ())):
        lanes.add("platform")
    if rel in COLD:
        lanes |= {"cold", "platform"}
    if rel in TOOLS:
        lanes.add("tools")
    if "driver_promstack" in _source(Path(str(item.fspath))):
        lanes.add("prometheus")
    return lanes


@cache
def _source(path: Path) -> str:
    return path.read_text()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        lanes = _lanes(item)
        for lane in sorted(lanes):
            item.add_marker(getattr(pytest.mark, lane))
        # pytest-xdist (--dist loadgroup): a module stays on one worker, so its module-scoped
        # fixtures and caches (a Prometheus stack, the 27 mock-run programs) are built once; the
        # platform's tests all share one worker
        group = "platform" if "platform" in lanes else str(item.fspath)
        item.add_marker(pytest.mark.xdist_group(group))


_slow_without_reason: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    if call.when != "call" or call.duration <= SLOW_S:
        return outcome
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    if not any(line.strip().startswith("Slow:") for line in doc.splitlines()):
        _slow_without_reason.append(f"{item.nodeid} ({call.duration:.0f} s)")
    return outcome


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _slow_without_reason:
        terminalreporter.section(
            f"tests over {SLOW_S:.0f} s without a 'Slow:' line in the docstring"
        )
        for line in _slow_without_reason:
            terminalreporter.write_line(line)
