"""default-deny-networkpolicy and default-deny-authorizationpolicy (stack rules)."""

from __future__ import annotations

import pytest
from policy_fixtures import DEPLOYMENT, UNKNOWN_OBJECT, UNKNOWN_STRING, deployment

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import default_deny_authorization_policy as authz
from policies.rules import default_deny_network_policy as netpol

NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
CNPG = "kubernetes:postgresql.cnpg.io/v1:Cluster"


def res(t: str, props: dict) -> StackResource:
    return StackResource(
        t,
        props.get("metadata", {}).get("name", "x") if isinstance(props, dict) else "x",
        plain(props),
    )


def np(ns: str, spec: object = None) -> StackResource:
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} if spec is None else spec
    return res(NP, {"metadata": {"name": "default-deny", "namespace": ns}, "spec": spec})


def ap(ns: str, spec: object = None) -> StackResource:
    return res(
        AP,
        {"metadata": {"name": "deny-all", "namespace": ns}, "spec": {} if spec is None else spec},
    )


WORKLOADS = [
    res(DEPLOYMENT, deployment(namespace="claude-enhancer")),
    res(CNPG, {"metadata": {"name": "pg", "namespace": "data"}, "spec": {"instances": 3}}),
]


def test_compliant() -> None:
    stack = [*WORKLOADS, np("claude-enhancer"), np("data"), ap("claude-enhancer"), ap("data")]
    assert netpol.check(stack, {}) == []
    assert authz.check(stack, {}) == []


def test_missing_everywhere() -> None:
    assert netpol.check(WORKLOADS, {}) == [
        'namespace "claude-enhancer" has workloads but no default-deny NetworkPolicy',
        'namespace "data" has workloads but no default-deny NetworkPolicy',
    ]
    assert authz.check(WORKLOADS, {}) == [
        'namespace "claude-enhancer" has workloads but no default-deny AuthorizationPolicy',
        'namespace "data" has workloads but no default-deny AuthorizationPolicy',
    ]


NO_DENY = 'namespace "claude-enhancer" has workloads but no default-deny NetworkPolicy'


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress", "Egress"]},
            NO_DENY,
        ),
        (
            {"podSelector": {}, "policyTypes": ["Ingress"]},
            'namespace "claude-enhancer" has no default-deny NetworkPolicy for Egress',
        ),
        (
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
            'namespace "claude-enhancer" has no default-deny NetworkPolicy for Ingress',
        ),
        ({"policyTypes": ["Ingress", "Egress"]}, NO_DENY),
    ],
)
def test_not_default_deny_networkpolicy(spec: dict, expected: str) -> None:
    stack = [WORKLOADS[0], np("claude-enhancer", spec)]
    assert netpol.check(stack, {}) == [expected]


def test_default_deny_as_one_policy_per_direction() -> None:
    """The Kubernetes docs' "default deny all ingress" + "default deny all egress" policies."""
    stack = [
        WORKLOADS[0],
        np("claude-enhancer", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        np("claude-enhancer", {"podSelector": {}, "policyTypes": ["Egress"]}),
    ]
    assert netpol.check(stack, {}) == []


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["x"]}}]}]},
        {"rules": [{}]},  # allow-all
        {"selector": {"matchLabels": {"app": "x"}}},
    ],
)
def test_not_deny_all_authorizationpolicy(spec: dict) -> None:
    stack = [WORKLOADS[0], ap("claude-enhancer", spec)]
    assert authz.check(stack, {}) == [
        'namespace "claude-enhancer" has workloads but no default-deny AuthorizationPolicy'
    ]


def test_action_allow_without_rules_is_deny_all() -> None:
    assert authz.check([WORKLOADS[0], ap("claude-enhancer", {"action": "ALLOW"})], {}) == []


def test_exempt_namespaces() -> None:
    assert netpol.check(WORKLOADS, {"exemptNamespaces": ["claude-enhancer", "data"]}) == []
    sys_ns = [res(DEPLOYMENT, deployment(namespace="kube-system"))]
    assert netpol.check(sys_ns, {}) == []
    assert authz.check(sys_ns, {}) == []


def test_unknown_is_safe() -> None:
    assert netpol.check([WORKLOADS[0], np("claude-enhancer", UNKNOWN_OBJECT)], {}) == []
    assert netpol.check([WORKLOADS[0], np(UNKNOWN_STRING)], {}) == []
    assert authz.check([WORKLOADS[0], ap("claude-enhancer", UNKNOWN_OBJECT)], {}) == []
    assert authz.check([WORKLOADS[0], ap("claude-enhancer", {"rules": UNKNOWN_OBJECT})], {}) == []
    unknown_ns = res(
        DEPLOYMENT, {**deployment(), "metadata": {"name": "a", "namespace": UNKNOWN_STRING}}
    )
    assert netpol.check([unknown_ns], {}) == []
    assert netpol.check([StackResource(DEPLOYMENT, "d", {})], {}) == [
        'namespace "default" has workloads but no default-deny NetworkPolicy'
    ]
    assert netpol.check([], {}) == []
