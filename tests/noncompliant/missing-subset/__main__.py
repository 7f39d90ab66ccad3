"""Violates exactly one rule: istio-virtualservice-subsets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "api",
    "networking.istio.io/v1",
    "DestinationRule",
    {
        "host": "api",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [{"name": "stable", "labels": {"track": "stable"}}],
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
                    {"destination": {"host": "api", "subset": "stable"}, "weight": 95},
                    {"destination": {"host": "api", "subset": "canary"}, "weight": 5},
                ]
            }
        ],
    },
)
