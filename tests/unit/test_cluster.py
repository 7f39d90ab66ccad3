"""Cluster component: nodes, namespaces, guard rails, capacity."""

from __future__ import annotations

import pytest

from components import capacity
from components.cluster import Cluster, ClusterArgs, plan_nodes, total_capacity
from tests.unit.conftest import Capture, program_capture, run_mocked, settings_for

NODE = "kubernetes:core/v1:Node"


def _run(stack: str) -> Capture:
    s = settings_for(stack)
    return run_mocked(
        lambda: Cluster("cluster", ClusterArgs(s.cluster, s.namespaces, s.app, s.data))
    )


def test_kwok_nodes_15_over_3_zones() -> None:
    cap = _run("local")
    nodes = cap.of_type(NODE)
    assert len(nodes) == 15
    pools: dict[str, int] = {}
    zones: dict[str, int] = {}
    for n in nodes:
        md = n.inputs["metadata"]
        assert md["annotations"]["kwok.x-k8s.io/node"] == "fake"
        pool = md["labels"]["node.claude-enhancer.io/pool"]
        pools[pool] = pools.get(pool, 0) + 1
        zones[md["labels"]["topology.kubernetes.io/zone"]] = (
            zones.get(md["labels"]["topology.kubernetes.io/zone"], 0) + 1
        )
        taints = n.inputs.get("spec", {}).get("taints", [])
        if pool == "data":
            assert taints == [{"key": "dedicated", "value": "data", "effect": "NoSchedule"}]
        else:
            assert taints == []
    assert pools == {"system": 3, "app": 9, "data": 3}
    assert zones == {"zone-a": 5, "zone-b": 5, "zone-c": 5}


def test_existing_mode_patches_named_nodes() -> None:
    # issue 23 defect 4: existing mode patches no node at all (the node groups own labels and
    # taints; was: 15 NodePatches of named nodes); tests/unit/test_upstream_behaviour.py
    cap = _run("prod")
    assert cap.of_type(NODE) == []
    assert cap.of_type("kubernetes:core/v1:NodePatch") == []


def test_spec_capacity_totals() -> None:
    s = settings_for("prod")
    assert total_capacity(s.cluster) == (240, 960)
    assert len({n.zone for n in plan_nodes(s.cluster)}) == 3


def test_namespaces_restricted_and_injected() -> None:
    cap = _run("local")
    nss = cap.of_type("kubernetes:core/v1:Namespace")
    assert {n.inputs["metadata"]["name"] for n in nss} == {
        "claude-enhancer",
        "claude-enhancer-data",
        "claude-enhancer-monitoring",
    }
    for n in nss:
        lab = n.inputs["metadata"]["labels"]
        assert lab["pod-security.kubernetes.io/enforce"] == "restricted"
        assert lab["istio-injection"] == "enabled"


def test_quota_limitrange_priority_classes() -> None:
    cap = _run("prod")
    quotas = cap.of_type("kubernetes:core/v1:ResourceQuota")
    assert len(quotas) == 3
    app_q = next(q for q in quotas if q.inputs["metadata"]["namespace"] == "claude-enhancer")
    assert app_q.inputs["spec"]["hard"]["requests.cpu"].endswith("m")
    lrs = cap.of_type("kubernetes:core/v1:LimitRange")
    assert len(lrs) == 3
    maxes = {
        lr.inputs["metadata"]["namespace"]: lr.inputs["spec"]["limits"][0]["max"] for lr in lrs
    }
    # app: the app's 1950m/3814Mi limits and the injected istio-proxy's 2000m/1024Mi
    assert maxes["claude-enhancer"] == {"cpu": "2000m", "memory": "3814Mi"}
    # data: the CNPG instance container (4 CPU / 12Gi), derived from the same settings
    assert maxes["claude-enhancer-data"] == {"cpu": "4000m", "memory": "12288Mi"}
    pcs = {
        p.inputs["metadata"]["name"]: p.inputs["value"]
        for p in cap.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
    }
    assert pcs["ce-data-critical"] > pcs["ce-app-high"] > pcs["ce-batch-low"]


def test_default_deny_network_policy_per_namespace() -> None:
    cap = _run("local")
    nps = cap.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    by_ns: dict[str, dict[str, dict]] = {}
    for n in nps:
        by_ns.setdefault(n.inputs["metadata"]["namespace"], {})[n.inputs["metadata"]["name"]] = (
            n.inputs["spec"]
        )
    assert len(by_ns) == 3
    for ns, pols in by_ns.items():
        deny = pols["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, ns
        assert "allow-dns" in pols
        assert len(pols) > 2
    data = by_ns["claude-enhancer-data"]
    assert data["allow-app-to-postgres"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 5432}
    ]
    assert data["allow-app-to-redis"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_capacity_function() -> None:
    pool = capacity.PoolCapacity(nodes=9, node_cpu=16, node_memory_gi=64)
    ok = capacity.check_capacity(pool, capacity.blue_green_workloads([("api", 6)], 1000, 2048))
    assert ok.fits and ok.requested_cpu_m == 12 * 1100
    with pytest.raises(capacity.CapacityError, match="exceed the app pool"):
        capacity.check_capacity(pool, capacity.blue_green_workloads([("api", 100)], 1000, 2048))
    with pytest.raises(capacity.CapacityError, match="replicas must be >= 0"):
        capacity.requested([capacity.Workload("x", -1, 1, 1)])


def test_default_service_accounts_do_not_automount_tokens() -> None:
    """Every namespace the program creates gets its Kubernetes-made `default` SA patched."""
    cap = program_capture()
    namespaces = {n.inputs["metadata"]["name"] for n in cap.of_type("kubernetes:core/v1:Namespace")}
    patches = cap.of_type("kubernetes:core/v1:ServiceAccountPatch")
    assert {p.inputs["metadata"]["namespace"] for p in patches} == namespaces
    assert len(namespaces) == 4  # app, data, monitoring and the managed mesh root namespace (local)
    for p in patches:
        assert p.inputs["metadata"]["name"] == "default"
        assert p.inputs["automountServiceAccountToken"] is False
