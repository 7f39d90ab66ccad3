"""Mesh component: mTLS, authz, edge TLS, routing."""

from __future__ import annotations

import pytest

from components.mesh import virtual_service_spec
from rollout import phases as rollout
from tests.unit.conftest import program_capture, settings_for


def vs(phase: int) -> dict:
    (v,) = program_capture("local", phase).crs("VirtualService")
    return v.inputs


def test_peer_authentication_strict_mesh_wide() -> None:
    (pa,) = program_capture().crs("PeerAuthentication")
    assert pa.inputs["metadata"] == {"name": "default", "namespace": "istio-system"}
    assert pa.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    assert pa.inputs["apiVersion"] == "security.istio.io/v1beta1"


def test_authorization_default_deny_and_explicit_allows() -> None:
    aps = program_capture().crs("AuthorizationPolicy")
    denies = [a for a in aps if a.inputs["metadata"]["name"] == "deny-all"]
    assert {a.inputs["metadata"]["namespace"] for a in denies} == {
        "claude-enhancer",
        "claude-enhancer-data",
        "claude-enhancer-monitoring",
    }
    assert all(not a.inputs.get("spec") for a in denies)  # empty spec == deny everything
    allows = [a for a in aps if a.inputs["metadata"]["name"] != "deny-all"]
    assert allows
    for a in allows:
        spec = a.inputs["spec"]
        assert spec["action"] == "ALLOW"
        for rule in spec["rules"]:
            for src in rule["from"]:
                assert all(p.startswith("cluster.local/ns/") for p in src["source"]["principals"])
    gw = next(a for a in allows if a.inputs["metadata"]["name"] == "allow-gateway-to-api")
    assert gw.inputs["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
    ]


def test_destination_rule_subsets_mtls_outlier_cookie() -> None:
    drs = {
        d.inputs["metadata"]["name"]: d.inputs["spec"]
        for d in program_capture().crs("DestinationRule")
    }
    api = drs["api"]
    assert api["host"] == "api.claude-enhancer.svc.cluster.local"
    assert api["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert api["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] == 5
    assert "httpCookie" in api["trafficPolicy"]["loadBalancer"]["consistentHash"]
    assert {s["name"]: s["labels"] for s in api["subsets"]} == {
        "stable": {"track": "stable"},
        "canary": {"track": "canary"},
    }
    assert all(d["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL" for d in drs.values())


def test_gateway_tls13_and_redirect() -> None:
    (gw,) = program_capture().crs("Gateway")
    servers = {s["port"]["protocol"]: s for s in gw.inputs["spec"]["servers"]}
    assert servers["HTTPS"]["tls"]["minProtocolVersion"] == "TLSV1_3"
    assert servers["HTTPS"]["tls"]["mode"] == "SIMPLE"
    assert servers["HTTP"]["tls"] == {"httpsRedirect": True}


@pytest.mark.parametrize(("phase", "canary"), [(0, 0), (1, 5), (2, 20), (3, 50), (4, 100)])
def test_virtual_service_weights_per_phase(phase: int, canary: int) -> None:
    spec = vs(phase)["spec"]
    weighted = next(h for h in spec["http"] if h["name"] == "weighted")
    weights = {r["destination"]["subset"]: r["weight"] for r in weighted["route"]}
    assert weights == {"stable": 100 - canary, "canary": canary}
    assert sum(weights.values()) == 100
    sticky = {h["name"] for h in spec["http"] if h["name"].startswith("sticky-")}
    expected = set()
    if canary > 0:
        expected.add("sticky-canary")
    if canary < 100:
        expected.add("sticky-stable")
    assert sticky == expected


def test_virtual_service_hsts_and_cookie() -> None:
    spec = vs(2)["spec"]
    for h in spec["http"]:
        assert h["headers"]["response"]["set"]["Strict-Transport-Security"].startswith(
            "max-age=31536000"
        )
    weighted = next(h for h in spec["http"] if h["name"] == "weighted")
    cookies = [r["headers"]["response"]["add"]["Set-Cookie"] for r in weighted["route"]]
    assert cookies[0].startswith("ce-track=stable") and cookies[1].startswith("ce-track=canary")
    assert all("Secure" in c and "HttpOnly" in c for c in cookies)
    sticky = next(h for h in spec["http"] if h["name"] == "sticky-canary")
    assert "ce-track=canary" in sticky["match"][0]["headers"]["cookie"]["regex"]
    assert spec["gateways"] == ["claude-enhancer-gateway", "mesh"]


def test_vs_spec_pure() -> None:
    s = settings_for()
    spec = virtual_service_spec(rollout.Weights(stable=95, canary=5), s.mesh, "ns", "gw")
    assert spec["hosts"][1] == "api.ns.svc.cluster.local"
