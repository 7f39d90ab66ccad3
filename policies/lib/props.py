"""Safe access to resource properties as the policy engine hands them over.

What pulumi-policy 1.21 (Python) gives a policy, read from its source:

* ``args.props`` is a read-only ``Mapping`` proxy (``pulumi_policy.proxy._DictProxy``),
  not a ``dict``; lists are ``_ListProxy`` ``Sequence`` objects.
* A value that is unknown during preview is a sentinel string (e.g.
  ``"04da6b54-80e4-46f7-96ec-b56ff0331ba9"`` for a string); *reading* it through
  the proxy raises ``UnknownValueError``, which the SDK turns into an advisory
  "can't run policy during preview" diagnostic.
* Secrets arrive from the engine wrapped (``{"4dabf...": "1b47...", "value": v}``)
  but ``Analyze``/``AnalyzeStack`` unwrap them (``deserialize_properties`` without
  ``proxy_secrets``), so a policy cannot tell a secret from plaintext. The pack's
  entry point therefore installs :func:`deserialize_keep_secrets`, which turns
  them into :class:`pulumi_policy.Secret` leaves instead.

:func:`plain` converts all of that into plain ``dict``/``list`` values with
:data:`UNKNOWN` for unknowns and ``Secret`` leaves kept; :func:`dig` walks it and
never raises. Rules only ever see the output of :func:`plain`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Secret

# Sentinels from pulumi_policy.proxy (kept literal so tests need no engine).
UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)

SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d"
SPECIAL_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class _Unknown:
    """Singleton marking a value not known until the update runs."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    """True for :data:`UNKNOWN`, a raw sentinel string, or a secret wrapping one."""
    if isinstance(value, Secret):
        return is_unknown(value.value)
    return value is UNKNOWN or (isinstance(value, str) and value in UNKNOWN_SENTINELS)


def contains_unknown(value: Any) -> bool:
    """Any value inside (secrets unwrapped) is unknown during preview."""
    value = reveal(value)
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def is_secret(value: Any) -> bool:
    return isinstance(value, Secret)


def reveal(value: Any) -> Any:
    """Strip any number of Secret wrappers."""
    while isinstance(value, Secret):
        value = value.value
    return value


def _raw_mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    # pulumi_policy proxies expose their unchecked target under "__target"; plain
    # dicts do not have it. Reading it avoids UnknownValueError on sentinels.
    if not isinstance(value, dict):
        try:
            target = value["__target"]
        except (KeyError, TypeError):
            return value
        if isinstance(target, Mapping):
            return target
    return value


def _raw_sequence(value: Sequence[Any]) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        try:
            target = value["__target"]  # type: ignore[call-overload]
        except (KeyError, TypeError, IndexError):
            return value
        if isinstance(target, Sequence):
            return target
    return value


def plain(value: Any) -> Any:
    """Deep-convert engine props into dict/list/scalars, UNKNOWN and Secret leaves."""
    if isinstance(value, Secret):
        return Secret(plain(value.value))
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, float) and value.is_integer():
        # protobuf Struct carries every number as a double: show 2, not 2.0
        return int(value)
    if value is UNKNOWN or value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        raw = _raw_mapping(value)
        if raw.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return Secret(plain(raw.get("value")))
        return {str(k): plain(v) for k, v in raw.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [plain(v) for v in _raw_sequence(value)]
    return value


def dig(obj: Any, *path: str | int, default: Any = None, keep_secret: bool = False) -> Any:
    """Walk ``path`` through dicts/lists; missing -> ``default``; unknown -> UNKNOWN.

    Secret wrappers on the way (and on the result, unless ``keep_secret``) are
    stripped so that rules see ordinary values.
    """
    cur = obj
    for key in path:
        cur = reveal(cur)
        if is_unknown(cur):
            return UNKNOWN
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return default
            cur = cur[key]
        else:
            if not isinstance(cur, dict) or key not in cur:
                return default
            cur = cur[key]
    if not keep_secret:
        cur = reveal(cur)
    if is_unknown(cur):
        return UNKNOWN
    if cur is None:
        return default
    return cur


def first(props: Any, *names: str, default: Any = None) -> Any:
    """First present property among ``names`` (camelCase / snake_case aliases)."""
    for name in names:
        value = dig(props, name)
        if value is not None:
            return value
    return default


def as_list(value: Any) -> list[Any]:
    """A list value, or [] when missing, unknown or of the wrong shape."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    """An integer from int/float/numeric string; None for missing/unknown/other."""
    value = reveal(value)
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    return None


def as_bool(value: Any) -> bool | None:
    value = reveal(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def meta_name(props: Any) -> str:
    """metadata.name, or "<unnamed>" (unknown names are "<unknown>")."""
    name = dig(props, "metadata", "name")
    if name is UNKNOWN:
        return "<unknown>"
    return str(name) if name else "<unnamed>"


def meta_namespace(props: Any, default: str = "default") -> str:
    ns = dig(props, "metadata", "namespace")
    if ns is UNKNOWN:
        return "<unknown>"
    return str(ns) if ns else default


# --- Kubernetes quantities ---------------------------------------------------

_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DEC = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QTY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMGTPE]i|[numkKMGTPE]?)\s*$")


def parse_quantity(value: Any) -> float | None:
    """Kubernetes quantity ("500m", "2", "3Gi", 1.5) as a float of base units."""
    value = reveal(value)
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    m = _QTY.match(value)
    if not m:
        return None
    number, suffix = float(m.group(1)), m.group(2)
    if suffix in _BIN:
        return number * _BIN[suffix]
    return number * _DEC[suffix]
