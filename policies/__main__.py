"""Entry point the Pulumi CLI runs for ``--policy-pack policies``.

The repo root goes on sys.path so the pack shares ``rollout/phases.py``
(PHASE_WEIGHTS, check_transition) with the program instead of re-declaring it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from pulumi_policy import PolicyPack  # noqa: E402

from policies.pack import (  # noqa: E402
    PACK_NAME,
    build_policies,
    install_fast_analyzer,
    install_secret_preserving_deserializer,
)

install_secret_preserving_deserializer()
install_fast_analyzer()

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),  # type: ignore[arg-type]
    description="Claude Enhancer 5.1 guardrails: pod security, images, budgets, Istio mTLS/TLS/routing, "
    "default-deny, RBAC, secrets, HA, Vault and phased rollout.",
    display_name="Claude Enhancer policies",
)
