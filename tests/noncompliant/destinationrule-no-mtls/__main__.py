"""Violates exactly one rule: istio-destinationrule-mtls."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "api",
    "networking.istio.io/v1",
    "DestinationRule",
    {"host": "api", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
)
