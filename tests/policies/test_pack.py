"""The pulumi-policy wrapping, driven in-process through the real analyzer servicer.

This exercises what the CLI does over gRPC: props arrive as a protobuf Struct
(secrets signature-wrapped, unknowns as sentinels), config via Configure.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from policy_fixtures import UNKNOWN_STRING, deployment
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies import pack
from policies.rules import ALL

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def secret(v: Any) -> dict:
    return {**SECRET_SIG, "value": v}


@pytest.fixture(autouse=True)
def _secret_deserializer(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy.policy as pm

    monkeypatch.setattr(pm, "deserialize_properties", pack.deserialize_keep_secrets)


def servicer(config: dict | None = None) -> _PolicyAnalyzerServicer:
    s = _PolicyAnalyzerServicer(
        pack.PACK_NAME,
        "0.1.0",
        pack.build_policies(EnforcementLevel.MANDATORY),
        EnforcementLevel.MANDATORY,
    )
    if config:
        req = proto.ConfigureAnalyzerRequest()
        for name, props in config.items():
            pc = proto.PolicyConfig(enforcementLevel=proto.MANDATORY)
            pc.properties.update(props)
            req.policyConfig[name].CopyFrom(pc)
        s.Configure(req, None)
    return s


def struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def analyze(rtype: str, props: dict, config: dict | None = None) -> list[tuple[str, str]]:
    req = proto.AnalyzeRequest(
        type=rtype, properties=struct(props), urn=f"urn:pulumi:s::p::{rtype}::x", name="x"
    )
    resp = servicer(config).Analyze(req, None)
    # advisory diagnostics (kubernetes-checkov-advisory) never block; these tests judge the blocking ones
    return [
        (d.policyName, d.message) for d in resp.diagnostics if d.enforcementLevel != proto.ADVISORY
    ]


def test_every_rule_is_wrapped_with_metadata() -> None:
    policies = pack.build_policies()
    assert [p.name for p in policies] == [m.RULE.name for m in ALL]
    assert len({p.name for p in policies}) == len(policies)
    for p, m in zip(policies, ALL, strict=True):
        assert isinstance(
            p, StackValidationPolicy if m.RULE.scope == "stack" else ResourceValidationPolicy
        )
        assert p.enforcement_level == pack.rule_level(m, EnforcementLevel.MANDATORY)
        assert p.enforcement_level == (
            EnforcementLevel.ADVISORY
            if m.RULE.default_level == "advisory"
            else EnforcementLevel.MANDATORY
        )
        assert p.remediation_steps and p.severity is not None and p.framework is not None
        assert m.RULE.severity in ("low", "medium", "high", "critical")
        assert m.RULE.frameworks and all(m.RULE.frameworks.values())
        for key, schema in m.RULE.config_schema.items():
            assert "default" in schema, (m.RULE.name, key)


def test_enforcement_level_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_POLICY_ENFORCEMENT", "advisory")
    assert {p.enforcement_level for p in pack.build_policies()} == {EnforcementLevel.ADVISORY}
    monkeypatch.setenv("CE_POLICY_ENFORCEMENT", "bogus")
    with pytest.raises(ValueError):
        pack.build_policies()


def test_analyze_compliant_deployment_has_no_diagnostics() -> None:
    assert analyze("kubernetes:apps/v1:Deployment", deployment()) == []


def test_analyze_reports_rule_name_and_message() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["hostNetwork"] = True
    diags = analyze("kubernetes:apps/v1:Deployment", d)
    by_name = {p.name: p for p in pack.build_policies()}
    assert diags == [
        (
            "pod-security-restricted",
            by_name["pod-security-restricted"].description
            + "\npod spec.hostNetwork must not be true",
        ),
        (
            "kubernetes-checkov",
            by_name["kubernetes-checkov"].description
            + "\nCKV_K8S_19: Containers should not share the host network namespace",
        ),
    ]


def test_unknowns_do_not_crash_or_downgrade() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING
    d["metadata"]["namespace"] = UNKNOWN_STRING
    assert analyze("kubernetes:apps/v1:Deployment", d) == []


def test_secret_wire_format_is_seen_as_secret() -> None:
    ok = {"metadata": {"name": "db"}, "stringData": {"password": secret("pw")}}
    assert analyze("kubernetes:core/v1:Secret", ok) == []
    bad = {"metadata": {"name": "db"}, "stringData": {"password": "pw"}}
    assert [n for n, _ in analyze("kubernetes:core/v1:Secret", bad)] == ["no-plaintext-secrets"]
    # Secret-wrapped values elsewhere are unwrapped for the other rules:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = secret(
        d["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert analyze("kubernetes:apps/v1:Deployment", d) == []


def test_without_patch_upstream_unwraps_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents why the patch exists: upstream Analyze loses secretness."""
    import pulumi_policy.policy as pm
    from pulumi_policy.deserialize import deserialize_properties

    monkeypatch.setattr(pm, "deserialize_properties", deserialize_properties)
    ok = {"metadata": {"name": "db"}, "stringData": {"password": secret("pw")}}
    assert [n for n, _ in analyze("kubernetes:core/v1:Secret", ok)] == ["no-plaintext-secrets"]


def test_config_reaches_rules() -> None:
    vs = {
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "app", "subset": "stable"}, "weight": 50},
                        {"destination": {"host": "app", "subset": "canary"}, "weight": 50},
                    ]
                }
            ]
        }
    }
    t = "kubernetes:networking.istio.io/v1:VirtualService"
    assert analyze(t, vs) == []
    diags = analyze(t, vs, {"rollout-phase-step": {"previousPhase": 1}})
    assert [n for n, _ in diags] == ["rollout-phase-step"]
    assert diags[0][1].endswith(
        "rollout phase jumps from 1 (5%) to 3 (50%); phases advance one step at a time "
        "(next allowed is 2); set allowSkip to override"
    )
    assert analyze(t, vs, {"rollout-phase-step": {"previousPhase": 1, "allowSkip": True}}) == []


def test_analyze_stack() -> None:
    res = proto.AnalyzerResource(
        type="kubernetes:apps/v1:Deployment",
        properties=struct(deployment()),
        urn="urn:pulumi:s::p::kubernetes:apps/v1:Deployment::app",
        name="app",
    )
    resp = servicer().AnalyzeStack(proto.AnalyzeStackRequest(resources=[res]), None)
    names = sorted(d.policyName for d in resp.diagnostics)
    assert names == [
        "default-deny-authorizationpolicy",
        "default-deny-networkpolicy",
        "pdb-for-deployments",
    ]
    assert all(d.enforcementLevel == proto.MANDATORY for d in resp.diagnostics)


def test_entry_point_over_grpc() -> None:
    """Start policies/__main__.py like the CLI does and talk to it over gRPC."""
    import subprocess
    import sys
    from pathlib import Path

    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-u", str(root / "policies" / "__main__.py"), "127.0.0.1:1"],
        cwd=root / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(
                __import__("google.protobuf.empty_pb2", fromlist=["Empty"]).Empty(), timeout=30
            )
            assert info.name == pack.PACK_NAME
            assert sorted(p.name for p in info.policies) == sorted(m.RULE.name for m in ALL)
            assert {p.name for p in info.policies if p.enforcementLevel != proto.MANDATORY} == {
                m.RULE.name for m in ALL if m.RULE.default_level == "advisory"
            }
            ok = {
                "metadata": {"name": "db", "namespace": "app"},
                "stringData": {"password": secret("pw")},
            }
            resp = stub.Analyze(
                proto.AnalyzeRequest(
                    type="kubernetes:core/v1:Secret",
                    properties=struct(ok),
                    urn="urn:pulumi:s::p::kubernetes:core/v1:Secret::db",
                    name="db",
                ),
                timeout=30,
            )
            assert list(resp.diagnostics) == []
            bad = {"metadata": {"name": "db", "namespace": "app"}, "stringData": {"password": "pw"}}
            resp = stub.Analyze(
                proto.AnalyzeRequest(
                    type="kubernetes:core/v1:Secret",
                    properties=struct(bad),
                    urn="urn:pulumi:s::p::kubernetes:core/v1:Secret::db",
                    name="db",
                ),
                timeout=30,
            )
            assert [d.policyName for d in resp.diagnostics] == ["no-plaintext-secrets"]
    finally:
        proc.kill()
        proc.wait(timeout=10)
