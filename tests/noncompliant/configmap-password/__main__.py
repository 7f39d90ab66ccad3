"""Violates exactly one rule: no-plaintext-secrets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c
import pulumi_kubernetes as k8s

c.baseline()
k8s.core.v1.ConfigMap(
    "cfg", metadata=c.meta("cfg"), data={"DB_PASSWORD": "hunter2-plaintext"}, opts=c.opts()
)
