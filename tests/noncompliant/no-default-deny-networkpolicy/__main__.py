"""Violates exactly one rule: default-deny-networkpolicy."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline(network_policy=False)
