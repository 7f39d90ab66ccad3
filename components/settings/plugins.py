"""The plugin preflight: the resource plugins these settings need must be in
``$PULUMI_HOME/plugins`` at the versions the installed Python SDKs pin (importlib, filesystem)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from components.settings.model import PROJECT, Settings, SettingsError

#: Pulumi resource plugin name -> Python SDK package that pins its version.
PLUGIN_SDKS: dict[str, str] = {"vault": "pulumi_vault", "random": "pulumi_random"}


@dataclass(frozen=True)
class PluginNeed:
    """A resource plugin the stack's settings require (outside the toolchain)."""

    setting: str
    """The setting that requires it, e.g. ``claude-enhancer:vault.enabled=true``."""
    plugin: str
    """Plugin name (vault | random)."""
    fix: str
    """The setting that avoids it."""


def required_plugins(s: Settings) -> list[PluginNeed]:
    """Pure: resource plugins these settings need besides kubernetes / pulumi-python."""
    needs: list[PluginNeed] = []
    if s.vault.enabled and s.vault.provider == "pulumi-vault":
        needs.append(
            PluginNeed(
                f"{PROJECT}:vault.enabled=true",
                "vault",
                f"{PROJECT}:vault.provider=hvac (or {PROJECT}:vault.enabled=false)",
            )
        )
    if s.passwords.generator == "random":
        needs.append(
            PluginNeed(
                f"{PROJECT}:passwords.generator=random",
                "random",
                f"{PROJECT}:passwords.generator=builtin",
            )
        )
    return needs


def sdk_plugin_version(plugin: str) -> str:
    """The plugin version the installed Python SDK pins (its ``pulumi-plugin.json``)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(PLUGIN_SDKS[plugin])  # does not import the (huge) SDK
    if spec is None or not spec.submodule_search_locations:
        raise SettingsError(f"{PROJECT}: the Python SDK {PLUGIN_SDKS[plugin]} is not installed")
    meta = Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json"
    return str(json.loads(meta.read_text())["version"])


def check_plugins(
    s: Settings, pulumi_home: str | None, versions: Mapping[str, str] | None = None
) -> None:
    """Raise ``SettingsError`` when a needed resource plugin is not in ``$PULUMI_HOME/plugins``.

    Nothing is checked without ``pulumi_home`` (the engine's own lookup applies then).
    ``versions`` maps plugin name -> version (default: read from the installed SDKs).
    """
    if not pulumi_home:
        return
    from pathlib import Path

    problems: list[str] = []
    for need in required_plugins(s):
        version = versions[need.plugin] if versions is not None else sdk_plugin_version(need.plugin)
        d = Path(pulumi_home) / "plugins" / f"resource-{need.plugin}-v{version}"
        if not d.is_dir() or d.with_name(d.name + ".partial").exists():
            problems.append(
                f"{need.setting} needs the Pulumi resource plugin {need.plugin} v{version}, "
                f"which is not installed (no {d}; see docs/toolchain-notes.md: not buildable here); "
                f"set {need.fix} for this stack"
            )
    if problems:
        raise SettingsError("\n".join(problems))
