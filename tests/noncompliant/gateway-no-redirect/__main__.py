"""Violates exactly one rule: istio-gateway-tls."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "edge",
    "networking.istio.io/v1",
    "Gateway",
    {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    },
)
