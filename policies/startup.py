"""The pack process's start-up, which is on the preview's path.

The engine starts the program only once the pack has printed its port and answered
``GetAnalyzerInfo`` and ``Configure`` (pkg/v3 engine/update.go: ``loadPolicyPlugins`` runs
before the program source is created), so every import here delays the whole preview.
Importing ``pulumi_policy`` imports the whole Pulumi SDK; two of its subpackages the pack
never touches, ``pulumi.automation`` (the Automation API) and ``pulumi.dynamic`` (dill), took
about 30 ms (CPU) of a ~230 ms start. They load on first use instead (``importlib.util.LazyLoader``:
the module object exists at once and runs its code when an attribute is first read).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: SDK subpackages ``pulumi/__init__.py`` imports that no rule nor pulumi_policy uses.
UNUSED_SDK_MODULES = frozenset({"pulumi.automation", "pulumi.dynamic"})


class _LoadOnFirstUse(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in UNUSED_SDK_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_unused_sdk_modules() -> None:
    """Install the lazy loading of :data:`UNUSED_SDK_MODULES` (before ``pulumi`` is imported)."""
    if not any(isinstance(f, _LoadOnFirstUse) for f in sys.meta_path):
        sys.meta_path.insert(0, _LoadOnFirstUse())
