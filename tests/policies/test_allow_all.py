"""authorizationpolicy-no-allow-all and networkpolicy-no-allow-all: rule specs (the analyzer cases
in test_analyzer_cases.py drive the same rules through the gRPC service)."""

from __future__ import annotations

import pytest
from policy_fixtures import UNKNOWN_ARRAY, UNKNOWN_STRING

from policies.lib.props import plain
from policies.rules import authorization_policy_no_allow_all as authz
from policies.rules import network_policy_no_allow_all as netpol

AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
GW = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


def ap(spec: object) -> dict:
    return plain({"metadata": {"name": "p", "namespace": "claude-enhancer"}, "spec": spec})


@pytest.mark.parametrize(
    "spec",
    [
        {},  # the default deny itself
        {"action": "ALLOW"},  # ALLOW without rules matches nothing
        {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": [GW]}}]}]},
        {"action": "DENY", "rules": [{}]},
        {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["claude-enhancer"]}}]}]},
        {
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/istio-system/sa/gw*"]}}]}
            ],
        },
    ],
)
def test_authz_compliant(spec: object) -> None:
    assert authz.check(AP, ap(spec), {}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"rules": [{}]}, ["ALLOW rules[0] matches every request"]),
        ({"rules": [{"from": [{"source": {}}]}]}, ["ALLOW rules[0].from[0] admits any source"]),
        (
            {"rules": [{"from": [{"source": {"principals": ["*"]}}]}]},
            ['ALLOW rules[0].from[0] principal "*" admits any authenticated principal'],
        ),
        (
            {"rules": [{"from": [{"source": {"namespaces": ["*"]}}]}]},
            ['ALLOW rules[0].from[0] namespace "*" admits any namespace'],
        ),
        (
            {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/*"]}}]}]},
            [
                'ALLOW rules[0].from[0] principal "cluster.local/ns/*" admits every principal matching "cluster.local/ns/*"'
            ],
        ),
        (
            {"rules": [{"when": [{"key": "request.headers[x]", "values": ["1"]}]}]},
            ["ALLOW rules[0] has no from: any source may call"],
        ),
    ],
)
def test_authz_violations(spec: object, expected: list[str]) -> None:
    assert authz.check(AP, ap(spec), {}) == expected


def test_authz_root_namespace_from_config_and_unknowns() -> None:
    spec = {"rules": [{"from": [{"source": {"namespaces": ["mesh-root"]}}]}]}
    assert authz.check(AP, ap(spec), {}) == []
    assert authz.check(AP, ap(spec), {"meshRootNamespace": "mesh-root"}) == [
        'ALLOW rules[0].from[0] namespace "mesh-root" admits every principal in the mesh root namespace'
    ]
    assert authz.check(AP, ap({"rules": UNKNOWN_ARRAY}), {}) == []
    assert authz.check(AP, ap({"action": UNKNOWN_STRING, "rules": [{}]}), {}) == []
    assert authz.check("kubernetes:core/v1:ConfigMap", ap({"rules": [{}]}), {}) == []


def np(spec: dict) -> dict:
    return plain(
        {
            "metadata": {"name": "n", "namespace": "claude-enhancer"},
            "spec": {"podSelector": {}, **spec},
        }
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"policyTypes": ["Ingress", "Egress"]},
        {"ingress": [{"from": [{"podSelector": {}}]}]},
        {"egress": [{"ports": [{"port": 443}]}]},
        {
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                    "ports": [{"port": 443}],
                }
            ]
        },
        {
            "ingress": [
                {
                    "from": [
                        {"ipBlock": {"cidr": "10.0.0.0/8"}},
                        {"ipBlock": {"cidr": "172.16.0.0/12"}},
                    ]
                }
            ]
        },
        {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"x": "y"}}}]}]},
        {
            "ingress": [
                {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "gw"}}}]}
            ]
        },
    ],
)
def test_netpol_compliant(spec: dict) -> None:
    assert netpol.check(NP, np(spec), {}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"ingress": [{}]}, ["spec.ingress[0] allows all sources on all ports"]),
        ({"egress": [{"to": []}]}, ["spec.egress[0] allows all destinations on all ports"]),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]},
            ["spec.ingress[0] allows all sources on all ports"],
        ),
        (
            {"ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}]},
            ["spec.ingress[0] allows all sources on all ports"],
        ),
        # the internet minus the private ranges is still (nearly) every address, on every port
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]},
            ["spec.ingress[0] allows all sources on all ports"],
        ),
        (
            {
                "egress": [
                    {
                        "to": [
                            {"ipBlock": {"cidr": "0.0.0.0/1"}},
                            {"ipBlock": {"cidr": "128.0.0.0/1"}},
                        ]
                    }
                ]
            },
            ["spec.egress[0] allows all destinations on all ports"],
        ),
        (
            {
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "UDP"}]}
                ]
            },
            ["spec.egress[0] allows all destinations on all ports"],
        ),
        (
            {
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": "::/0"}}],
                        "ports": [{"port": 1, "endPort": 65535}],
                    }
                ]
            },
            ["spec.egress[0] allows all destinations on all ports"],
        ),
        (
            {
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": "team", "operator": "NotIn", "values": ["x"]}
                                    ]
                                }
                            }
                        ]
                    }
                ]
            },
            ["spec.ingress[0] allows all sources on all ports"],
        ),
    ],
)
def test_netpol_violations(spec: dict, expected: list[str]) -> None:
    assert netpol.check(NP, np(spec), {}) == expected
    assert netpol.check(NP + "Patch", np(spec), {}) == expected  # a patch that adds it too


def test_netpol_unknowns() -> None:
    assert netpol.check(NP, np({"ingress": UNKNOWN_ARRAY}), {}) == []
    assert netpol.check(NP, np({"ingress": [{"from": UNKNOWN_ARRAY}]}), {}) == []
