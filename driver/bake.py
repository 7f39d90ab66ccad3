"""Pure bake-time logic (inputs: audit entries, config, clock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: audit ``result`` value of an entry that changed the deployed phase
APPLIED = "applied"


def parse_ts(value: str) -> datetime:
    """Parse an audit timestamp (ISO 8601, UTC, ``Z`` suffix allowed)."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_ts(dt: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix, second precision plus millis."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def phase_entered_at(entries: Iterable[Mapping[str, Any]], phase: int) -> datetime | None:
    """When the stack entered ``phase``, from the audit log.

    That is the timestamp of the *last* applied entry, if it moved the stack to
    ``phase``. If the last applied change went elsewhere (the phase was changed
    outside the driver), the entry time is unknown: ``None``.
    """
    last: Mapping[str, Any] | None = None
    for e in entries:
        if e.get("result") == APPLIED:
            last = e
    if last is None or last.get("to_phase") != phase:
        return None
    return parse_ts(str(last["ts"]))


@dataclass(frozen=True)
class BakeStatus:
    phase: int
    required_s: float
    entered_at: datetime | None
    elapsed_s: float | None
    remaining_s: float | None  # None = unknown entry time

    @property
    def done(self) -> bool:
        if self.required_s <= 0:
            return True
        return self.remaining_s is not None and self.remaining_s <= 0

    def describe(self) -> str:
        if self.required_s <= 0:
            return f"phase {self.phase}: no bake time"
        if self.entered_at is None:
            return (
                f"phase {self.phase}: bake {self.required_s / 60:g} min, entry time unknown "
                "(no applied audit entry for this phase)"
            )
        assert self.remaining_s is not None and self.elapsed_s is not None
        if self.remaining_s <= 0:
            return (
                f"phase {self.phase}: baked {self.elapsed_s:.0f} s "
                f">= {self.required_s:.0f} s (entered {format_ts(self.entered_at)})"
            )
        return (
            f"phase {self.phase}: {self.remaining_s:.0f} s of {self.required_s:.0f} s bake time "
            f"remaining (entered {format_ts(self.entered_at)})"
        )


def bake_status(
    phase: int, entered_at: datetime | None, bake_seconds: float, now: datetime
) -> BakeStatus:
    """Bake progress; ``bake_seconds`` comes from ``RolloutConfig.bake_seconds``."""
    required = max(0.0, bake_seconds)
    if entered_at is None:
        return BakeStatus(phase, required, None, None, None)
    elapsed = (now - entered_at).total_seconds()
    return BakeStatus(phase, required, entered_at, elapsed, required - elapsed)


def paused_since(
    entries: Iterable[Mapping[str, Any]], phase: int, since: datetime | None
) -> str | None:
    """Timestamp of the pause in force at ``phase`` (entries after ``since``, the phase's
    entry time), else None: a ``continued`` entry lifts it."""
    paused: str | None = None
    for e in entries:
        if since is not None and parse_ts(str(e["ts"])) < since:
            continue
        if e.get("result") == "paused" and e.get("from_phase") == phase:
            paused = str(e["ts"])
        elif e.get("result") == "continued" and e.get("phase") == phase:
            paused = None
    return paused
