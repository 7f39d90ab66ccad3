"""checkov's Kubernetes checks, run in process on each resource's manifest.

checkov (PyPI ``checkov``, pinned in requirements.txt) keeps ~110 Kubernetes checks
(``CKV_K8S_*``: pod security, RBAC escalate/bind/impersonate and wildcards, PodTemplates,
Services, Ingresses...). The pack runs each check class directly on the manifest the engine
sends (no files, no checkov runner), so a preview pays only the checks of the resource's
kind. Pod templates that checkov cannot see (inside custom resources) are handed to it
as a Pod.

Every check is mandatory unless ``policies/exceptions.yaml`` (the pack's one reviewed
exceptions file) lowers it to ``advisory`` or ``disabled``, each with its reason.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from .props import UNKNOWN, contains_unknown, reveal
from .reviewed import section
from .rule import k8s_type, pod_templates, workload_kind

LEVELS = ("mandatory", "advisory", "disabled")


@dataclass(frozen=True)
class Exception_:
    level: str
    reason: str


@cache
def exceptions() -> dict[str, Exception_]:
    """check id -> (level, reason) from the reviewed file; a missing reason is an error."""
    out: dict[str, Exception_] = {}
    for check_id, entry in section("checkov").items():
        level, reason = str(entry.get("level", "")), str(entry.get("reason", "")).strip()
        if level not in LEVELS or not reason:
            raise ValueError(f"exceptions.yaml: {check_id} needs a level ({'/'.join(LEVELS)}) and a reason")
        out[str(check_id)] = Exception_(level, reason)
    return out


def level_of(check_id: str) -> str:
    entry = exceptions().get(check_id)
    return entry.level if entry else "mandatory"


_REGISTRY_LOCK = threading.Lock()


@cache
def _registry() -> Any:
    # the pack's warm-up thread and the first Analyze may both get here: one fills the registry
    with _REGISTRY_LOCK:
        from checkov.kubernetes.checks.resource import k8s
        from checkov.kubernetes.checks.resource.registry import registry

        for name in k8s.__all__:  # each module registers its check on import
            importlib.import_module(f"checkov.kubernetes.checks.resource.k8s.{name}")
        return registry


def warm_up() -> None:
    """Import checkov's Kubernetes checks and the reviewed exceptions (lib/rule.py ``Rule.warm_up``)."""
    _registry()
    exceptions()


def _revealed(value: Any) -> Any:
    """The manifest as checkov reads it: secrets unwrapped (checkov never sees the value's secrecy)."""
    value = reveal(value)
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed(v) for v in value]
    return value


def manifests(resource_type: str, props: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(message prefix, manifest) checkov should judge for a resource; nothing for non-Kubernetes types.

    A workload ``*Patch`` is judged by the hand rules on what it sets (checkov would read every
    field it leaves out as missing); other patches (RBAC, Services...) carry whole lists.
    Values unknown during preview skip the resource: the ``pulumi up`` run judges them.
    """
    parsed = k8s_type(resource_type)
    if parsed is None or not isinstance(props, dict) or contains_unknown(props):
        return
    group, version, kind, patch = parsed
    if patch and (workload_kind(resource_type) is not None or kind == "PodTemplate"):
        return
    api = version if group == "core" else f"{group}/{version}"
    manifest = _revealed(props)
    manifest.setdefault("metadata", {})
    manifest["apiVersion"], manifest["kind"] = api, kind
    if kind in _registry().checks:
        manifest["metadata"].setdefault("name", "x")
        yield "", manifest
        return
    for template in pod_templates(resource_type, props):
        if template.partial:
            continue
        meta = _revealed(template.metadata) if isinstance(template.metadata, dict) else {}
        meta = {**meta, "name": meta.get("name") or "x"}
        if "namespace" in manifest["metadata"]:
            meta.setdefault("namespace", manifest["metadata"]["namespace"])
        yield template.where, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _revealed(template.spec)}


_LAST: list[Any] = [None, None, None]  # (resource_type, props, result): both checkov rules read one run


def failures(resource_type: str, props: Any) -> list[tuple[str, str, str]]:
    """(check id, level, message) of every failed checkov check on the resource."""
    if _LAST[0] == resource_type and _LAST[1] is props:
        return list(_LAST[2])
    result = _failures(resource_type, props)
    _LAST[:] = [resource_type, props, result]
    return list(result)


def _failures(resource_type: str, props: Any) -> list[tuple[str, str, str]]:
    from checkov.common.models.enums import CheckResult

    registry = _registry()
    out: list[tuple[str, str, str]] = []
    for prefix, manifest in manifests(resource_type, props):
        kind = manifest["kind"]
        for check in registry.get_checks(kind):
            level = level_of(check.id)
            if level == "disabled":
                continue
            try:
                result = check.scan_entity_conf(manifest, kind)
            except Exception:  # a check that cannot read a shape does not judge it (checkov does the same)
                continue
            if isinstance(result, tuple):
                result = result[0]
            if result == CheckResult.FAILED:
                out.append((check.id, level, f"{prefix}{check.id}: {check.name}"))
    return sorted(set(out))


__all__ = ["UNKNOWN", "exceptions", "failures", "level_of", "manifests", "warm_up"]
