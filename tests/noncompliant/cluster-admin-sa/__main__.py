"""Violates exactly one rule: rbac-no-cluster-admin-serviceaccount."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c
import pulumi_kubernetes as k8s

c.baseline()
k8s.rbac.v1.ClusterRoleBinding(
    "sa-admin",
    metadata={"name": "nc-sa-admin"},
    role_ref={
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    },
    subjects=[{"kind": "ServiceAccount", "name": "nc", "namespace": c.NS}],
    opts=c.opts(),
)
