"""The effects of :mod:`rotator.redis_acl`: Redis Cluster nodes, Vault KV v2, the durable ACL."""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import hvac
import hvac.exceptions
import redis

from rotator.redis_acl import APP_RULES, CasConflict, Node, RotationError, State


def _addr(host: str, port: int) -> str:
    return f"{host}:{port}"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def parse_shards(raw: Any) -> list[Node]:
    """Pure: nodes from ``CLUSTER SHARDS`` (redis-py's parsed dicts, or the raw flat pairs)."""

    def as_dict(x: Any) -> dict[str, Any]:
        if isinstance(x, dict):
            return {_text(k): v for k, v in x.items()}
        return {_text(x[i]): x[i + 1] for i in range(0, len(x), 2)}

    out = []
    for shard in raw:
        for n in as_dict(shard)["nodes"]:
            d = as_dict(n)
            host = _text(d.get("ip") or d.get("endpoint"))
            out.append(Node(_addr(host, int(d["port"])), _text(d["role"]), _text(d["health"])))
    return out


class RedisNodes:
    """Every node of a Redis Cluster, found from a seed, as the default (admin) user."""

    def __init__(self, seed: str, admin_user: str, admin_password: str, tls: bool = False,
                 timeout: float = 5.0) -> None:  # fmt: skip
        self.seed, self.tls, self.timeout = seed, tls, timeout
        self._auth = (admin_user, admin_password)
        self._clients: dict[str, redis.Redis] = {}

    def _client(self, address: str) -> redis.Redis:
        if address not in self._clients:
            host, _, port = address.rpartition(":")
            self._clients[address] = redis.Redis(
                host=host, port=int(port), username=self._auth[0], password=self._auth[1],
                ssl=self.tls, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            )  # fmt: skip
        return self._clients[address]

    def discover(self) -> list[Node]:
        try:
            found = parse_shards(self._client(self.seed).execute_command("CLUSTER SHARDS"))
        except redis.RedisError as e:
            raise RotationError(f"Redis seed {self.seed}: {e}") from e
        # CLUSTER SHARDS calls a replica "loading" while its gossiped offset is 0, which an idle
        # cluster's replicas report for a while: ask each node itself whether it is loading
        return [replace(n, health=self._health(n)) for n in found]

    def _health(self, node: Node) -> str:
        if node.health == "fail":
            return "fail"
        try:
            info = cast(dict[str, Any], self._client(node.address).info("persistence"))
        except redis.RedisError:
            return "unreachable"
        return "loading" if info.get("loading") else "online"

    def set_app_hashes(self, node: Node, user: str, hashes: frozenset[str]) -> None:
        # one command from "reset", so each node goes from one exact rule set to the next
        args = ["reset", "on", *(f"#{h}" for h in sorted(hashes)), *APP_RULES]
        try:
            self._client(node.address).execute_command("ACL SETUSER", user, *args)
        except redis.RedisError as e:
            raise RotationError(f"ACL SETUSER {user} on {node.address}: {e}") from e

    def app_hashes(self, node: Node, user: str) -> frozenset[str]:
        try:
            got = cast(dict[str, Any] | None, self._client(node.address).acl_getuser(user))
        except redis.RedisError as e:
            raise RotationError(f"ACL GETUSER {user} on {node.address}: {e}") from e
        return frozenset(_text(p) for p in (got or {}).get("passwords", []))


class VaultKv:
    """KV v2: the app path the pods read, and the rotation state (written with check-and-set)."""

    def __init__(self, client: hvac.Client, mount: str, app_path: str, state_path: str) -> None:
        self.kv = client.secrets.kv.v2
        self.mount, self.app_path, self.state_path = mount, app_path, state_path

    def _error(self, path: str, e: hvac.exceptions.VaultError) -> RotationError:
        if "no handler for route" in str(e):
            return RotationError(
                f"Vault has no KV v2 mount {self.mount!r}: deploy the stack first (after a "
                "restart of a dev server, which keeps nothing: pulumi up --refresh)"
            )
        if isinstance(e, hvac.exceptions.Forbidden):
            return RotationError(f"Vault denied {self.mount}/{path}: check the rotator's policy")
        return RotationError(f"Vault {self.mount}/{path}: {e}")

    def _read(self, path: str) -> tuple[dict[str, Any] | None, int]:
        try:
            r = self.kv.read_secret_version(path=path, mount_point=self.mount,
                                            raise_on_deleted_version=True)  # fmt: skip
        except hvac.exceptions.InvalidPath as e:
            if "no handler for route" in str(e):
                raise self._error(path, e) from e
            return None, 0  # not written yet
        except hvac.exceptions.VaultError as e:
            raise self._error(path, e) from e
        return r["data"]["data"], int(r["data"]["metadata"]["version"])

    def _write(self, path: str, doc: dict[str, Any], cas: int | None = None) -> int:
        try:
            r = self.kv.create_or_update_secret(path=path, secret=doc, cas=cas,
                                                mount_point=self.mount)  # fmt: skip
        except hvac.exceptions.InvalidRequest as e:
            if cas is not None and "check-and-set" in str(e):
                raise CasConflict(f"{self.mount}/{path}: changed since read ({e})") from e
            raise self._error(path, e) from e
        except hvac.exceptions.VaultError as e:
            raise self._error(path, e) from e
        return int(r["data"]["version"])

    def read_state(self) -> tuple[State | None, int]:
        doc, version = self._read(self.state_path)
        return (State.from_doc(doc) if doc else None), version

    def write_state(self, state: State, cas: int) -> int:
        return self._write(self.state_path, state.to_doc(), cas=cas)

    def read_app(self) -> str | None:
        doc, _ = self._read(self.app_path)
        return str(doc["password"]) if doc and "password" in doc else None

    def write_app(self, user: str, password: str) -> None:
        self._write(self.app_path, {"username": user, "password": password})


class FileSink:
    """The nodes' shared ``aclfile`` (the local platform); replaced atomically, 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, text: str) -> None:
        if self.path.exists() and self.path.read_text() == text:
            return
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".acl-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)


class KubeSecretSink:
    """The operator's ``spec.acl`` Secret (key ``user.acl``), through the API server with the
    pod's own ServiceAccount token (its Role may get/patch only that Secret). Unchanged text
    writes nothing, so a no-op run leaves the Secret's resourceVersion alone."""

    KEY = "user.acl"

    def __init__(self, api: str, token_file: Path, ca_file: Path | None, namespace: str,
                 name: str) -> None:  # fmt: skip
        self.url = f"{api.rstrip('/')}/api/v1/namespaces/{namespace}/secrets/{name}"
        self.token_file, self.ca_file = token_file, ca_file

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.url, method=method)
        req.add_header("Authorization", f"Bearer {self.token_file.read_text().strip()}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/merge-patch+json")
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            with urllib.request.urlopen(req, data=data, timeout=15, context=ctx) as r:
                out: dict[str, Any] = json.loads(r.read())
                return out
        except urllib.error.HTTPError as e:
            raise RotationError(f"{method} {self.url}: {e.code} {e.read()[:300]!r}") from e
        except OSError as e:
            raise RotationError(f"{method} {self.url}: {e}") from e

    def read(self) -> str | None:
        data = self._call("GET").get("data") or {}
        return base64.b64decode(data[self.KEY]).decode() if self.KEY in data else None

    def write(self, text: str) -> None:
        if self.read() == text:
            return
        self._call("PATCH", {"data": {self.KEY: base64.b64encode(text.encode()).decode()}})
