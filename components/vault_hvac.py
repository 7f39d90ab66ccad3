"""Vault objects through hvac: a ``pulumi.dynamic`` provider (``claude-enhancer:vault.provider: hvac``).

The pulumi-vault resource plugin cannot be built here (docs/toolchain-notes.md), so this
provider does what it would: it writes the objects of components/vault_spec.py through Vault's
HTTP API with hvac, in the venv, run by ``pulumi-resource-pulumi-python`` like the password
generator. Each pulumi-vault kind gets its own dynamic type, named after it
(``vault:kubernetes/authBackendRole:AuthBackendRole`` ->
``pulumi-python:dynamic/vault/kubernetes:AuthBackendRole``), with the same (camelCase) inputs,
so the state and the policy pack see the same shapes on both paths.

Every resource carries the connection as inputs: ``address`` and the secret ``token``. Props
that hold secrets are Pulumi secrets in inputs and outputs (``additional_secret_outputs``).
The Vault calls go through :class:`Api` (read/write/delete of a path), so the CRUD logic is
tested against a fake; :class:`HvacApi` is the real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import types
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components import vault_spec as spec

#: connection inputs every hvac resource carries (not part of the Vault object).
CONNECTION: tuple[str, ...] = ("address", "token")
DYNAMIC_PACKAGE = "pulumi-python"


def dynamic_module_and_name(kind: str) -> tuple[str, str]:
    """Pure: ``vault:kubernetes/authBackendRole:AuthBackendRole`` -> (vault/kubernetes, AuthBackendRole)."""
    pkg, module, name = kind.split(":")
    mod = module.split("/")[0]
    return (pkg if mod == "index" else f"{pkg}/{mod}"), name


def dynamic_type(kind: str) -> str:
    """Pure: the dynamic type token that stands for a pulumi-vault kind."""
    module, name = dynamic_module_and_name(kind)
    return f"{DYNAMIC_PACKAGE}:dynamic/{module}:{name}"


# ------------------------------------------------------------------ Vault API (effects)


#: back-off before retrying a request Vault answered with 500 (then the error stands)
RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)


class VaultForbidden(Exception):
    """Vault answered 403 (a token that is unknown, expired or lacks the capability)."""


class Api(Protocol):
    """The three Vault HTTP operations the provider needs."""

    def read(self, path: str) -> dict[str, Any] | None:
        """GET /v1/<path>; None when Vault answers 404."""

    def write(self, path: str, data: Mapping[str, Any]) -> None:
        """POST /v1/<path>."""

    def delete(self, path: str) -> None:
        """DELETE /v1/<path>."""


class HvacApi:
    """:class:`Api` on an hvac client."""

    def __init__(self, address: str, token: str) -> None:
        import hvac

        self._client = hvac.Client(url=address, token=token, timeout=30)

    def read(self, path: str) -> dict[str, Any] | None:
        out = self._call(self._client.read, path)
        return out if isinstance(out, dict) else None

    def write(self, path: str, data: Mapping[str, Any]) -> None:
        self._call(lambda p: self._client.write_data(p, data=dict(data)), path)

    def delete(self, path: str) -> None:
        import hvac.exceptions

        with contextlib.suppress(hvac.exceptions.InvalidPath):  # already gone
            self._call(self._client.delete, path)

    @staticmethod
    def _call(
        fn: Callable[[str], Any], path: str, sleep: Callable[[float], None] = time.sleep
    ) -> Any:
        import hvac.exceptions

        for delay in (*RETRY_DELAYS_S, None):
            try:
                return fn(path)
            except hvac.exceptions.Forbidden as e:
                raise VaultForbidden(f"{path}: {e}") from None
            except hvac.exceptions.InternalServerError:
                # Vault fails closed while it cannot audit a request: measured for a second
                # after the audit device is re-enabled at the same path ("failed to persist
                # salt: cannot write to storage during setup"), every request answers 500
                if delay is None:
                    raise
                sleep(delay)
        raise AssertionError("unreachable")


# ------------------------------------------------------------------ pure translation


def snake(key: str) -> str:
    """Pure: camelCase -> snake_case (Vault's API names)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _norm(value: Any) -> Any:
    # the engine hands numbers back as floats
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


def _api(props: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {snake(k): _norm(props[k]) for k in keys if k in props and props[k] is not None}


def _mount_present(listing: Mapping[str, Any] | None, path: str) -> bool:
    data = (listing or {}).get("data", listing or {})
    return isinstance(data, Mapping) and f"{path.strip('/')}/" in data


def _connection_config(kind: str, conn: Mapping[str, Any]) -> dict[str, Any]:
    """Pure: the database/config/<name> body of one postgresqls/redis entry."""
    body = {snake(k): _norm(v) for k, v in conn.items() if k != "name" and v is not None}
    body["plugin_name"] = (
        "postgresql-database-plugin" if kind == "postgresqls" else "redis-database-plugin"
    )
    return body


class Handler:
    """How one kind maps onto Vault paths (create == update unless ``replace_on`` changes)."""

    #: props whose change replaces the object (Vault identifies objects by path).
    replace_on: tuple[str, ...] = ()

    def object_id(self, props: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def apply(self, api: Api, props: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def exists(self, api: Api, props: Mapping[str, Any]) -> bool:
        return api.read(self.object_id(props)) is not None

    def remove(self, api: Api, props: Mapping[str, Any]) -> None:
        api.delete(self.object_id(props))

    def retire(self, api: Api, olds: Mapping[str, Any], news: Mapping[str, Any]) -> None:
        """On update: remove what the old props created and the new ones no longer name."""


class _Audit(Handler):
    replace_on = ("type", "path", "description", "options")  # devices cannot be tuned

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"sys/audit/{p['path']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), _api(p, ("type", "description", "options")))

    def exists(self, api: Api, p: Mapping[str, Any]) -> bool:
        return _mount_present(api.read("sys/audit"), p["path"])


class _Mount(Handler):
    replace_on = ("path", "type", "options")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"sys/mounts/{p['path']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        if self.exists(api, p):  # only the description can change in place
            api.write(f"{self.object_id(p)}/tune", _api(p, ("description",)))
        else:
            api.write(self.object_id(p), _api(p, ("type", "description", "options")))

    def exists(self, api: Api, p: Mapping[str, Any]) -> bool:
        return _mount_present(api.read("sys/mounts"), p["path"])


class _AuthBackend(Handler):
    replace_on = ("type", "path")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"sys/auth/{p['path']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        if self.exists(api, p):
            api.write(f"{self.object_id(p)}/tune", _api(p, ("description",)))
        else:
            api.write(self.object_id(p), _api(p, ("type", "description")))

    def exists(self, api: Api, p: Mapping[str, Any]) -> bool:
        return _mount_present(api.read("sys/auth"), p["path"])


class _K8sAuthConfig(Handler):
    replace_on = ("backend",)
    keys = ("kubernetesHost", "kubernetesCaCert", "tokenReviewerJwt", "disableLocalCaJwt")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"auth/{p['backend']}/config"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), _api(p, self.keys))

    def remove(self, api: Api, p: Mapping[str, Any]) -> None:
        pass  # Vault has no DELETE for it: the config goes with its auth backend


class _Policy(Handler):
    replace_on = ("name",)

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"sys/policies/acl/{p['name']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), {"policy": p["policy"]})


class _K8sRole(Handler):
    replace_on = ("backend", "roleName")
    keys = (
        "boundServiceAccountNames",
        "boundServiceAccountNamespaces",
        "audience",
        "tokenTtl",
        "tokenMaxTtl",
        "tokenPolicies",
        "tokenNoDefaultPolicy",
    )

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"auth/{p['backend']}/role/{p['roleName']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), _api(p, self.keys))


class _DatabaseMount(Handler):
    replace_on = ("path",)
    connections = ("postgresqls", "redis")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"sys/mounts/{p['path']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        if not self.exists(api, p):
            api.write(self.object_id(p), {"type": "database", **_api(p, ("description",))})
        else:
            api.write(f"{self.object_id(p)}/tune", _api(p, ("description",)))
        for kind in self.connections:
            for conn in p.get(kind) or []:
                api.write(f"{p['path']}/config/{conn['name']}", _connection_config(kind, conn))

    def retire(self, api: Api, olds: Mapping[str, Any], news: Mapping[str, Any]) -> None:
        # a connection dropped from the spec (the Redis one, once its static role went) would
        # otherwise stay configured in Vault; pulumi-vault removes it the same way
        if olds.get("path") != news.get("path"):
            return  # a new mount: the old one is replaced whole
        keep = {c["name"] for kind in self.connections for c in news.get(kind) or []}
        for kind in self.connections:
            for conn in olds.get(kind) or []:
                if conn["name"] not in keep:
                    api.delete(f"{olds['path']}/config/{conn['name']}")

    def exists(self, api: Api, p: Mapping[str, Any]) -> bool:
        return _mount_present(api.read("sys/mounts"), p["path"])


class _StaticRole(Handler):
    replace_on = ("backend", "name")
    keys = ("dbName", "username", "rotationPeriod", "rotationStatements")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"{p['backend']}/static-roles/{p['name']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), _api(p, self.keys))


class _KvSecret(Handler):
    replace_on = ("mount", "name")

    def object_id(self, p: Mapping[str, Any]) -> str:
        return f"{p['mount']}/data/{p['name']}"

    def apply(self, api: Api, p: Mapping[str, Any]) -> None:
        api.write(self.object_id(p), {"data": json.loads(p["dataJson"])})

    def exists(self, api: Api, p: Mapping[str, Any]) -> bool:
        return api.read(f"{p['mount']}/metadata/{p['name']}") is not None

    def remove(self, api: Api, p: Mapping[str, Any]) -> None:
        api.delete(f"{p['mount']}/metadata/{p['name']}")  # every version, not just the latest


HANDLERS: dict[str, Handler] = {
    spec.AUDIT: _Audit(),
    spec.MOUNT: _Mount(),
    spec.AUTH_BACKEND: _AuthBackend(),
    spec.K8S_AUTH_CONFIG: _K8sAuthConfig(),
    spec.POLICY: _Policy(),
    spec.K8S_ROLE: _K8sRole(),
    spec.DB_MOUNT_KIND: _DatabaseMount(),
    spec.STATIC_ROLE_KIND: _StaticRole(),
    spec.KV_SECRET: _KvSecret(),
}


def diff_props(kind: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Pure: replace on identity (or address) changes, update on others; the token is ignored."""
    olds_n, news_n = _norm(dict(olds)), _norm(dict(news))
    keys = (set(olds_n) | set(news_n)) - {"token", "__provider"}
    changed = sorted(k for k in keys if olds_n.get(k) != news_n.get(k))
    replaces = [k for k in changed if k in (*HANDLERS[kind].replace_on, "address")]
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        # Vault names objects by path: the old one must go before the new one is written
        delete_before_replace=bool(replaces),
    )


# ------------------------------------------------------------------ the dynamic provider


ApiFactory = Callable[[str, str], Api]


class VaultObjectProvider(ResourceProvider):
    """Dynamic provider of one pulumi-vault kind (kept free of secrets: it is pickled into state)."""

    def __init__(self, kind: str, api_factory: ApiFactory | None = None) -> None:
        super().__init__()
        if kind not in HANDLERS:
            raise ValueError(f"unknown Vault kind {kind!r}")
        self.kind = kind
        self._api_factory = api_factory

    def _api(self, props: Mapping[str, Any]) -> Api:
        factory = self._api_factory or HvacApi
        return factory(str(props["address"]), str(props["token"]))

    def _with_state_token(self, props: Mapping[str, Any], fn: Callable[[Api], Any]) -> Any:
        """Refresh/delete run with the token stored in the state; when Vault refuses it (a
        re-initialized server has a new root token) retry once with the caller's VAULT_TOKEN."""
        try:
            return fn(self._api(props))
        except VaultForbidden:
            current = os.environ.get("VAULT_TOKEN")
            if not current or current == props.get("token"):
                raise
            return fn(self._api({**props, "token": current}))

    def _props(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if k != "__provider"}

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(k, "required") for k in CONNECTION if not isinstance(news.get(k), str)
        ]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_props(self.kind, self._props(olds), self._props(news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = self._props(props)
        handler = HANDLERS[self.kind]
        handler.apply(self._api(p), p)
        return CreateResult(id_=handler.object_id(p), outs=p)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        p = self._props(news)
        api = self._api(p)
        HANDLERS[self.kind].retire(api, self._props(olds), p)
        HANDLERS[self.kind].apply(api, p)
        return UpdateResult(outs=p)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # refresh: an object Vault lost (the dev server keeps no state) reads as gone
        p = self._props(props)
        handler = HANDLERS[self.kind]
        if not p or not self._with_state_token(p, lambda api: handler.exists(api, p)):
            return ReadResult(None, {})
        return ReadResult(id_, p)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        p = self._props(props)
        handler = HANDLERS[self.kind]
        self._with_state_token(p, lambda api: handler.remove(api, p))


def _class_for(kind: str) -> type[pulumi.dynamic.Resource]:
    module, name = dynamic_module_and_name(kind)
    return types.new_class(name, (pulumi.dynamic.Resource,), {"module": module, "name": name})


RESOURCE_CLASSES: dict[str, type[pulumi.dynamic.Resource]] = {k: _class_for(k) for k in HANDLERS}


def register(
    obj: spec.VaultObject,
    address: str,
    token: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> pulumi.CustomResource:
    """Register one Vault object as its dynamic resource (secret props stay secret)."""
    props: dict[str, Any] = {
        k: (pulumi.Output.secret(v) if k in obj.secrets else v) for k, v in obj.props.items()
    }
    props["address"] = address
    props["token"] = pulumi.Output.secret(token)
    secret_opts = pulumi.ResourceOptions(additional_secret_outputs=[*obj.secrets, "token"])
    cls: Any = RESOURCE_CLASSES[obj.kind]
    res: pulumi.CustomResource = cls(
        VaultObjectProvider(obj.kind),
        obj.name,
        props,
        pulumi.ResourceOptions.merge(opts, secret_opts),
    )
    return res
