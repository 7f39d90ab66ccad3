"""Issue 23, defect 9 with the real scheduler: one zone goes out (its nodes cordoned and tainted,
its pods of the program's namespaces deleted); once the controllers have replaced the pods,
nothing stays Pending beyond what the PodDisruptionBudgets allow.

The zone is one that does not hold the CNPG primary (the platform fakes the instance manager,
not a failover). Afterwards the zone comes back and the app's pods are spread over the three
zones again.

Slow: the controllers replace about 15 pods twice, and the StatefulSets one by one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from components.data import PG_NAME
from tests.integration.conftest import LocalProject, kubectl, kubectl_json, wait_for

NAMESPACES = ("claude-enhancer", "claude-enhancer-data", "claude-enhancer-monitoring")
ZONE = "topology.kubernetes.io/zone"
TAINT = "ce-test.claude-enhancer.io/zone-outage"


def _pods(env: dict[str, str]) -> list[dict[str, Any]]:
    """The program's long-running pods (not a CronJob's), not terminating."""
    out = []
    for ns in NAMESPACES:
        for p in kubectl_json(env, "get", "pods", "-n", ns)["items"]:
            owners = {o["kind"] for o in p["metadata"].get("ownerReferences") or []}
            if not p["metadata"].get("deletionTimestamp") and "Job" not in owners:
                out.append(p)
    return out


def _pdbs(env: dict[str, str]) -> list[dict[str, Any]]:
    return [pdb for ns in NAMESPACES for pdb in kubectl_json(env, "get", "pdb", "-n", ns)["items"]]


def _selects(pdb: dict[str, Any], pod: dict[str, Any]) -> bool:
    sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
    return bool(
        pdb["metadata"]["namespace"] == pod["metadata"]["namespace"]
        and sel.items() <= pod["metadata"].get("labels", {}).items()
    )


def _owner(pod: dict[str, Any]) -> str:
    refs = pod["metadata"].get("ownerReferences") or [
        {"kind": "-", "name": pod["metadata"]["name"]}
    ]
    return f"{pod['metadata']['namespace']}/{refs[0]['kind']}/{refs[0]['name']}"


def budget_problems(pods: list[dict[str, Any]], pdbs: list[dict[str, Any]]) -> list[str]:
    """Pure: unscheduled pods beyond the budget of the PDBs that cover their workload (its
    pods: a CNPG instance gets its role label only once it runs, so a Pending one matches
    no PDB of its own). A workload no PDB covers has no budget; a Deployment's pods have no
    reason to wait for the zone."""
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    problems = []
    for owner in sorted({_owner(p) for p in pending}):
        down = [p for p in pending if _owner(p) == owner]
        mates = [p for p in pods if _owner(p) == owner]
        allowed = -1
        for b in pdbs:
            chosen = [p for p in mates if _selects(b, p)]
            if not chosen:
                continue
            spec = b["spec"]
            if "maxUnavailable" in spec:
                allowed = max(allowed, int(spec["maxUnavailable"]))
            else:
                span = {p["metadata"]["name"] for p in chosen + down}
                allowed = max(allowed, len(span) - int(spec.get("minAvailable", 0)))
        names = [p["metadata"]["name"] for p in down]
        if "/ReplicaSet/" in owner:
            # stateless: no volume or per-zone anti-affinity holds it, two zones have room
            # (defect 9: a spread that counts the lost zone keeps these Pending)
            problems.append(f"{owner}: Pending {names}, a stateless pod with two zones left")
        elif allowed < 0:
            problems.append(f"{owner}: Pending {names}, no PDB")
        elif len(down) > allowed:
            problems.append(f"{owner}: Pending {names}, its PDBs allow {allowed}")
    return problems


def _zone_of(env: dict[str, str]) -> dict[str, str]:
    return {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in _nodes(env)}


def _nodes(env: dict[str, str]) -> list[dict[str, Any]]:
    return list(kubectl_json(env, "get", "nodes")["items"])


def _counts(pods: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pods:
        (owner,) = p["metadata"].get("ownerReferences") or [{"name": "-"}]
        key = f"{p['metadata']['namespace']}/{owner['name']}"
        out[key] = out.get(key, 0) + 1
    return out


@pytest.fixture
def zone_out(local_project: LocalProject) -> Iterator[tuple[str, list[str]]]:
    env = local_project.env
    primary = kubectl_json(env, "get", "clusters.postgresql.cnpg.io", "-n", "claude-enhancer-data",
                           PG_NAME)["status"]["currentPrimary"]  # fmt: skip
    pg_node = kubectl_json(env, "get", "pod", "-n", "claude-enhancer-data", primary)["spec"][
        "nodeName"
    ]
    zone_of = _zone_of(env)
    zone = sorted(set(zone_of.values()) - {zone_of[pg_node]})[-1]
    names = sorted(n for n, z in zone_of.items() if z == zone)
    try:
        for n in names:
            kubectl(env, "cordon", n)
            kubectl(env, "taint", "nodes", n, f"{TAINT}=true:NoSchedule", "--overwrite")
        yield zone, names
    finally:
        for n in names:
            kubectl(env, "uncordon", n)
            kubectl(env, "taint", "nodes", n, f"{TAINT}-")
        # the values are back; the atomic spec.taints list is now kubectl's, as it was the node
        # controller's before (it wrote and removed the not-ready taint when the node joined)
        wait_for("the zone's nodes without the outage taints", 60, lambda: _untainted(env, names))
        wait_for("every pod scheduled again", 180,
              lambda: (not [p for p in _pods(env) if not p["spec"].get("nodeName")], None))  # fmt: skip
        # the app's ReplicaSets put the zone's replacements in the other zones: spread again
        kubectl(env, "delete", "pods", "-n", NAMESPACES[0], "--all", "--wait=false")
        wait_for("the app's pods Running in 3 zones", 180, lambda: _app_spread(env))


def _untainted(env: dict[str, str], names: list[str]) -> tuple[bool, Any]:
    taints = {
        n["metadata"]["name"]: [t["key"] for t in n["spec"].get("taints") or []]
        for n in _nodes(env)
        if n["metadata"]["name"] in names
    }
    bad = {n: t for n, t in taints.items() if TAINT in t or "node.kubernetes.io/unschedulable" in t}
    return not bad, bad


def _app_spread(env: dict[str, str]) -> tuple[bool, Any]:
    zone_of = _zone_of(env)
    zones: dict[str, set[str]] = {}
    pods = [p for p in _pods(env) if p["metadata"]["namespace"] == NAMESPACES[0]]
    for p in pods:
        if p["status"].get("phase") != "Running" or not p["spec"].get("nodeName"):
            return False, f"{p['metadata']['name']} {p['status'].get('phase')}"
        app = p["metadata"]["labels"].get("app.kubernetes.io/name", "")
        zones.setdefault(app, set()).add(zone_of[p["spec"]["nodeName"]])
    return all(len(z) == 3 for z in zones.values()), zones


def test_zone_outage_leaves_nothing_pending_beyond_the_budgets(
    local_project: LocalProject, zone_out: tuple[str, list[str]]
) -> None:
    env = local_project.env
    zone, names = zone_out
    before = _pods(env)
    want = _counts(before)
    gone = [p for p in before if p["spec"].get("nodeName") in names]
    assert gone, f"no pod of ours in {zone}"
    for p in gone:
        kubectl(env, "delete", "pod", "-n", p["metadata"]["namespace"], p["metadata"]["name"],
                "--wait=false")  # fmt: skip

    def settled() -> tuple[bool, Any]:
        pods = _pods(env)
        if _counts(pods) != want:
            return False, {
                "replacing": {k: v for k, v in _counts(pods).items() if want.get(k) != v}
            }
        if any(p["spec"].get("nodeName") in names for p in pods):
            return False, "a pod on the zone's nodes"
        problems = budget_problems(pods, _pdbs(env))
        return not problems, problems

    t0 = time.monotonic()
    wait_for(f"zone {zone} out: every pod replaced, Pending only within the PDBs", 120, settled)
    pending = [p["metadata"]["name"] for p in _pods(env) if not p["spec"].get("nodeName")]
    print(f"zone {zone}: {len(gone)} pods deleted, settled in {time.monotonic() - t0:.1f}s, "
          f"Pending within the budgets: {pending}")  # fmt: skip
