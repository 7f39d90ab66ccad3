"""Violates exactly one rule: no-plaintext-secrets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi_kubernetes as k8s  # noqa: E402
import _common as c  # noqa: E402

c.baseline()
k8s.core.v1.ConfigMap('cfg', metadata=c.meta('cfg'), data={'DB_PASSWORD': 'hunter2-plaintext'}, opts=c.opts())
