"""The traffic split the mesh applies: the program's VirtualService as the API server holds it.

Istio's gateway sends a request that carries no track cookie by the weights of the first split
route; the sticky routes only keep earlier users where they landed. So the synthetic traffic is
split by the *applied* object, not by the stack file: a rollback that server-side applies phase
0 weights moves it at once, as it moves real traffic, and a VirtualService the program got wrong
moves it wrongly. Routes are read as the policy pack's rollout rules read them
(:func:`policies.lib.istio.canary_weights`), so there is one reading of a split.

:class:`VirtualServiceWatch` follows one object through ``kubectl get --watch
--output-watch-events -o json`` (one process, one compact JSON event per line, restarted when
the API server ends the watch).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from policies.lib.istio import canary_weights

#: the subset the program's DestinationRule gives the canary's pods (components.mesh)
CANARY_SUBSET = "canary"


def canary_percent(vs: Mapping[str, Any]) -> int | None:
    """Pure: the canary subset's share of the VirtualService's first split route that reaches
    it, in percent; None when no route splits traffic to the canary."""
    weights = canary_weights(vs, CANARY_SUBSET)
    if not isinstance(weights, dict) or not weights:
        return None
    return int(next(iter(weights.values())))


def watch_argv(kubectl: str, kubeconfig: str, namespace: str, name: str) -> list[str]:
    """Pure: a watch of one VirtualService that also reports its absence and later creation
    (a field selector, not ``get NAME``, which fails while the object does not exist)."""
    return [
        kubectl, "--kubeconfig", kubeconfig, "get", "virtualservices.networking.istio.io",
        "-n", namespace, "--field-selector", f"metadata.name={name}",
        "-o", "json", "--watch", "--output-watch-events",
    ]  # fmt: skip


class VirtualServiceWatch:
    """The canary percent of one VirtualService, kept current by a kubectl watch.

    ``percent()`` is None while the object does not exist (or was never seen); the caller then
    falls back to another source."""

    def __init__(self, argv: Sequence[str], retry_s: float = 1.0) -> None:
        self.argv = list(argv)
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._percent: int | None = None
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._run, name="vs-watch", daemon=True)

    def percent(self) -> int | None:
        with self._lock:
            return self._percent

    def feed(self, line: str) -> None:
        """Apply one watch event (one line of kubectl's output)."""
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return  # not an event (kubectl prints errors on stderr, but be safe)
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            return
        with self._lock:
            if kind == "DELETED":
                self._percent = None
            elif kind in ("ADDED", "MODIFIED"):
                self._percent = canary_percent(obj)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._proc = subprocess.Popen(
                    self.argv, stdout=subprocess.PIPE, stderr=sys.stderr, text=True
                )
            except OSError as e:
                print(f"vs-watch: {e}", file=sys.stderr, flush=True)
            else:
                assert self._proc.stdout is not None
                # a fresh watch lists the object again (ADDED) or nothing: start from "none"
                with self._lock:
                    self._percent = None
                for line in self._proc.stdout:
                    self.feed(line)
                self._proc.wait()
            self._stop.wait(self.retry_s)
