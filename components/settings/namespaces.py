"""``claude-enhancer:namespaces``: the three namespaces the program manages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import Namespaces, SettingsError
from components.settings.read import NAME_RE, top


def parse_namespaces(raw: Mapping[str, Any]) -> Namespaces:
    o = top(raw, "namespaces", required=False)
    d = Namespaces()
    ns = Namespaces(
        app=o.get_str("app", d.app, pattern=NAME_RE),
        data=o.get_str("data", d.data, pattern=NAME_RE),
        monitoring=o.get_str("monitoring", d.monitoring, pattern=NAME_RE),
    )
    o.done()
    if len(set(ns.all())) != 3:
        raise SettingsError(f"{o.key}: app, data and monitoring namespaces must differ")
    return ns
