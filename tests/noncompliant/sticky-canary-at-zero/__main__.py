"""Violates exactly one rule: istio-virtualservice-weights (a cookie-sticky route keeps users on
canary while the weighted split gives canary 0 %: a half-done rollback)."""

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
                "name": "sticky-canary",
                "match": [{"headers": {"cookie": {"regex": "^(.*?;\\s*)?ce-track=canary(;.*)?$"}}}],
                "route": [{"destination": {"host": "api", "subset": "canary"}}],
            },
            {
                "name": "weighted",
                "route": [
                    {"destination": {"host": "api", "subset": "stable"}, "weight": 100},
                    {"destination": {"host": "api", "subset": "canary"}, "weight": 0},
                ],
            },
        ],
    },
)
