"""Violates exactly one rule: rbac-no-wildcards."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c
import pulumi_kubernetes as k8s

c.baseline()
k8s.rbac.v1.Role(
    "wild",
    metadata=c.meta("wild"),
    rules=[{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}],
    opts=c.opts(),
)
