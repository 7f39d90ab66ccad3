"""Violates exactly one rule: ha-redis-cluster."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline()
c.cr(
    "redis",
    "redis.redis.opstreelabs.in/v1beta2",
    "RedisCluster",
    {
        "clusterSize": 3,
        "redisFollower": {"replicas": 0},
        "kubernetesConfig": {"image": "quay.io/opstree/redis:v7.0.15"},
    },
)
