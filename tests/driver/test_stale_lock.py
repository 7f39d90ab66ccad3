"""A killed `pulumi up` that nobody has reaped yet is a zombie: its file lock is stale all the
same (the controller's resume after `kill -9` waited on one forever)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from driver.stack import _pid_alive


def test_a_zombie_holder_is_not_alive() -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert _pid_alive(p.pid)
        p.kill()
        deadline = time.monotonic() + 5
        stat = Path(f"/proc/{p.pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not _pid_alive(p.pid)  # killed, not reaped yet
    finally:
        p.wait()
    assert not _pid_alive(p.pid)
