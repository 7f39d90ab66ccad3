"""What keeps the pack's share of a preview small (issue 25: preview with the pack / without <= 1.3).

The engine calls ``Remediate`` and then ``Analyze`` for every resource, one after the other, on
the preview's path, and starts the program only once the pack has answered ``Configure``
(bench/preview_pack_bench.py, BENCHMARKS.md). These tests guard the work the pack no longer does
there; the verdicts themselves are the other tests' business.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pulumi_policy.policy as pm
import pytest
from google.protobuf import struct_pb2
from policy_fixtures import deployment
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import Policy, _PolicyAnalyzerServicer

from policies import pack
from policies.lib.props import UNKNOWN, plain

ROOT = Path(pack.__file__).resolve().parents[1]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pack's patches as __main__ installs them, undone after the test."""
    for name in ("deserialize_properties", "json_format", "unknown_checking_proxy"):
        monkeypatch.setattr(pm, name, getattr(pm, name))
    for name in ("Remediate", "Configure"):
        monkeypatch.setattr(_PolicyAnalyzerServicer, name, getattr(_PolicyAnalyzerServicer, name))
    pack.install_secret_preserving_deserializer()
    pack.install_fast_analyzer()


class _CountingJson:
    """``json_format`` that counts the resource conversions (what upstream's Remediate spent its time on)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # upstream name
        self.calls += 1
        return self.inner.MessageToDict(message, *args, **kwargs)


def _servicer(levels: dict[str, int] | None = None) -> _PolicyAnalyzerServicer:
    policies: list[Policy] = [*pack.build_policies(EnforcementLevel.MANDATORY)]
    s = _PolicyAnalyzerServicer(pack.PACK_NAME, "0.1.0", policies, EnforcementLevel.MANDATORY)
    req = proto.ConfigureAnalyzerRequest()
    for name, level in (levels or {}).items():
        req.policyConfig[name].CopyFrom(proto.PolicyConfig(enforcementLevel=level))  # type: ignore[arg-type]
    s.Configure(req, None)
    return s


def _fresh_python(script: str) -> list[str]:
    """What ``script`` prints, run in a new interpreter (what is imported at start is the point)."""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


def _request() -> Any:
    props = struct_pb2.Struct()
    props.update(deployment())
    return proto.AnalyzeRequest(
        type="kubernetes:apps/v1:Deployment",
        properties=props,
        urn="urn:pulumi:s::p::t::app",
        name="app",
    )


def test_remediate_converts_nothing_unless_a_policy_remediates(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _CountingJson(getattr(pm, "json_format"))  # noqa: B009 - not re-exported
    monkeypatch.setattr(pm, "json_format", counting)
    assert _servicer().Remediate(_request(), None) == proto.RemediateResponse()
    assert (
        counting.calls == 0
    )  # upstream converted the whole resource here (fails without the patch)

    # a policy configured "remediate": upstream's Remediate runs (and reports it cannot remediate)
    response = _servicer({"pod-security-restricted": proto.REMEDIATE}).Remediate(_request(), None)
    assert [n.policy_name for n in response.not_applicable] == ["pod-security-restricted"]
    assert counting.calls > 0


def test_rules_read_the_props_plain_without_a_second_walk(installed: None) -> None:
    props = {
        "metadata": {"name": "x"},
        "spec": {"replicas": 2.0, "host": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},
    }
    given = getattr(pm, "unknown_checking_proxy")(props)  # noqa: B009 - not re-exported
    assert isinstance(given, dict)  # not upstream's proxy, which plain() would walk again
    assert (
        given
        == plain(props)
        == {"metadata": {"name": "x"}, "spec": {"replicas": 2, "host": UNKNOWN}}
    )
    assert pack.plain_props(given) is given


@pytest.mark.parametrize(
    ("disabled", "loaded"),
    [((), "1"), (("kubernetes-checkov", "kubernetes-checkov-advisory"), "0")],
)
def test_checkov_loads_after_configure_not_at_start(disabled: tuple[str, ...], loaded: str) -> None:
    """The pack's start is on the preview's path; checkov's registry is loaded in a thread once
    ``Configure`` returned (the engine then starts the program), not by the first resources,
    and not at all when the pack's config disables both checkov rules."""
    script = textwrap.dedent(
        f"""
        import sys, threading
        from pulumi_policy import EnforcementLevel
        from pulumi_policy.policy import _PolicyAnalyzerServicer
        from pulumi.runtime import proto
        from policies import pack
        from policies.lib import checkov_k8s
        pack.install_secret_preserving_deserializer()
        pack.install_fast_analyzer()
        s = _PolicyAnalyzerServicer(pack.PACK_NAME, "0.1.0", pack.build_policies(), EnforcementLevel.MANDATORY)
        s.GetAnalyzerInfo(None, None)
        before = any(m.startswith("checkov") for m in sys.modules)
        req = proto.ConfigureAnalyzerRequest()
        for name in {list(disabled)!r}:
            req.policyConfig[name].CopyFrom(proto.PolicyConfig(enforcementLevel=proto.DISABLED))
        s.Configure(req, None)
        [t.join() for t in threading.enumerate() if t.name == "warm-up"]
        print(before, checkov_k8s._registry.cache_info().currsize)
        """
    )
    assert _fresh_python(script) == ["False", loaded]


def test_pack_start_leaves_the_unused_sdk_modules_unloaded_until_used() -> None:
    """The Automation API and dynamic providers (most of the SDK's import time after grpc) load
    only if something reads them; reading them still works."""
    script = textwrap.dedent(
        """
        import sys
        from policies.startup import UNUSED_SDK_MODULES, defer_unused_sdk_modules
        defer_unused_sdk_modules()
        import pulumi_policy
        from policies import pack
        loaded = sorted(m for m in sys.modules if m.startswith(tuple(f"{u}." for u in UNUSED_SDK_MODULES)))
        from pulumi.automation import LocalWorkspace
        from pulumi.dynamic import ResourceProvider
        print(loaded, LocalWorkspace.__name__, ResourceProvider.__name__)
        """
    )
    assert _fresh_python(script) == ["[]", "LocalWorkspace", "ResourceProvider"]
