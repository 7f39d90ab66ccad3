"""Violates exactly one rule: ha-redis-cluster (a standalone Redis has no replica and no failover)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "cache",
    "redis.redis.opstreelabs.in/v1beta2",
    "Redis",
    {
        "kubernetesConfig": {
            "image": "quay.io/opstree/redis:v7.0.15",
            "imagePullPolicy": "IfNotPresent",
        }
    },
)
