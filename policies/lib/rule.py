"""Rule metadata shared by every module under ``policies/rules``.

A rule module exposes:

* ``RULE``: a :class:`Rule` (name, description, severity, frameworks, remediation,
  config schema with defaults, scope ``"resource"`` or ``"stack"``).
* ``check``: for resource rules ``check(resource_type, props, config) -> list[str]``;
  for stack rules ``check(resources, config) -> list[str]`` where ``resources``
  is a list of :class:`StackResource`.

Messages are exact and deterministic (sorted where several objects are involved).
``props`` are plain values (see :func:`policies.lib.props.plain`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Severity = Literal["low", "medium", "high", "critical"]
Scope = Literal["resource", "stack"]

#: Kubernetes workload kinds (Pulumi type tokens) that carry a pod template.
WORKLOAD_TYPES: dict[str, str] = {
    "kubernetes:apps/v1:Deployment": "Deployment",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:apps/v1:DaemonSet": "DaemonSet",
    "kubernetes:apps/v1:ReplicaSet": "ReplicaSet",
    "kubernetes:batch/v1:Job": "Job",
    "kubernetes:batch/v1:CronJob": "CronJob",
    "kubernetes:core/v1:Pod": "Pod",
    "kubernetes:core/v1:ReplicationController": "ReplicationController",
}

#: API groups each workload kind was ever served from (older versions still run pods).
_WORKLOAD_GROUPS: dict[str, tuple[str, ...]] = {
    "Deployment": ("apps", "extensions"),
    "StatefulSet": ("apps",),
    "DaemonSet": ("apps", "extensions"),
    "ReplicaSet": ("apps", "extensions"),
    "Job": ("batch",),
    "CronJob": ("batch",),
    "Pod": ("core",),
    "ReplicationController": ("core",),
}

#: pulumi-kubernetes names the server-side-apply patch of a kind "<Kind>Patch".
PATCH_SUFFIX = "Patch"


def k8s_type(resource_type: str) -> tuple[str, str, str, bool] | None:
    """(group, version, kind, is_patch) of a ``kubernetes:<group>/<version>:<Kind>[Patch]`` token."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, _, version = parts[1].rpartition("/")
    kind = parts[2]
    patch = kind.endswith(PATCH_SUFFIX) and len(kind) > len(PATCH_SUFFIX)
    return group, version, kind[: -len(PATCH_SUFFIX)] if patch else kind, patch


def is_patch(resource_type: str) -> bool:
    """A pulumi-kubernetes ``*Patch`` resource: fields it leaves out are not changed, so not judged."""
    parsed = k8s_type(resource_type)
    return parsed is not None and parsed[3]


def base_type(resource_type: str) -> str:
    """The resource type with a ``Patch`` suffix removed (``...:DeploymentPatch`` -> ``...:Deployment``)."""
    return resource_type[: -len(PATCH_SUFFIX)] if is_patch(resource_type) else resource_type


def workload_kind(resource_type: str) -> str | None:
    """Kind of a pod-running workload (any served API version, patches included); None otherwise."""
    parsed = k8s_type(resource_type)
    if parsed is None:
        return None
    group, _, kind, _ = parsed
    return kind if group in _WORKLOAD_GROUPS.get(kind, ()) else None


class StackResource(NamedTuple):
    """One resource as a stack rule sees it."""

    type: str
    name: str
    props: Any
    urn: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: Severity
    frameworks: Mapping[str, list[str]]
    remediation: str
    scope: Scope = "resource"
    #: Pulumi type tokens this rule looks at (documentation + report); the check
    #: itself also ignores other types.
    resource_types: tuple[str, ...] = ()
    #: JSON-schema properties of the rule's config; each should carry a "default".
    config_schema: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    #: "advisory" for rules that report without blocking (the pack-wide level applies otherwise)
    default_level: str = "mandatory"
    #: start-up work the rule can do before the first resource arrives (imports); the pack runs it
    #: in a thread while the engine starts the program (pack.install_fast_analyzer). Idempotent.
    warm_up: Callable[[], object] | None = None

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config_schema.items() if "default" in v}

    def resolve_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with the given config (unknown keys are kept)."""
        merged = self.defaults()
        for key, value in (config or {}).items():
            if key == "enforcementLevel":
                continue
            merged[key] = value
        return merged

    def controls(self) -> list[str]:
        """Flat, sorted "FRAMEWORK:control" list."""
        return sorted(f"{fw}:{c}" for fw, cs in self.frameworks.items() for c in cs)


ResourceCheck = Callable[[str, Any, Mapping[str, Any]], list[str]]
StackCheck = Callable[[list[StackResource], Mapping[str, Any]], list[str]]


def workload_pod_spec(resource_type: str, props: Any) -> Any:
    """The pod spec of a workload (CronJob nests one level deeper); None if absent."""
    from .props import dig

    kind = workload_kind(resource_type)
    if kind is None:
        return None
    if kind == "Pod":
        return dig(props, "spec")
    if kind == "CronJob":
        return dig(props, "spec", "jobTemplate", "spec", "template", "spec")
    return dig(props, "spec", "template", "spec")


def workload_pod_metadata(resource_type: str, props: Any) -> Any:
    from .props import dig

    kind = workload_kind(resource_type)
    if kind == "Pod":
        return dig(props, "metadata")
    if kind == "CronJob":
        return dig(props, "spec", "jobTemplate", "spec", "template", "metadata")
    if kind is not None:
        return dig(props, "spec", "template", "metadata")
    return None


#: Operators that merge a CR's ``containers`` into a pod they generate (strategic merge):
#: such a list is judged like a patch, on what it sets.
MERGED_POD_SPEC_GROUPS = ("monitoring.coreos.com",)
_SKIP_KEYS = ("metadata", "status")
_MAX_DEPTH = 10


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec found in a resource, wherever it sits."""

    #: message prefix: "" for a workload kind's own template, else its path ("spec.template.spec: ")
    where: str
    metadata: Any
    spec: dict[str, Any]
    #: judged on what it sets only (``*Patch`` types, operator-merged container lists)
    partial: bool


def _find_pod_specs(obj: Any, path: tuple[str, ...], depth: int) -> list[tuple[tuple[str, ...], Any, Any]]:
    """(path, metadata, spec) of every dict under ``obj`` that has a ``containers`` list of objects."""
    if depth > _MAX_DEPTH or not isinstance(obj, dict):
        if isinstance(obj, list) and depth <= _MAX_DEPTH:
            return [hit for i, v in enumerate(obj) for hit in _find_pod_specs(v, (*path, str(i)), depth + 1)]
        return []
    containers = obj.get("containers")
    if isinstance(containers, list) and any(isinstance(c, dict) for c in containers):
        return [(path, None, obj)]
    out = []
    for key, value in obj.items():
        if key in _SKIP_KEYS:
            continue
        for hit_path, hit_meta, hit_spec in _find_pod_specs(value, (*path, key), depth + 1):
            # a template's labels/annotations sit next to its spec ({metadata, spec})
            if hit_meta is None and hit_path == (*path, key) and key == "spec":
                hit_meta = obj.get("metadata")
            out.append((hit_path, hit_meta, hit_spec))
    return out


_TEMPLATES: dict[int, tuple[Any, str, list[PodTemplate]]] = {}


def pod_templates(resource_type: str, props: Any) -> list[PodTemplate]:
    """Every pod spec a Kubernetes resource carries: the workload kinds' own template, a
    ``PodTemplate``, and pod templates inside any other object (Argo Rollouts, KEDA ScaledJobs,
    Knative services... any custom resource with a ``containers`` list).

    Several rules ask for the same resource in a row: the answer is kept per props object."""
    hit = _TEMPLATES.get(id(props))
    if hit is not None and hit[0] is props and hit[1] == resource_type:
        return hit[2]
    found = _pod_templates(resource_type, props)
    if len(_TEMPLATES) >= 256:
        _TEMPLATES.clear()
    _TEMPLATES[id(props)] = (props, resource_type, found)
    return found


def _pod_templates(resource_type: str, props: Any) -> list[PodTemplate]:
    parsed = k8s_type(resource_type)
    if parsed is None:
        return []
    group, _, _, patch = parsed
    spec = workload_pod_spec(resource_type, props)
    if workload_kind(resource_type) is not None:
        if not isinstance(spec, dict):
            return []
        return [PodTemplate("", workload_pod_metadata(resource_type, props), spec, patch)]
    partial = patch or group in MERGED_POD_SPEC_GROUPS
    return [
        PodTemplate(".".join(path) + ": ", meta, found, partial) for path, meta, found in _find_pod_specs(props, (), 0)
    ]


def containers_of(pod_spec: Any) -> list[tuple[str, str, Any]]:
    """(field, name, container) for containers, initContainers, ephemeralContainers."""
    from .props import as_dict, as_list, dig

    out: list[tuple[str, str, Any]] = []
    for fieldname in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(as_list(dig(pod_spec, fieldname))):
            c = as_dict(c)
            name = dig(c, "name")
            out.append((fieldname, name if isinstance(name, str) else f"#{i}", c))
    return out


def is_production(environment: Any, prod_environments: Iterable[Any]) -> bool:
    """Environment names compare without case or surrounding space: "Prod" is production too."""
    name = str(environment or "").strip().lower()
    return bool(name) and name in {str(e).strip().lower() for e in prod_environments}


def unique(messages: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for m in messages:
        seen.setdefault(m, None)
    return list(seen)


def crd_kind(resource_type: str, group: str, kinds: Iterable[str]) -> str | None:
    """Kind for ``kubernetes:<group>/<any version>:<Kind>[Patch]`` when Kind is in ``kinds``."""
    parsed = k8s_type(resource_type)
    if parsed is None or parsed[0] != group:
        return None
    return parsed[2] if parsed[2] in set(kinds) else None


#: Custom resources whose operators run pods in the resource's namespace.
POD_OWNING_CRDS: tuple[tuple[str, str], ...] = (
    ("postgresql.cnpg.io", "Cluster"),
    ("redis.redis.opstreelabs.in", "RedisCluster"),
    ("redis.redis.opstreelabs.in", "Redis"),
)


def workload_namespaces(resources: Iterable[StackResource], exempt: Iterable[str]) -> tuple[set[str], bool]:
    """Namespaces that run pods, minus ``exempt``; second item: some namespace was unknown."""
    from .props import meta_namespace

    skip = set(exempt)
    found: set[str] = set()
    unknown = False
    for r in resources:
        if (
            workload_kind(r.type) is not None
            or any(crd_kind(r.type, g, [k]) for g, k in POD_OWNING_CRDS)
            or pod_templates(r.type, r.props)
        ):
            ns = meta_namespace(r.props)
            if ns == "<unknown>":
                unknown = True
            elif ns not in skip:
                found.add(ns)
    return found, unknown
