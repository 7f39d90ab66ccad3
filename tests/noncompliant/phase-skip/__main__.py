"""Violates exactly one rule: rollout-phase-step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

# Run with the pack config in policy-config.json (previousPhase: 1): 5% -> 50% skips phase 2.
c.baseline()
c.cr(
    "api",
    "networking.istio.io/v1",
    "DestinationRule",
    {
        "host": "api",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [
            {"name": "stable", "labels": {"track": "stable"}},
            {"name": "canary", "labels": {"track": "canary"}},
        ],
    },
)
c.cr(
    "api-vs",
    "networking.istio.io/v1",
    "VirtualService",
    {
        "hosts": ["api"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "api", "subset": "stable"}, "weight": 50},
                    {"destination": {"host": "api", "subset": "canary"}, "weight": 50},
                ]
            }
        ],
    },
)
