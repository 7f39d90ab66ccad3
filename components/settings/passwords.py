"""``claude-enhancer:passwords``: which password generator the stack uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import GENERATORS, PasswordSettings, SettingsError
from components.settings.read import top


def parse_passwords(raw: Mapping[str, Any]) -> PasswordSettings:
    o = top(raw, "passwords", required=False)
    generator = o.get_str("generator", "random")
    if generator not in GENERATORS:
        raise SettingsError(
            f"{o.key_of('generator')}: must be 'random' or 'builtin', got {generator!r}"
        )
    o.done()
    return PasswordSettings(generator)
