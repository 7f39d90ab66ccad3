"""BENCHMARKS.md is shared by several benchmarks: each owns one marked section."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def merge_section(existing: str, section: str, name: str) -> str:
    """Replace the section marked ``name`` in ``existing`` (or append it); others are kept."""
    begin, end = markers(name)
    if begin in existing and end in existing:
        head, rest = existing.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + section.rstrip("\n") + tail if tail.strip() else head + section
    if not existing.strip():
        return "# Benchmarks\n\n" + section
    return existing.rstrip("\n") + "\n\n" + section


def median_max(xs: Sequence[float]) -> tuple[float, float]:
    return statistics.median(xs), max(xs)
