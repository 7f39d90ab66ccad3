"""Read the stack's own previous ``rolloutPhase`` output (before any resource).

Order: ``CE_PREVIOUS_PHASE`` env (``none``/empty = no previous phase) ->
nothing under Pulumi mocks -> the file backend's checkpoint, read directly ->
``pulumi stack output --json`` for the current stack (any other backend). The
command runner is injectable for tests.

Why the checkpoint: ``stack output`` is a second CLI process inside every ``up``
(start-up plus the passphrase key derivation, about 1.4 s of a 6 s phase step);
the checkpoint is the file that command reads, and the Stack's outputs in it are
the last completed update's until this update registers new ones.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ENV_VAR = "CE_PREVIOUS_PHASE"
OUTPUT_NAME = "rolloutPhase"

Runner = Callable[[Sequence[str]], tuple[int, str, str]]


class StateError(RuntimeError):
    """The previous phase could not be determined."""


def _run(cmd: Sequence[str]) -> tuple[int, str, str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _under_mocks() -> bool:
    try:
        from pulumi.runtime import mocks, settings
    except ImportError:  # pragma: no cover - pulumi is always installed here
        return False
    return isinstance(settings.get_monitor(), mocks.MockMonitor)


def parse_phase(value: object, source: str) -> int | None:
    """Turn an output/env value into a phase (None for absent)."""
    if value is None:
        return None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("", "none", "null"):
            return None
        try:
            return int(v)
        except ValueError:
            raise StateError(
                f"{source}: previous rollout phase {value!r} is not an integer"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{source}: previous rollout phase {value!r} is not an integer")
    return int(value)


def phase_from_outputs(stdout: str) -> int | None:
    """Extract ``rolloutPhase`` from ``pulumi stack output --json``."""
    text = stdout.strip()
    if not text:
        return None
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(f"pulumi stack output --json returned invalid JSON: {e}") from None
    if not isinstance(outputs, dict):
        return None
    return parse_phase(outputs.get(OUTPUT_NAME), f"stack output {OUTPUT_NAME}")


def backend_dir(backend_url: str) -> Path | None:
    """The directory of a ``file://`` backend (None for any other backend)."""
    if not backend_url.startswith("file://"):
        return None
    return Path(backend_url[len("file://") :]).expanduser()


def checkpoint_path(backend_url: str, project: str, stack: str) -> Path | None:
    """The file backend's checkpoint of ``stack`` (project-scoped or legacy layout), if any."""
    root = backend_dir(backend_url)
    if root is None:
        return None
    base = root / ".pulumi" / "stacks"
    for d in (base / project, base):
        for name in (f"{stack}.json", f"{stack}.json.gz"):
            if (d / name).is_file():
                return d / name
    return None


def read_checkpoint(path: Path) -> bytes:
    """A checkpoint file's JSON bytes (the backend may gzip them)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def phase_from_checkpoint(path: Path) -> int | None:
    """``rolloutPhase`` of the Stack resource in a checkpoint file (None: no outputs yet)."""
    raw = read_checkpoint(path)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise StateError(f"{path}: invalid checkpoint JSON: {e}") from None
    latest = ((doc.get("checkpoint") or {}).get("latest") or {}) if isinstance(doc, dict) else {}
    for r in latest.get("resources") or []:
        if r.get("type") == "pulumi:pulumi:Stack":
            outputs = r.get("outputs") or {}
            return parse_phase(outputs.get(OUTPUT_NAME), f"{path} output {OUTPUT_NAME}")
    return None


def previous_phase(
    env: Mapping[str, str] | None = None,
    runner: Runner | None = None,
    stack: str | None = None,
    under_mocks: Callable[[], bool] = _under_mocks,
    project: str | None = None,
) -> int | None:
    """The stack's last exported rolloutPhase, or None for a fresh stack."""
    env = os.environ if env is None else env
    if ENV_VAR in env:
        return parse_phase(env[ENV_VAR], ENV_VAR)
    if runner is None:
        if under_mocks():
            return None
        runner = _run
    import pulumi

    if stack is None:
        stack = pulumi.get_stack()
    url = env.get("PULUMI_BACKEND_URL", "")
    path = checkpoint_path(url, project or pulumi.get_project(), stack) if url else None
    if path is not None:
        return phase_from_checkpoint(path)
    try:
        code, out, err = runner(["pulumi", "stack", "output", "--json", "--stack", stack])
    except (OSError, subprocess.SubprocessError) as e:
        raise StateError(
            f"could not run `pulumi stack output` to read the previous rolloutPhase of "
            f"stack {stack!r}: {e}; set {ENV_VAR} to override"
        ) from None
    if code != 0:
        low = err.lower()
        if "no stack" in low or "not found" in low or "has no outputs" in low:
            return None
        raise StateError(
            f"could not read the previous rolloutPhase of stack {stack!r} "
            f"(pulumi stack output exited {code}): {err.strip()}; set {ENV_VAR} to override"
        )
    return phase_from_outputs(out)
