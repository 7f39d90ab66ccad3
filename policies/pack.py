"""Wrap the plain rules as pulumi-policy policies.

Kept apart from ``__main__.py`` (which starts the gRPC server and never returns)
so that tests can build the policies and drive them in-process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import policy as _policy_module
from pulumi_policy.deserialize import _deserialize_property, deserialize_properties
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies.lib.props import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, plain
from policies.lib.rule import StackResource
from policies.rules import ALL

PACK_NAME = "claude-enhancer-policies"

_SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}

_LEVELS = {
    "advisory": EnforcementLevel.ADVISORY,
    "mandatory": EnforcementLevel.MANDATORY,
    "disabled": EnforcementLevel.DISABLED,
}


def default_enforcement_level() -> EnforcementLevel:
    """MANDATORY unless CE_POLICY_ENFORCEMENT=advisory|disabled (per-policy overrides use pack config)."""
    value = os.environ.get("CE_POLICY_ENFORCEMENT", "mandatory").strip().lower()
    if value not in _LEVELS:
        raise ValueError(f"CE_POLICY_ENFORCEMENT must be one of {sorted(_LEVELS)}, got {value!r}")
    return _LEVELS[value]


# --- secrets ---------------------------------------------------------------


def _keep_secret(prop: Any) -> Any:
    if isinstance(prop, list):
        return [_keep_secret(e) for e in prop]
    if isinstance(prop, dict):
        if prop.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return Secret(_keep_secret(prop.get("value")))
        if SPECIAL_SIG_KEY in prop:
            return _deserialize_property(prop)  # assets/archives: upstream behaviour
        return {k: _keep_secret(v) for k, v in prop.items()}
    return prop


def deserialize_keep_secrets(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    """Like pulumi_policy's deserialize_properties, but secrets become ``Secret`` leaves.

    Upstream unwraps secrets for validation, making them indistinguishable from
    plaintext; remediation (``proxy_secrets=True``) keeps upstream behaviour.
    """
    if proxy_secrets:
        return deserialize_properties(props, True)
    return {k: _keep_secret(v) for k, v in props.items()}


def install_secret_preserving_deserializer() -> None:
    """Make Analyze/AnalyzeStack hand secrets to the rules as ``Secret`` values, converted once.

    Upstream converts and deserializes a resource's properties once per policy (about 30 times
    per resource, and per stack policy for every resource); the same protobuf message comes back
    each time, so the conversion is done once per message and shared (the rules only read it).
    The rules read nothing but ``plain(props)`` (lib/props.py), so where upstream wraps the
    properties in its read-only proxy, they become that plain form at once: one walk less per
    resource, and ``plain_props`` finds it already done.
    """
    _policy_module.deserialize_properties = _memo(deserialize_keep_secrets)  # type: ignore[attr-defined]
    _policy_module.json_format = _JsonFormat()  # type: ignore[attr-defined]
    plained = _IdentityMemo()
    setattr(_policy_module, "unknown_checking_proxy", lambda d: plained.get(d, _plain_once))  # noqa: B010


def install_fast_analyzer() -> None:
    """The analyzer's per-resource and start-up work off the preview's path, verdicts unchanged.

    * The engine calls ``Remediate`` before every ``Analyze`` (pkg/v3 resource/deploy/
      step_generator.go, "First pass: perform remediations"). Upstream then converts the whole
      resource only to skip every policy whose level is not "remediate" and answers an empty
      response (pulumi_policy/policy.py, ``Remediate``). No rule of the pack remediates, so
      unless the pack's config sets some policy to "remediate", the empty answer comes at once.
    * The engine starts the program only once ``Configure`` has returned, and the program
      imports for about half a second before its first resource: the enabled rules' ``warm_up``
      (checkov's check registry) runs then, in a thread, instead of in the first resources'
      ``Analyze`` calls.
    """
    _PolicyAnalyzerServicer.Remediate = _remediate_when_asked(_PolicyAnalyzerServicer.Remediate)  # type: ignore[method-assign]
    _PolicyAnalyzerServicer.Configure = _warm_up_after(_PolicyAnalyzerServicer.Configure)  # type: ignore[method-assign]


def _remediate_when_asked(upstream: Callable[..., Any]) -> Callable[..., Any]:
    from pulumi.runtime import proto

    def remediate(self: _PolicyAnalyzerServicer, request: Any, context: Any) -> Any:
        policies = getattr(self, "_PolicyAnalyzerServicer__policies")  # noqa: B009 - name-mangled upstream field
        if any(self._get_enforcement_level(p) == EnforcementLevel.REMEDIATE for p in policies):
            return upstream(self, request, context)
        return proto.RemediateResponse()

    return remediate


def _warm_up_after(upstream: Callable[..., Any]) -> Callable[..., Any]:
    started = threading.Event()

    def configure(self: _PolicyAnalyzerServicer, request: Any, context: Any) -> Any:
        response = upstream(self, request, context)
        if not started.is_set():
            started.set()
            policies = getattr(self, "_PolicyAnalyzerServicer__policies")  # noqa: B009 - name-mangled upstream field
            enabled = {p.name for p in policies if self._get_enforcement_level(p) != EnforcementLevel.DISABLED}
            threading.Thread(target=warm_up, args=(enabled,), name="warm-up", daemon=True).start()
        return response

    return configure


def warm_up(rule_names: set[str]) -> None:
    """The ``warm_up`` of the named rules (each is idempotent and safe to race with the rule's own check)."""
    for module in ALL:
        if module.RULE.name in rule_names and module.RULE.warm_up is not None:
            module.RULE.warm_up()


class _IdentityMemo:
    """Results keyed by the identity of their input, which is kept alive while cached (no id reuse)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: dict[int, tuple[Any, Any]] = {}

    def get(self, key: Any, compute: Any) -> Any:
        hit = self._items.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        value = compute(key)
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[id(key)] = (key, value)
        return value


def _memo(fn: Any) -> Any:
    memo = _IdentityMemo()

    def wrapped(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        if proxy_secrets:
            return fn(props, proxy_secrets)
        return memo.get(props, fn)

    return wrapped


class _JsonFormat:
    """``json_format`` for pulumi_policy.policy: MessageToDict once per message object."""

    def __init__(self) -> None:
        from google.protobuf import json_format

        self._json_format = json_format
        self._memo = _IdentityMemo()

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # upstream name
        if args or kwargs:
            return self._json_format.MessageToDict(message, *args, **kwargs)
        return self._memo.get(message, self._json_format.MessageToDict)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._json_format, name)


_PLAIN = _IdentityMemo()


def plain_props(props: Any) -> Any:
    """``plain(props)`` once per (shared) proxy object."""
    return _PLAIN.get(props, plain)


def _plain_once(props: Any) -> Any:
    """``plain(props)``, remembered as its own plain form (``plain_props`` returns it as is)."""
    converted = plain(props)
    return _PLAIN.get(converted, lambda same: same)


# --- wrappers ---------------------------------------------------------------


def _schema(module: ModuleType) -> PolicyConfigSchema | None:
    schema = dict(module.RULE.config_schema)
    return PolicyConfigSchema(properties=schema) if schema else None


def _framework(module: ModuleType) -> PolicyComplianceFramework:
    spec = "; ".join(f"{fw} {', '.join(cs)}" for fw, cs in sorted(module.RULE.frameworks.items()))
    return PolicyComplianceFramework(name="claude-enhancer-controls", version="1", specification=spec)


def _config(args: ResourceValidationArgs | StackValidationArgs) -> Mapping[str, Any]:
    cfg = args.get_config()
    return plain(cfg) if cfg else {}


def _metadata(module: ModuleType, level: EnforcementLevel) -> dict[str, Any]:
    """The policy fields every rule shares (name, severity, framework, remediation...)."""
    rule = module.RULE
    return {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": level,
        "config_schema": _schema(module),
        "severity": _SEVERITY[rule.severity],
        "framework": _framework(module),
        "tags": [*rule.tags, *sorted(rule.frameworks)],
        "remediation_steps": rule.remediation,
    }


def _resource_policy(module: ModuleType, level: EnforcementLevel) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in module.check(args.resource_type, plain_props(args.props), _config(args)):
            report_violation(message, None)

    return ResourceValidationPolicy(validate=validate, **_metadata(module, level))


def _stack_policy(module: ModuleType, level: EnforcementLevel) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [StackResource(r.resource_type, r.name, plain_props(r.props), r.urn) for r in args.resources]
        for message in module.check(resources, _config(args)):
            report_violation(message, None)

    return StackValidationPolicy(validate=validate, **_metadata(module, level))


def build_policies(level: EnforcementLevel | None = None) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    level = level or default_enforcement_level()
    out: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for module in ALL:
        own = rule_level(module, level)
        if module.RULE.scope == "stack":
            out.append(_stack_policy(module, own))
        else:
            out.append(_resource_policy(module, own))
    return out


def rule_level(module: ModuleType, pack_level: EnforcementLevel) -> EnforcementLevel:
    """A rule's default level: the pack-wide one, unless the rule is advisory by design (and the pack is not off)."""
    if module.RULE.default_level == "advisory" and pack_level == EnforcementLevel.MANDATORY:
        return EnforcementLevel.ADVISORY
    return pack_level
