"""One controller per stack: an exclusive, non-blocking ``flock`` on a lock file.

The kernel drops the lock when the holder dies (even by ``kill -9``), so a restart
never finds a stale lock of ours. The file records who holds it for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from driver.audit import ce_home


class LockHeld(RuntimeError):
    """Another controller (or manual command) holds the stack."""


def default_lock_path(project: str, stack: str) -> Path:
    return ce_home() / "locks" / f"{project}-{stack.replace('/', '_')}.lock"


class StackLock:
    def __init__(self, path: Path, holder: str) -> None:
        self.path = Path(path)
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = self._read(fd)
            os.close(fd)
            raise LockHeld(
                f"stack is held by {info.get('holder', '?')} (pid {info.get('pid', '?')}, "
                f"since {info.get('since', '?')}); lock file {self.path}. Stop that controller "
                "first (or wait for it to finish)."
            ) from None
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {"holder": self.holder, "pid": os.getpid(), "since": _now()}, sort_keys=True
            ).encode(),
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StackLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.loads(os.read(fd, 4096).decode() or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
