"""Issue 3 acceptance on the local platform, with the real Pulumi CLI.

- `pulumi up --stack local` converges: every Deployment is ready, on kwok nodes in 3 zones;
- a second `pulumi preview --expect-no-changes` passes (with --refresh, once the operators have
  reconciled: tests/integration/test_operator_effects.py);
- stepping 0→1→2→3→4→0 is one `pulumi up` each and touches at most 3 resources (the
  VirtualService and the green api Deployment);
- a skipped phase is refused before anything is touched;
- the state holds no generated password in plaintext.
"""

from __future__ import annotations

import base64
import json
import time

from tests.integration.conftest import LocalProject, kubectl

APP_NS = "claude-enhancer"


def _deployments(project: LocalProject) -> list[dict]:
    out = kubectl(project.env, "get", "deployments", "-A", "-o", "json")
    return [
        d
        for d in json.loads(out)["items"]
        if d["metadata"]["namespace"].startswith("claude-enhancer")
    ]


def _rolled_out(d: dict) -> bool:
    """The rollout is complete: every pod is of the current template, Ready, none left over
    (readyReplicas alone also counts an old ReplicaSet's pods in the middle of a rollout)."""
    want, st = d["spec"].get("replicas") or 0, d["status"]
    return (
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and (st.get("updatedReplicas") or 0) == want
        and (st.get("readyReplicas") or 0) == want
        and (st.get("replicas") or 0) == want
    )


def _wait_ready(project: LocalProject, timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        deps = _deployments(project)
        pending = [d["metadata"]["name"] for d in deps if not _rolled_out(d)]
        if not pending:
            return deps
        if time.monotonic() > deadline:
            raise AssertionError(f"Deployments not ready after {timeout}s: {pending}")
        time.sleep(3)


def test_up_converges_on_kwok_nodes_in_three_zones(local_project: LocalProject) -> None:
    deps = _wait_ready(local_project)
    assert len(deps) >= 3, [d["metadata"]["name"] for d in deps]
    nodes = json.loads(kubectl(local_project.env, "get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == 15
    zone_of = {
        n["metadata"]["name"]: n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes
    }
    assert len(set(zone_of.values())) == 3
    ready = [
        n["metadata"]["name"]
        for n in nodes
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )
    ]
    assert len(ready) == 15, f"not Ready: {set(zone_of) - set(ready)}"
    pods = json.loads(kubectl(local_project.env, "get", "pods", "-n", APP_NS, "-o", "json"))[
        "items"
    ]
    zones_by_app: dict[str, set[str]] = {}
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue  # a pod of a finished rollout, still terminating
        assert p["status"].get("phase") == "Running", p["metadata"]["name"]
        app = p["metadata"]["labels"]["app.kubernetes.io/name"]
        zones_by_app.setdefault(app, set()).add(zone_of[p["spec"]["nodeName"]])
    assert zones_by_app, "no pods in the app namespace"
    for app, zones in zones_by_app.items():
        assert len(zones) == 3, f"{app} pods only in zones {sorted(zones)}"


def test_skipped_phase_is_refused_before_anything_is_touched(local_project: LocalProject) -> None:
    before = local_project.export_state()
    local_project.set_phase(2)
    try:
        r = local_project.pulumi("up", "--yes", "--skip-preview", check=False)
        assert r.returncode != 0
        assert "claude-enhancer:rollout.phase" in r.stdout + r.stderr
        assert "jumps from 0 to 2" in r.stdout + r.stderr
    finally:
        local_project.set_phase(0)
    after = local_project.export_state()
    assert _fingerprint(before) == _fingerprint(after)


def _fingerprint(state: str) -> list[object]:
    """Every resource with its inputs/outputs; secrets re-encrypt on each export, so they are masked."""

    def mask(v: object) -> object:
        if isinstance(v, dict):
            return "<secret>" if "ciphertext" in v else {k: mask(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v

    return [mask(r) for r in json.loads(state)["deployment"]["resources"]]


def test_each_phase_step_touches_only_the_virtualservice_and_canary_scale(
    local_project: LocalProject,
) -> None:
    steps: list[tuple[int, dict[str, int], float]] = []
    for phase in (1, 2, 3, 4, 0):
        local_project.set_phase(phase)
        preview = local_project.pulumi("preview", "--json", "--diff")
        changed = [
            (s["op"], s["urn"].rsplit("::", 1)[-1])
            for s in json.loads(preview.stdout).get("steps", [])
            if s["op"] not in ("same", "read")
        ]
        names = {name for _, name in changed}
        allowed = {"virtual-service", "api-green"}
        assert names <= allowed | {"local"}, f"phase {phase} changes {changed}"
        assert all(op == "update" for op, _ in changed), changed
        t0 = time.monotonic()
        summary = local_project.up()
        steps.append((phase, summary, time.monotonic() - t0))
        touched = sum(v for k, v in summary.items() if k != "same")
        assert touched <= 3, f"phase {phase}: {summary}"
        outputs = json.loads(local_project.pulumi("stack", "output", "--json").stdout)
        assert outputs["rolloutPhase"] == phase
    vs = json.loads(
        kubectl(
            local_project.env,
            "get",
            "virtualservices.networking.istio.io",
            "-n",
            APP_NS,
            "-o",
            "json",
        )
    )["items"]
    weights = [
        r["weight"] for v in vs for h in v["spec"]["http"] for r in h["route"] if "weight" in r
    ]
    assert 100 in weights, weights
    print("phase steps:", steps)


def test_state_holds_no_plaintext_password(local_project: LocalProject) -> None:
    secret = json.loads(
        kubectl(
            local_project.env,
            "get",
            "secret",
            "claude-enhancer-redis-auth",
            "-n",
            "claude-enhancer-data",
            "-o",
            "json",
        )
    )
    values = [base64.b64decode(v).decode() for v in secret["data"].values()]
    passwords = [v for v in values if len(v) >= 24]
    assert passwords, "no generated password found in the redis auth Secret"
    state = local_project.export_state()
    for pw in passwords:
        assert pw not in state
        assert base64.b64encode(pw.encode()).decode() not in state
    assert "ciphertext" in state
