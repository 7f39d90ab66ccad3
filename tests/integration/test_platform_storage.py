"""The local platform's static PV pool survives destroyed stacks (kwok has no provisioner).

A destroyed stack leaves its claims' PVs Released (reclaim policy Retain). Found by the
rollout bench's destroy/up cycles: once the 24 PVs were all Released, every new PostgreSQL
and Redis claim stayed Pending. `platform/local.sh up`, which `./ce test` and `./ce up` run
first, hands Released PVs back even when the platform is already up.
"""

from __future__ import annotations

import json
import subprocess
import time

from tests.integration.conftest import ROOT, kubectl


def _phase(env: dict[str, str], pv: str) -> str:
    return str(json.loads(kubectl(env, "get", "pv", pv, "-o", "json"))["status"].get("phase"))


def test_platform_up_hands_released_pvs_back(tool_env: dict[str, str]) -> None:
    pvs = json.loads(
        kubectl(tool_env, "get", "pv", "-l", "ce-platform/storage=static", "-o", "json")
    )["items"]
    free = [p["metadata"]["name"] for p in pvs if p["status"].get("phase") == "Available"]
    assert free, "no Available static PV to test with"
    pv = free[-1]
    # what a destroyed stack leaves behind: a claimRef to a claim that no longer exists
    ref = {"spec": {"claimRef": {"namespace": "default", "name": "gone-claim", "uid": "0"}}}
    kubectl(tool_env, "patch", "pv", pv, "--type", "merge", "-p", json.dumps(ref))
    end = time.monotonic() + 60
    while _phase(tool_env, pv) != "Released":
        assert time.monotonic() < end, f"{pv} never became Released"
        time.sleep(1)
    r = subprocess.run(
        ["bash", str(ROOT / "platform" / "local.sh"), "up"],
        env=tool_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0 and "already up" in r.stderr + r.stdout, r.stderr[-2000:]
    end = time.monotonic() + 60
    while _phase(tool_env, pv) != "Available":
        assert time.monotonic() < end, f"{pv} still {_phase(tool_env, pv)} after platform up"
        time.sleep(1)
