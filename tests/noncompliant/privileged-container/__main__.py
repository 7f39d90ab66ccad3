"""Violates exactly one rule: pod-security-restricted."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline(
    mutate=lambda s: s["template"]["spec"]["containers"][0]["securityContext"].update(
        privileged=True
    )
)
