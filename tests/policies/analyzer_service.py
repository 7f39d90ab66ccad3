"""The policy pack served exactly as the Pulumi CLI gets it, driven over gRPC.

The CLI asks our language host (toolchain/pulumi-language-python, ``RunPlugin``) to run the
pack directory: ``python -u policies <engine address>``. The pack prints its port and
serves pulumi's Analyzer service. The engine then calls ``Configure`` (every policy's
config, with the schema defaults filled in, and its enforcement level), ``Analyze`` for
each resource and ``AnalyzeStack`` once, sending properties as a protobuf ``Struct``:
numbers as doubles, Pulumi secrets wrapped with the secret signature, unknowns as
sentinel strings. This module does the same, so a test sees what a preview would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from policies.rules import ALL, BY_NAME

ROOT = Path(__file__).resolve().parents[2]
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
_LEVELS = {"advisory": proto.ADVISORY, "mandatory": proto.MANDATORY, "disabled": proto.DISABLED}


def secret(value: Any) -> dict[str, Any]:
    """A Pulumi secret in the engine's wire format."""
    return {**SECRET_SIG, "value": value}


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    message: str  # the rule's own message (the policy description prefix removed)
    urn: str
    level: int


def _struct(d: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(d))
    return s


def _urn(rtype: str, name: str) -> str:
    return f"urn:pulumi:test::claude-enhancer::{rtype}::{name}"


class PackService:
    """One running pack process and a gRPC stub to it."""

    def __init__(self) -> None:
        # Exactly the language host's RunPlugin command line (cwd = the program directory).
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(ROOT / "policies"), "127.0.0.1:1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.isdigit():
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            self._proc.kill()
            raise RuntimeError(f"policy pack did not print its port: {line!r}\n{err[-4000:]}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.info = self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)

    def close(self) -> None:
        self._channel.close()
        self._proc.kill()
        self._proc.wait(timeout=10)

    def configure(self, config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Configure every policy like the CLI: schema defaults overlaid with ``config``."""
        req = proto.ConfigureAnalyzerRequest()
        for module in ALL:
            rule = module.RULE
            given = dict((config or {}).get(rule.name, {}))
            level = _LEVELS[str(given.pop("enforcementLevel", "mandatory"))]
            pc = proto.PolicyConfig(enforcementLevel=level)
            pc.properties.update({**rule.defaults(), **given})
            req.policyConfig[rule.name].CopyFrom(pc)
        unknown = set(config or {}) - set(BY_NAME)
        assert not unknown, f"config for unknown rules {unknown}"
        self.stub.Configure(req, timeout=60)

    def _diagnostics(self, diags: Iterable[Any]) -> list[Diagnostic]:
        out = []
        for d in diags:
            rule = BY_NAME.get(d.policyName)
            message = d.message
            if rule is not None and message.startswith(rule.RULE.description + "\n"):
                message = message[len(rule.RULE.description) + 1 :]
            out.append(Diagnostic(d.policyName, message, d.urn, d.enforcementLevel))
        return out

    def analyze(self, rtype: str, props: Mapping[str, Any], name: str = "x") -> list[Diagnostic]:
        req = proto.AnalyzeRequest(
            type=rtype, properties=_struct(props), urn=_urn(rtype, name), name=name
        )
        return self._diagnostics(self.stub.Analyze(req, timeout=60).diagnostics)

    def analyze_stack(
        self, resources: Iterable[tuple[str, str, Mapping[str, Any]]]
    ) -> list[Diagnostic]:
        items = [
            proto.AnalyzerResource(type=t, name=n, urn=_urn(t, n), properties=_struct(p))
            for t, n, p in resources
        ]
        return self._diagnostics(
            self.stub.AnalyzeStack(
                proto.AnalyzeStackRequest(resources=items), timeout=60
            ).diagnostics
        )

    def preview(
        self,
        resources: Iterable[tuple[str, str, Mapping[str, Any]]],
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Diagnostic]:
        """What a preview runs: Configure, Analyze for each resource, then AnalyzeStack."""
        resources = list(resources)
        self.configure(config)
        out: list[Diagnostic] = []
        for t, n, p in resources:
            out += self.analyze(t, p, n)
        return out + self.analyze_stack(resources)
