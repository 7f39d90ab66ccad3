"""Violates exactly one rule: authorizationpolicy-no-allow-all (an ALLOW that re-opens the default deny)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "allow-everything",
    "security.istio.io/v1",
    "AuthorizationPolicy",
    {"action": "ALLOW", "rules": [{}]},
)
