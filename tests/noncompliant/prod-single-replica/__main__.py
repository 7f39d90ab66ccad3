"""Violates exactly one rule: prod-min-replicas."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

# Run with the pack config in policy-config.json (environment: prod).
c.baseline(deployment=c.deployment_spec(replicas=1))
