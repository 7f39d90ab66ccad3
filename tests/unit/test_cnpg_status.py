"""platform/cnpg-status.py's answers: what CloudNativePG's operator needs from an instance manager
to go on (cluster_controller.go: exactly one primary, equal LSNs, a non-empty executable hash,
one configuration hash), for the pod behind the address the operator dialled."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    return load_script("cnpg_status", ROOT / "platform" / "cnpg-status.py")


cs = _module()
NAMES = ["pg-1", "pg-2", "pg-3"]


def _cluster(**status: Any) -> dict[str, Any]:
    base = {"instanceNames": NAMES, "operatorHash": "ca8b29", "targetPrimary": "pg-1"}
    return {
        "metadata": {"uid": "0b9c1f7e-5d2a-4c3b-9e8f-123456789abc"},
        "status": {**base, **status},
    }


def test_proxy_v1_names_the_dialled_address() -> None:
    assert cs.parse_proxy_v1(b"PROXY TCP4 10.0.0.1 10.0.0.8 40512 8000\r\n") == "10.0.0.8"
    with pytest.raises(ValueError):
        cs.parse_proxy_v1(b"GET /pg/status HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("status", "primary"),
    [({}, "pg-1"), ({"currentPrimary": "pg-2", "targetPrimary": "pg-2"}, "pg-2")],
    ids=["bootstrap: the target primary", "after a switchover: the current primary"],
)
def test_exactly_one_primary_and_replicas_level_with_it(
    status: dict[str, Any], primary: str
) -> None:
    c = _cluster(**status)
    answers = {n: cs.pg_status(n, c) for n in NAMES}
    assert [n for n, a in answers.items() if a["isPrimary"]] == [primary]
    lsn = answers[primary]["currentLsn"]
    for n, a in answers.items():
        if n != primary:
            # level with the primary: the operator's failover ordering never prefers a replica
            assert a["receivedLsn"] == a["replayLsn"] == lsn and a["isWalReceiverActive"]
    assert {r["applicationName"] for r in answers[primary]["replicationInfo"]} == set(NAMES) - {
        primary
    }
    # non-empty executable hash (an empty one makes the operator recreate the pod), one config hash
    assert {a["executableHash"] for a in answers.values()} == {"ca8b29"}
    assert len({a["loadedConfigurationHash"] for a in answers.values()}) == 1
    assert len({a["systemID"] for a in answers.values()}) == 1
    assert len(answers[primary]["systemID"]) == 19
