"""The settings package's shape: no import circle with the cluster preflight, one config reader
on the lowest floor."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.unit.test_rollout_config import _imports

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after_import(module: str) -> set[str]:
    # a fresh interpreter: this one has imported everything already
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def test_settings_never_import_the_cluster_preflight() -> None:
    assert "components.preflight" not in _loaded_after_import("components.settings")
    assert "components.settings" in _loaded_after_import("components.preflight")
    # nor lazily, inside a function
    for f in [*ROOT.glob("components/settings.py"), *ROOT.glob("components/settings/*.py")]:
        assert "components.preflight" not in _imports(f), f.name


def test_the_lowest_floor_imports_nothing_of_ours() -> None:
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for f in (ROOT / "contract").glob("*.py"):
        assert not {m for m in _imports(f) if m.split(".")[0] in ours}, f.name


def test_one_config_reader() -> None:
    """settings and rollout/config.py read config objects through contract.configreader; no
    other module defines the reader's accessors again."""
    assert "contract.configreader" in _imports(ROOT / "rollout" / "config.py")
    assert "contract.configreader" in _imports(ROOT / "components" / "settings" / "read.py")
    accessors = {"get_int", "get_str", "get_bool", "get_obj", "get_list", "_number", "_bool"}
    for f in [*ROOT.glob("components/**/*.py"), *ROOT.glob("rollout/*.py")]:
        defined = {
            n.name for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.FunctionDef)
        }
        assert not defined & accessors, f"{f.relative_to(ROOT)} defines {defined & accessors}"
