"""``policies/exceptions.yaml``: the pack's one reviewed list of exceptions, each with its reason.

Sections: ``checkov`` (check id -> level), ``sidecarPortExclusions`` and ``legacyTokenSecrets``
(items the hand rules admit). An entry without a reason is an error, so the pack refuses to
start rather than run with an unexplained exception.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

EXCEPTIONS_FILE = Path(__file__).resolve().parent.parent / "exceptions.yaml"


@cache
def reviewed() -> dict[str, Any]:
    doc = yaml.safe_load(EXCEPTIONS_FILE.read_text(encoding="utf-8")) or {}
    for section, entries in doc.items():
        items = entries.values() if isinstance(entries, dict) else entries
        for entry in items:
            if not isinstance(entry, dict) or not str(entry.get("reason", "")).strip():
                raise ValueError(f"{EXCEPTIONS_FILE.name}: an entry of {section} has no reason")
    return dict(doc)


def section(name: str) -> Any:
    return reviewed().get(name) or ([] if name != "checkov" else {})
