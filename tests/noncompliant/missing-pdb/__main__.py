"""Violates exactly one rule: pdb-for-deployments."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline(pdb=False)
