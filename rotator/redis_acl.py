"""Rotating the application's Redis ACL user on a Redis Cluster, without a refusal window.

Why not Vault's Redis database plugin (docs/plans/redis-cluster-rotation.md): Redis ACLs are per
node and never propagate, the plugin talks to one address, and it replaces the password at
once (``RESETPASS >new``), so clients still holding the old one are refused until they re-read.

Here Vault stays the store the pods read from (KV v2, ``<kv>/shared/redis-app``) and this
rotator is its only writer. Each run makes one idempotent step of a state machine kept in a
second KV path, written with check-and-set (so two runners cannot both advance it):

    idle       repair drift (every node holds exactly the current password); when a rotation
               is due, generate the next password and record it *before touching Redis*
    adding     every node accepts old and new; then publish new to the app path
    published  once the grace period (longer than the agents' re-render interval) has passed,
               every node accepts new only

Before any node changes, the durable ACL (the file or Secret the nodes load at start) is
rewritten with the same password set, hashes only, so a node that restarts mid-rotation comes
back right. It always carries a ``user default`` line: without one Redis ignores
``requirepass`` and the default user becomes ``nopass +@all``.

Pure: the effects (nodes, KV, the durable ACL, the clock, the password source) are passed in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

#: the application user's rules apart from its passwords (what the app may run).
APP_RULES = ("~*", "&*", "+@all", "-@dangerous")
#: the default user: the operator, replication (masterauth) and probes authenticate as it.
DEFAULT_RULES = ("~*", "&*", "+@all")
PHASES = ("idle", "adding", "published")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha(password: str) -> str:
    """Redis' ACL password hash (SHA-256, hex)."""
    return hashlib.sha256(password.encode()).hexdigest()


class RotationError(Exception):
    """A run that cannot make progress now (a node down, a conflict); nothing unsafe was done."""


class CasConflict(RotationError):
    """Another runner wrote the state since it was read."""


@dataclass(frozen=True)
class State:
    """The rotation state (KV ``ops/redis-rotation``)."""

    phase: str
    next: str | None = None
    """The pending password (plaintext: it lives in Vault only), set from ``adding`` on."""
    prev_sha: str | None = None
    """Hash of the password being replaced (None at bootstrap: there is none)."""
    published_at: float = 0.0
    rotated_at: float = 0.0

    def to_doc(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> State:
        phase = str(doc.get("phase"))
        if phase not in PHASES:
            raise RotationError(f"rotation state: unknown phase {phase!r} (one of {PHASES})")
        nxt, prev = doc.get("next"), doc.get("prev_sha")
        return cls(
            phase=phase,
            next=str(nxt) if nxt is not None else None,
            prev_sha=str(prev) if prev is not None else None,
            published_at=float(doc.get("published_at", 0.0)),  # type: ignore[arg-type]
            rotated_at=float(doc.get("rotated_at", 0.0)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Node:
    address: str
    """host:port"""
    role: str
    health: str
    """online | loading | fail (Redis' CLUSTER SHARDS)."""


class Nodes(Protocol):
    def discover(self) -> list[Node]:
        """Every node of the cluster, from a seed."""
        ...

    def set_app_hashes(self, node: Node, user: str, hashes: frozenset[str]) -> None:
        """``ACL SETUSER user on RESETPASS #h... <rules>`` on one node (atomic, idempotent)."""
        ...

    def app_hashes(self, node: Node, user: str) -> frozenset[str]:
        """The password hashes ``user`` has on one node (empty if it does not exist)."""
        ...


class Store(Protocol):
    def read_state(self) -> tuple[State | None, int]:
        """The state and its KV version (0: none yet)."""
        ...

    def write_state(self, state: State, cas: int) -> int:
        """Write with check-and-set; returns the new version; raises CasConflict."""
        ...

    def read_app(self) -> str | None:
        """The published password (what the pods read)."""
        ...

    def write_app(self, user: str, password: str) -> None: ...


class AclSink(Protocol):
    def write(self, text: str) -> None:
        """Replace the durable ACL (the nodes' aclfile / the operator's ``spec.acl`` Secret)."""
        ...


@dataclass(frozen=True)
class Config:
    user: str
    """The application's ACL user (``ce_app``)."""
    admin_password_sha: str
    """Hash of the default user's password (``REDIS_PASSWORD``); kept in the durable ACL."""
    expected_nodes: int
    """masters + replicas: a run stops unless every one of them is online."""
    period_seconds: float
    grace_seconds: float


def _default_line(admin_password_sha: str) -> str:
    """The default user's line: without it Redis ignores requirepass (``nopass +@all``)."""
    if not _HEX64.match(admin_password_sha):
        # a bad aclfile aborts Redis at start: never write one
        raise RotationError("the default user's password hash must be 64 hex digits")
    return " ".join(("user default on", f"#{admin_password_sha}", *DEFAULT_RULES))


def acl_text(cfg: Config, hashes: frozenset[str]) -> str:
    """Pure: the durable ACL file: the default user's line first, then the app user's."""
    default = _default_line(cfg.admin_password_sha)
    bad = [h for h in hashes if not _HEX64.match(h)]
    if bad or not hashes:
        raise RotationError(f"refusing to write an ACL with hashes {sorted(hashes)} / {bad}")
    app = " ".join((f"user {cfg.user} on", *(f"#{h}" for h in sorted(hashes)), *APP_RULES))
    return f"{default}\n{app}\n"


def initial_acl_text(admin_password_sha: str, user: str) -> str:
    """Pure: the durable ACL before the first rotation: the default user protected, the app
    user present but off (the rotator's first run gives it its password)."""
    return f"{_default_line(admin_password_sha)}\nuser {user} off {' '.join(APP_RULES)}\n"


@dataclass
class Rotator:
    cfg: Config
    nodes: Nodes
    store: Store
    sink: AclSink
    clock: Callable[[], float]
    new_password: Callable[[], str]
    log: Callable[[str], None] = lambda _msg: None

    def converge(self, hashes: frozenset[str]) -> None:
        """Every node (and the durable ACL) holds exactly ``hashes`` for the app user."""
        found = self.nodes.discover()
        down = [f"{n.address} ({n.health})" for n in found if n.health != "online"]
        if down or len(found) != self.cfg.expected_nodes:
            raise RotationError(
                f"cluster not ready: {len(found)}/{self.cfg.expected_nodes} nodes, "
                f"not online: {', '.join(down) or 'none'}; retry later (both passwords stay valid)"
            )
        self.sink.write(acl_text(self.cfg, hashes))
        for n in found:
            if self.nodes.app_hashes(n, self.cfg.user) != hashes:
                self.nodes.set_app_hashes(n, self.cfg.user, hashes)
        wrong = [n.address for n in found if self.nodes.app_hashes(n, self.cfg.user) != hashes]
        if wrong:
            raise RotationError(f"nodes did not take the password set: {', '.join(wrong)}")

    def step(self, force: bool = False) -> str:
        """One idempotent step; returns the phase it left the state in."""
        state, version = self.store.read_state()
        now = self.clock()
        if state is None and self.store.read_app() is not None:
            # the state was lost, the published credential was not: adopt it (pods hold it)
            state = State("idle", rotated_at=now)
            version = self.store.write_state(state, version)
            self.log("no rotation state: adopted the published password")
        elif state is None:
            # bootstrap: the first password, added like any rotation's next one
            state = State("adding", next=self.new_password())
            version = self.store.write_state(state, version)
            self.log("bootstrap: first password recorded")
        if state.phase == "idle":
            current = self.store.read_app()
            if current is None:
                raise RotationError("state idle but no published password: restore the app path")
            self.converge(frozenset({sha(current)}))
            if not force and now < state.rotated_at + self.cfg.period_seconds:
                return "idle"
            state = State("adding", next=self.new_password(), prev_sha=sha(current),
                          rotated_at=state.rotated_at)  # fmt: skip
            version = self.store.write_state(state, version)
            self.log("rotation due: next password recorded")
        nxt = state.next
        if nxt is None:
            raise RotationError(f"rotation state {state.phase!r} without its next password")
        both = frozenset(h for h in (state.prev_sha, sha(nxt)) if h)
        if state.phase == "adding":
            self.converge(both)
            if self.store.read_app() != nxt:
                self.store.write_app(self.cfg.user, nxt)
            if state.prev_sha is None:
                # the first password: no client holds an older one, nothing to wait out
                self.store.write_state(State("idle", rotated_at=now), version)
                self.log("first password published on every node")
                return "idle"
            state = replace(state, phase="published", published_at=now)
            version = self.store.write_state(state, version)
            self.log("every node accepts old and new; new published")
            return "published"
        # published
        if now < state.published_at + self.cfg.grace_seconds:
            self.converge(both)  # drift repair: a node restarted from an old ACL
            return "published"
        self.converge(frozenset({sha(nxt)}))
        self.store.write_state(State("idle", rotated_at=state.published_at), version)
        self.log("grace over: the old password is gone from every node")
        return "idle"


def run_until_idle(rotator: Rotator, force: bool, wait: Callable[[float], None],
                   poll_seconds: float) -> str:  # fmt: skip
    """Step until idle (``./ce`` and tests; the CronJob steps once). ``force``: a whole new
    rotation, after finishing one already in flight."""
    phase = rotator.step()
    for forced in (False, force):
        if forced:
            phase = rotator.step(force=True)
        while phase != "idle":
            wait(poll_seconds)
            phase = rotator.step()
    return phase
