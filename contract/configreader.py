"""Read a JSON object of stack config with accessors that name the full key in every error.

The one reader of config objects: ``components.settings`` (every section) and
``rollout.config`` (``claude-enhancer:rollout``) both use it, each with its own error type
(``SettingsError``, ``RolloutConfigError``), so callers keep catching what they caught. Values
set with ``pulumi config set --path`` may arrive as strings: integers, numbers and booleans are
read from strings too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: default of a required value: reading it when absent is an error.
REQUIRED: Any = object()

#: builds the caller's exception from the full message.
ErrorType = Callable[[str], Exception]


def decode(raw: Any) -> Any:
    """A raw config value as the engine passes it (a JSON string) decoded; other strings and
    already-decoded values are returned as they are."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def number(value: Any, key: str, error: ErrorType) -> float:
    """``value`` as a float (a string too, never a boolean)."""
    if isinstance(value, bool):
        raise error(f"{key}: must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise error(f"{key}: must be a number, got {value!r}") from None


def boolean(value: Any, key: str, error: ErrorType) -> bool:
    """``value`` as a bool (``"true"``/``"false"`` in any case too)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise error(f"{key}: must be true or false, got {value!r}")
    return value


class ConfigObject:
    """A JSON object read from config with key-path aware accessors.

    ``key`` is the object's full key (``claude-enhancer:data.postgres``); every accessor marks
    its name used, so :meth:`done` can reject the keys nobody read (typos).
    """

    def __init__(self, key: str, data: Mapping[str, Any], error: ErrorType) -> None:
        self.key = key
        self.data = data
        self.error = error
        self.used: set[str] = set()

    @classmethod
    def from_raw(cls, key: str, raw: Any, error: ErrorType) -> ConfigObject:
        """The object under ``key`` from its raw value (a JSON string or a mapping; None is
        empty)."""
        value = {} if raw is None else decode(raw)
        if not isinstance(value, Mapping):
            raise error(f"{key}: must be an object, got {value!r}")
        return cls(key, value, error)

    def key_of(self, name: str) -> str:
        """The full key of the member ``name``."""
        return f"{self.key}.{name}"

    def fail(self, name: str, message: str) -> Exception:
        """The caller's error about member ``name`` (``name`` empty: the object itself)."""
        return self.error(f"{self.key_of(name)}: {message}" if name else f"{self.key}: {message}")

    def get(self, name: str, default: Any = REQUIRED) -> Any:
        """The raw member ``name``, or ``default`` when absent."""
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is REQUIRED:
            raise self.fail(name, "required value is missing")
        return default

    def get_int(
        self, name: str, default: Any = REQUIRED, lo: int | None = None, hi: int | None = None
    ) -> int:
        v = self.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v.strip()):
                v = int(v)
            else:
                raise self.fail(name, f"must be an integer, got {v!r}")
        if lo is not None and v < lo:
            raise self.fail(name, f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise self.fail(name, f"must be <= {hi}, got {v}")
        return int(v)

    def get_number(self, name: str, default: Any = REQUIRED) -> float:
        return number(self.get(name, default), self.key_of(name), self.error)

    def get_str(
        self, name: str, default: Any = REQUIRED, pattern: re.Pattern[str] | None = None
    ) -> str:
        v = self.get(name, default)
        if not isinstance(v, str) or not v:
            raise self.fail(name, f"must be a non-empty string, got {v!r}")
        if pattern is not None and not pattern.fullmatch(v):
            raise self.fail(name, f"malformed value {v!r}")
        return v

    def get_bool(self, name: str, default: Any = REQUIRED) -> bool:
        return boolean(self.get(name, default), self.key_of(name), self.error)

    def get_obj(self, name: str, default: Any = REQUIRED) -> ConfigObject:
        v = self.get(name, default)
        if not isinstance(v, Mapping):
            raise self.fail(name, f"must be an object, got {v!r}")
        return ConfigObject(self.key_of(name), v, self.error)

    def get_list(self, name: str, default: Any = REQUIRED) -> list[Any]:
        v = self.get(name, default)
        if not isinstance(v, list):
            raise self.fail(name, f"must be a list, got {v!r}")
        return v

    def reject_unknown(self, known: Iterable[str]) -> None:
        """Reject members outside ``known`` (the first, sorted, is named)."""
        names = list(known)
        unknown = sorted(set(self.data) - set(names))
        if unknown:
            raise self.fail(str(unknown[0]), f"unknown setting (known: {', '.join(names)})")

    def done(self) -> None:
        """Reject keys nobody read (typos)."""
        self.reject_unknown(sorted(self.used))
