"""Open a page in Debian's headless Chromium as a person would, over the DevTools protocol.

One Chromium per page (a new empty profile, no network services of its own), driven with
websocket-client: the page loads, every console message is kept with its level, uncaught
exceptions and browser log errors (a failed request, e.g. a CDN an offline machine cannot
reach) too, and every request that leaves the file itself. The test then reads the rendered
DOM (attributes the page's own scripts set after drawing) and takes a full-page screenshot.
A missing ``chromium`` is a test FAILURE (DEBIAN_TEST_PACKAGES installs it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.driver.driver_promstack import stop_process

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_binary() -> str:
    path = os.environ.get("CE_CHROMIUM_BIN") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "chromium not found: install Debian's chromium (DEBIAN_TEST_PACKAGES in "
            "toolchain/versions.env; `apt-get install -y chromium`) or set CE_CHROMIUM_BIN",
            pytrace=False,
        )
    return path


@dataclass
class Page:
    console: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) of every console call."""
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """URLs the page asked for (the document itself included)."""

    @property
    def errors(self) -> list[str]:
        return (
            [f"console.{lvl}: {t}" for lvl, t in self.console if lvl in ("error", "assert")]
            + [f"exception: {x}" for x in self.exceptions]
            + [f"log: {x}" for x in self.log_errors]
        )


class Tab:
    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.page = Page()

    def _event(self, msg: dict[str, Any]) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.page.console.append((p["type"], text))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.page.exceptions.append(
                str(d.get("exception", {}).get("description") or d.get("text"))
            )
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.page.log_errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            self.page.requests.append(p["request"]["url"])

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        self.ws.settimeout(60)  # settle() and wait_event() leave a short one
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self._event(msg)

    def wait_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            self._event(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def settle(self, seconds: float) -> None:
        """Take in the events of ``seconds`` (late console errors, timers)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._event(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                return


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Tab]:
    """A headless Chromium with one tab, console and network recorded."""
    profile = tempfile.mkdtemp(prefix="ce-chromium-")
    proc = subprocess.Popen(
        [
            chromium_binary(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _devtools_port(proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        tab = Tab(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Page", "Network"):
            tab.call(f"{domain}.enable")
        try:
            yield tab
        finally:
            tab.ws.close()
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            return int(m.group(1))
    pytest.fail(f"chromium did not open DevTools:\n{''.join(seen)[-3000:]}", pytrace=False)


def open_page(tab: Tab, path: Path, ready_js: str, timeout: float = 30) -> Page:
    """Load ``path`` and wait until ``ready_js`` is true (the page's scripts have drawn)."""
    tab.call("Page.navigate", url=path.resolve().as_uri())
    tab.wait_event("Page.loadEventFired", timeout)
    deadline = time.monotonic() + timeout
    while not tab.evaluate(ready_js):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {ready_js} never became true")
        tab.settle(0.2)
    tab.settle(0.5)
    return tab.page


def screenshot(tab: Tab, out: Path, width: int = 1400) -> Path:
    """The whole page (not only the window) as PNG."""
    height = int(tab.evaluate("document.documentElement.scrollHeight"))
    tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    tab.settle(0.5)  # plotly's responsive charts redraw at the new size
    shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    return out
