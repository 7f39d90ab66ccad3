"""The green api's replicas follow the *configured* phaseWeights, not the built-in table.

Regression: ``canary_replicas`` read the built-in weights (5 % at phase 1) even when a stack
set ``rollout.phaseWeights``; with 50 % of the traffic at phase 1 the green api kept 1 pod.
"""

from __future__ import annotations

from components import program, settings
from tests.unit.conftest import load_stack_raw, run_mocked, set_obj, with_secrets

DEP = "kubernetes:apps/v1:Deployment"


def _green_api_replicas(weights: list[int], phase: int) -> int:
    raw = with_secrets(load_stack_raw("local"))
    raw = set_obj(raw, "rollout", "phaseWeights", weights)
    raw = set_obj(raw, "rollout", "phase", phase)
    raw = set_obj(raw, "app", "services", {"api": {"replicas": 4, "maxReplicas": 4}})
    s = settings.load_settings(raw, {}, None, stack="local")
    cap = run_mocked(lambda: program.run(s))
    (green,) = [d for d in cap.of_type(DEP) if d.inputs["metadata"]["name"] == "api-green"]
    return int(green.inputs["spec"]["replicas"])


def test_green_api_scales_with_configured_weights() -> None:
    # 60 % of the traffic at phase 1 on 4 replicas needs 3 green pods (5 % would need 1)
    # (issue 23: was 50 % -> 2; the canary's floor is now 2 pods, which 50 % no longer tells apart)
    assert _green_api_replicas([0, 60, 70, 80, 100], 1) == 3
    # the built-in table gives the 2-pod floor at 5 % (issue 23 defect 10; was 1)
    assert _green_api_replicas([0, 5, 20, 50, 100], 1) == 2
