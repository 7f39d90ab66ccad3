"""Violates exactly one rule: istio-mtls-strict."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr("default", "security.istio.io/v1", "PeerAuthentication", {"mtls": {"mode": "PERMISSIVE"}})
