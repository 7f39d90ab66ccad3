"""A phase change alters ONLY the VirtualService and the canary Deployments' replicas."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components import program
from tests.unit.conftest import program_capture, run_mocked, settings_for

SEQUENCE = [0, 1, 2, 3, 4, 0]
VS = "kubernetes:networking.istio.io/v1beta1:VirtualService::virtual-service"
#: the only Deployment whose scale follows the phase (the VirtualService splits api traffic)
CANARY = {"kubernetes:apps/v1:Deployment::api-green"}


def _diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_paths(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff_paths(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [path]


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_phase_sequence_changes_only_vs_and_canary_scale(stack: str) -> None:
    runs = [program_capture(stack, p).resources for p in SEQUENCE]
    for (pa, a), (pb, b) in zip(zip(SEQUENCE, runs), zip(SEQUENCE[1:], runs[1:])):
        assert set(a) == set(b), f"{pa}->{pb}: resources added/removed"
        changed = {k for k in a if a[k].inputs != b[k].inputs}
        assert VS in changed, f"{pa}->{pb}: VirtualService did not change"
        assert changed <= {VS} | CANARY, (
            f"{pa}->{pb}: unexpected changes {sorted(changed - {VS} - CANARY)}"
        )
        assert len(changed) <= 3, f"{pa}->{pb}: {len(changed)} resources change"
        for k in changed & CANARY:
            assert _diff_paths(a[k].inputs, b[k].inputs) == ["spec.replicas"], k
        vs_diff = _diff_paths(a[VS].inputs, b[VS].inputs)
        assert vs_diff and all(p.startswith("spec.http") for p in vs_diff), vs_diff


def test_same_phase_is_deterministic() -> None:
    a = program_capture("local", 2).resources
    b = program.run  # re-run through a fresh mock to prove determinism
    fresh = run_mocked(lambda: b(settings_for("local", 2, None))).resources
    assert {k: v.inputs for k, v in a.items()} == {k: v.inputs for k, v in fresh.items()}


@pytest.mark.parametrize("phase", [0, 1, 2, 3, 4])
def test_exports(phase: int, monkeypatch: pytest.MonkeyPatch) -> None:
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda k, v: exported.__setitem__(k, v))
    run_mocked(lambda: program.run(settings_for("local", phase, None)))
    weights = [0, 5, 20, 50, 100]
    assert exported["rolloutPhase"] == phase
    assert exported["canaryWeight"] == weights[phase]
    assert exported["stableWeight"] == 100 - weights[phase]
    assert exported["namespace"] == "claude-enhancer"
    assert exported["virtualServiceName"] == "claude-enhancer"
