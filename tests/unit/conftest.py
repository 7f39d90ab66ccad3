"""Shared fixtures: raw stack config and a Pulumi-mocks runner."""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill
import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components import needs  # noqa: E402
from components import settings as settings_mod  # noqa: E402

GENERATED_PASSWORD = "pulumi-python:dynamic/passwords:GeneratedPassword"
SELF_SIGNED = "pulumi-python:dynamic/tls:SelfSignedCertificate"
TOKEN = "hvs.test-token"
PG_PW = "pg-admin-test-password"
#: stand-ins for the secret config staging/prod need (never real material).
TLS_CERT = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"
TLS_KEY = "-----BEGIN PRIVATE KEY-----\ntest\n-----END PRIVATE KEY-----\n"
BACKUP_ID, BACKUP_SECRET = "AKIATEST", "backup-secret-test"


@dataclass
class Registered:
    """One resource as the engine would have seen it."""

    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None = None


@dataclass
class Capture(pulumi.runtime.Mocks):
    """Mocks that record every registered resource."""

    resources: dict[str, Registered] = field(default_factory=dict)
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    """``type::name`` -> the ``type::name`` of every resource it depends on."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        key = f"{args.typ}::{args.name}"
        assert key not in self.resources, f"duplicate resource {key}"
        self.resources[key] = Registered(
            args.typ, args.name, copy.deepcopy(args.inputs), args.provider
        )
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = "x" * int(args.inputs.get("length", 16))
        if args.typ == GENERATED_PASSWORD:
            # the serialized provider must round-trip and accept the inputs; the value
            # itself is deterministic here so that runs compare equal
            provider = dill.loads(base64.b64decode(unsecret(args.inputs["__provider"])))
            props = {k: v for k, v in args.inputs.items() if k != "__provider"}
            assert provider.check({}, props).failures == []
            outputs.pop("__provider")
            outputs["result"] = "y" * int(args.inputs["length"])
        if args.typ == SELF_SIGNED:
            outputs.pop("__provider")
            outputs["certificate"] = TLS_CERT
            outputs["privateKey"] = TLS_KEY
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources.values() if r.typ == typ]

    def crs(self, kind: str) -> list[Registered]:
        return [
            r
            for r in self.resources.values()
            if r.typ.startswith("kubernetes:") and r.inputs.get("kind") == kind
        ]

    def get(self, typ: str, name: str) -> Registered:
        return self.resources[f"{typ}::{name}"]


class _DependencyMonitor(MockMonitor):
    """The mock monitor, also recording each resource's dependencies (``depends_on`` and
    the resources its inputs come from) as ``type::name`` keys: MockResourceArgs drops them."""

    def __init__(self, cap: Capture) -> None:
        super().__init__(cap)
        self.cap = cap

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.cap.dependencies[f"{request.type}::{request.name}"] = {
            _type_and_name(urn) for urn in request.dependencies
        }
        return response


def _type_and_name(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent types$>type::name
    qualified, name = urn.split("::")[-2:]
    return f"{qualified.rsplit('$', 1)[-1]}::{name}"


def run_mocked(fn: Callable[[], Any], cap: Capture | None = None) -> Capture:
    """Run ``fn`` under fresh Pulumi mocks (recording into ``cap``) and wait for all
    registrations."""
    cap = Capture() if cap is None else cap
    pulumi.runtime.set_mocks(
        cap,
        project="claude-enhancer",
        stack="test",
        preview=False,
        monitor=_DependencyMonitor(cap),
    )
    pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
    pulumi.runtime.settings.SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(fn))
    return cap


def load_stack_raw(stack: str) -> dict[str, Any]:
    """Raw config as the engine passes it: project defaults + stack file, JSON values."""
    return needs.load_stack_raw(stack)


def with_secrets(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    out[settings_mod.VAULT_TOKEN_KEY] = TOKEN
    out[settings_mod.PG_PASSWORD_KEY] = PG_PW
    out[settings_mod.TLS_CERT_KEY] = TLS_CERT
    out[settings_mod.TLS_KEY_KEY] = TLS_KEY
    out[settings_mod.BACKUP_ID_KEY] = BACKUP_ID
    out[settings_mod.BACKUP_SECRET_KEY] = BACKUP_SECRET
    return out


def set_obj(raw: dict[str, Any], key: str, path: str, value: Any) -> dict[str, Any]:
    """Copy of raw with ``claude-enhancer:<key>`` object's dotted ``path`` set."""
    out = dict(raw)
    full = f"claude-enhancer:{key}"
    obj = json.loads(out[full])
    cur = obj
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    out[full] = json.dumps(obj)
    return out


@pytest.fixture
def local_raw() -> dict[str, Any]:
    return with_secrets(load_stack_raw("local"))


@pytest.fixture
def vault_raw(local_raw: dict[str, Any]) -> dict[str, Any]:
    """The local stack with Vault through pulumi-vault (as staging/prod)."""
    return set_obj(
        set_obj(local_raw, "vault", "enabled", True), "vault", "provider", "pulumi-vault"
    )


@pytest.fixture
def local_settings(local_raw: dict[str, Any]) -> settings_mod.Settings:
    return settings_mod.load_settings(local_raw, {}, None, stack="local")


def settings_for(
    stack: str = "local",
    phase: int = 0,
    previous: int | None = None,
    vault: bool | None = None,
    generator: str | None = None,
    vault_provider: str | None = None,
) -> settings_mod.Settings:
    """Settings of a stack file at ``phase``; ``vault``/``generator``/``vault_provider`` override those keys."""
    raw = with_secrets(load_stack_raw(stack))
    raw = set_obj(raw, "rollout", "phase", phase)
    if vault is not None:
        raw = set_obj(raw, "vault", "enabled", vault)
    if vault_provider is not None:
        raw = set_obj(raw, "vault", "provider", vault_provider)
    if generator is not None:
        raw["claude-enhancer:passwords"] = json.dumps({"generator": generator})
    return settings_mod.load_settings(raw, {}, previous, stack=stack)


def run_program(s: settings_mod.Settings) -> Capture:
    from components import program

    return run_mocked(lambda: program.run(s))


_PROGRAM_CACHE: dict[tuple[str, int, bool | None, str | None, str | None], Capture] = {}


def program_capture(
    stack: str = "local",
    phase: int = 0,
    vault: bool | None = None,
    generator: str | None = None,
    vault_provider: str | None = None,
) -> Capture:
    """Cached full-program run (inputs are deep-copied, so sharing is safe)."""
    key = (stack, phase, vault, generator, vault_provider)
    if key not in _PROGRAM_CACHE:
        _PROGRAM_CACHE[key] = run_program(
            settings_for(stack, phase, None, vault, generator, vault_provider)
        )
    return _PROGRAM_CACHE[key]


SECRET_SIG = "4dabf18193072939515e22adb298388d"


def is_secret(value: Any) -> bool:
    """True when a mock-registered input value was a Pulumi secret."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270"


def unsecret(value: Any) -> Any:
    return value["value"] if is_secret(value) else value
