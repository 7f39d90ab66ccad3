"""Append-only JSON-lines audit log kept next to the stack state.

Location: ``$CE_AUDIT_DIR`` if set, else ``$CE_HOME/audit`` (CE_HOME defaults
to ``~/.cache/ce``, the same tree that holds the file state backend), file
``<project>-<stack>.jsonl``. One JSON object per decision. The log is the
single source of truth for "when did we enter this phase"; it is not mirrored
into stack config (that would make every decision a config diff).

Secrets never reach the log: values are whitelisted per key and any string
that looks like a credential is redacted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

_SECRET_KEY = re.compile(
    r"(password|passphrase|passwd|secret|token|api[_-]?key|credential|^auth$|authorization|private[_-]?key)",
    re.IGNORECASE,
)
_SECRET_VAL = re.compile(
    r"(hvs\.[A-Za-z0-9_-]+|s\.[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)
REDACTED = "[REDACTED]"


def ce_home() -> Path:
    return Path(os.environ.get("CE_HOME") or Path.home() / ".cache" / "ce")


def default_audit_path(project: str, stack: str) -> Path:
    base = os.environ.get("CE_AUDIT_DIR")
    root = Path(base) if base else ce_home() / "audit"
    safe_stack = stack.replace("/", "_")
    return root / f"{project}-{safe_stack}.jsonl"


def redact(value: Any, key: str = "") -> Any:
    """Drop anything that looks like a secret (by key name or by value shape)."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VAL.sub(REDACTED, value)
    return value


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        clean = redact(dict(entry))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(clean, sort_keys=True, allow_nan=False, default=str)
        # O_APPEND single write: concurrent drivers never interleave a line
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return clean  # type: ignore[no-any-return]

    def entries(self) -> list[dict[str, Any]]:
        return list(self._iter())

    def _iter(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{self.path}:{n}: corrupt audit line: {exc}") from exc
                if isinstance(obj, dict):
                    yield obj

    def tail(self, n: int) -> list[dict[str, Any]]:
        return self.entries()[-n:] if n > 0 else []
