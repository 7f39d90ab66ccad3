"""The running program's source of config: the raw values the Pulumi engine passed,
the previous phase from the stack's state, and the plugin preflight."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from components.settings.load import load_settings
from components.settings.model import KNOWN_KEYS, PROJECT, VAULT_TOKEN_KEY, Settings, SettingsError
from components.settings.plugins import check_plugins


def raw_from_pulumi(keys: tuple[str, ...] = KNOWN_KEYS) -> dict[str, Any]:
    """Collect the raw config values the engine passed to this program."""
    from pulumi.runtime.config import get_config

    raw: dict[str, Any] = {}
    for k in keys:
        v = get_config(f"{PROJECT}:{k}")
        if v is not None:
            raw[f"{PROJECT}:{k}"] = v
    tok = get_config(VAULT_TOKEN_KEY)
    if tok is not None:
        raw[VAULT_TOKEN_KEY] = tok
    # unknown project keys are an error too: look at everything we were given
    from pulumi.runtime.config import CONFIG, get_config_env

    for k in {**get_config_env(), **CONFIG.get()}:
        if k.startswith(f"{PROJECT}:") and k not in raw:
            raw[k] = get_config(k)
    return raw


def from_pulumi(
    env: Mapping[str, str] | None = None,
    previous_phase_reader: Callable[[], int | None] | None = None,
) -> Settings:
    """Read the running stack's config and validate it (and check the resource plugins it
    needs; the live cluster is checked by :func:`components.preflight.from_pulumi`)."""
    import os

    import pulumi

    from components import state

    reader = previous_phase_reader or state.previous_phase
    raw = raw_from_pulumi()
    try:
        previous = reader()
    except state.StateError as e:
        raise SettingsError(f"{PROJECT}:rollout.phase: {e}") from None
    env = dict(os.environ) if env is None else env
    s = load_settings(raw, env, previous, stack=pulumi.get_stack())
    # With automatic plugin acquisition on (a user-installed CLI), Pulumi fetches what is missing.
    if (
        not state._under_mocks()
        and env.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION") == "true"
    ):
        check_plugins(s, env.get("PULUMI_HOME"))
    return s
