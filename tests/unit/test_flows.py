"""The flow table (components/flows.py) is the one home of the program's in-cluster flows: the
AuthorizationPolicies and the NetworkPolicies are both read from it, so a port kept out of the
sidecar is open to its intended clients only (issue 23, the wire check's open flows)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components import cluster, flows, mesh
from tests.unit.conftest import ROOT, settings_for

STACKS = ("local", "prod")


def _nps(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    s = settings_for(stack)
    return [
        (ns, name, spec)
        for ns, items in cluster.network_policies(
            s.namespaces, s.mesh.root_namespace, s.data, s.mesh.dataplane
        ).items()
        for name, spec in items
    ]


def _aps(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    s = settings_for(stack)
    return mesh.authorization_policies(s.namespaces, s.mesh, s.data.clients)


def _excluded_ports() -> set[int]:
    doc = yaml.safe_load((ROOT / "policies" / "exceptions.yaml").read_text())
    return {p for e in doc["sidecarPortExclusions"] for p in e["ports"]}


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_reaches_the_app_only_on_istios_merged_metrics_port(stack: str) -> None:
    """Istio's scrape path under STRICT is the agent's 15020 (samples/addons/README.md,
    architecture/networking/multi-port-metrics-merging.md); an ALLOW of Prometheus on the app's
    8080 admits a plaintext scrape STRICT refuses anyway (the obsolete allow-prometheus-metrics)."""
    s = settings_for(stack)
    prom = f"cluster.local/ns/{s.namespaces.monitoring}/sa/prometheus"
    app_allows = [
        name
        for ns, name, spec in _aps(stack)
        if ns == s.namespaces.app
        for r in spec.get("rules", [])
        for f in r.get("from", [])
        if prom in f["source"].get("principals", [])
    ]
    assert app_allows == []
    from_monitoring = {
        p["port"]
        for ns, _, spec in _nps(stack)
        if ns == s.namespaces.app
        for r in spec.get("ingress", [])
        if any(
            (peer.get("namespaceSelector") or {})
            .get("matchLabels", {})
            .get("kubernetes.io/metadata.name")
            == s.namespaces.monitoring
            for peer in r["from"]
        )
        for p in r["ports"]
    }
    assert from_monitoring == {flows.MERGED_METRICS_PORT}


@pytest.mark.parametrize("stack", STACKS)
def test_every_allow_has_the_networkpolicy_of_the_same_row(stack: str) -> None:
    """Both layers come from one row: same namespace, name, pods and ports."""
    nps = {(ns, name): spec for ns, name, spec in _nps(stack)}
    for ns, name, ap in _aps(stack):
        if not ap:
            continue  # deny-all
        np_ = nps.get((ns, name))
        assert np_ is not None, f"{ns}/{name}: no NetworkPolicy"
        assert np_["podSelector"] == ap.get("selector", {}), name
        ap_ports = [int(p) for r in ap["rules"] for t in r["to"] for p in t["operation"]["ports"]]
        np_ports = [p["port"] for r in np_["ingress"] for p in r["ports"] if p["protocol"] == "TCP"]
        assert np_ports == ap_ports, name


@pytest.mark.parametrize("stack", STACKS)
def test_ports_kept_out_of_the_sidecar_are_not_open_to_a_whole_namespace(stack: str) -> None:
    """The NetworkPolicy is the only guard of an excluded port: no ingress rule may admit every
    port (the data namespace's old allow-same-namespace), and a rule opening an excluded port
    names its clients' pods (or an operator's own namespace), never every pod of its namespace
    (the wire check, test_mesh_wire.py, judges who exactly gets through)."""
    excluded = _excluded_ports()
    for ns, name, spec in _nps(stack):
        for r in spec.get("ingress", []):
            assert r.get("ports"), f"{ns}/{name} admits every port"
            opened = {p["port"] for p in r["ports"]} & excluded
            assert not opened or all(
                peer.get("podSelector") or "namespaceSelector" in peer for peer in r["from"]
            ), f"{ns}/{name}: a peer admitting every pod of its namespace on {opened}"


def test_ambient_pods_reach_their_peers_hbone_port_both_ways() -> None:
    """Under ambient, ztunnel carries every flow as HBONE to 15008 of the destination pod, so
    the flow table's app ports never appear on the wire: the app namespace's pods must be let
    out to the data namespace's 15008 (before the table only same-namespace egress was open)."""
    s = settings_for("prod")
    nps = cluster.network_policies(s.namespaces, s.mesh.root_namespace, s.data, "ambient")
    (hbone,) = [spec for name, spec in nps[s.namespaces.app] if name == "allow-hbone"]
    data_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": s.namespaces.data}}
    }
    port = [{"protocol": "TCP", "port": 15008}]
    assert any(data_peer in r["to"] and r["ports"] == port for r in hbone.get("egress", []))
    assert any(data_peer in r["from"] and r["ports"] == port for r in hbone["ingress"])
