"""Violates exactly one rule: automount-serviceaccount-token."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline(mutate=lambda s: s["template"]["spec"].update(automountServiceAccountToken=True))
