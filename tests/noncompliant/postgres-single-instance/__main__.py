"""Violates exactly one rule: ha-postgres-instances."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr("pg", "postgresql.cnpg.io/v1", "Cluster", {"instances": 1, "storage": {"size": "1Gi"}})
