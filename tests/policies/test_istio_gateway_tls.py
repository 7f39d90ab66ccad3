from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_OBJECT, UNKNOWN_STRING

from policies.lib.props import plain
from policies.rules import istio_gateway_tls as rule

T = "kubernetes:networking.istio.io/v1:Gateway"

HTTPS = {
    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
    "hosts": ["*"],
    "tls": {"mode": "SIMPLE", "credentialName": "edge-cert", "minProtocolVersion": "TLSV1_3"},
}
HTTP = {
    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
    "hosts": ["*"],
    "tls": {"httpsRedirect": True},
}


def gw(*servers: object) -> dict:
    return plain(
        {
            "metadata": {"name": "edge"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
        }
    )


def test_compliant() -> None:
    assert rule.check(T, gw(HTTPS, HTTP), {}) == []
    assert rule.check("kubernetes:networking.istio.io/v1beta1:Gateway", gw(HTTPS, HTTP), {}) == []


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (
            {
                **HTTPS,
                "tls": {"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_2"},
            },
            ['server[0] ("https"): tls.minProtocolVersion is TLSV1_2; must be TLSV1_3'],
        ),
        (
            {**HTTPS, "tls": {"mode": "SIMPLE", "credentialName": "c"}},
            ['server[0] ("https"): tls.minProtocolVersion is unset; must be TLSV1_3'],
        ),
        (
            {**HTTP, "tls": {"httpsRedirect": False}},
            ['server[0] ("http"): HTTP server must set tls.httpsRedirect true'],
        ),
        (
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
            ['server[0] ("http"): HTTP server must set tls.httpsRedirect true'],
        ),
    ],
)
def test_violations(server: dict, expected: list[str]) -> None:
    assert rule.check(T, gw(server), {}) == expected


def test_passthrough_and_config() -> None:
    passthrough = {
        "port": {"number": 443, "name": "tls", "protocol": "TLS"},
        "hosts": ["*"],
        "tls": {"mode": "PASSTHROUGH"},
    }
    assert rule.check(T, gw(passthrough), {}) == []
    tls12 = {
        **HTTPS,
        "tls": {"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_2"},
    }
    assert rule.check(T, gw(tls12), {"minProtocolVersion": "TLSV1_2"}) == []


def test_unknown_and_missing() -> None:
    assert rule.check(T, gw({"port": UNKNOWN_OBJECT}), {}) == []
    assert rule.check(T, gw({**HTTPS, "tls": UNKNOWN_OBJECT}), {}) == []
    assert (
        rule.check(
            T, gw({**HTTPS, "tls": {"mode": "SIMPLE", "minProtocolVersion": UNKNOWN_STRING}}), {}
        )
        == []
    )
    assert rule.check(T, plain({"spec": {"servers": UNKNOWN_STRING}}), {}) == []
    assert rule.check(T, {}, {}) == []
