"""Violates exactly one rule: no-plaintext-secrets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

c.baseline(
    mutate=lambda s: s["template"]["spec"]["containers"][0].update(
        env=[{"name": "API_TOKEN", "value": "tok-9f8e7d6c5b4a"}]
    )
)
