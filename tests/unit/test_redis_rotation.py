"""rotator.redis_acl: the Redis Cluster rotation state machine (issue 12), over in-memory fakes.

The fakes hold what the real effects change (each node's hashes, the KV state and app path with
versions, the durable ACL text). A crash is injected before every single effect of a full
rotation in turn; each time the run is resumed, and after every effect the invariants a client
relies on are checked: the published password, and any password superseded less than a grace
period ago, is accepted by every node and by the durable ACL a restarting node loads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from rotator.redis_acl import (
    CasConflict,
    Config,
    Node,
    RotationError,
    Rotator,
    State,
    acl_text,
    run_until_idle,
    sha,
)

ADMIN = "admin-password"
CFG = Config(user="ce_app", admin_password_sha=sha(ADMIN), expected_nodes=6,
             period_seconds=3600, grace_seconds=60)  # fmt: skip


class Crash(Exception):
    pass


@dataclass
class World:
    """Six nodes, a KV store with versions and a durable ACL; counts and can fail effects."""

    nodes: dict[str, frozenset[str]] = field(
        default_factory=lambda: {f"10.0.0.{i}:6379": frozenset() for i in range(1, 7)}
    )
    health: dict[str, str] = field(default_factory=dict)
    state: dict[str, object] | None = None
    state_version: int = 0
    app: str | None = None
    acl: str = ""
    now: float = 1000.0
    effects: int = 0
    crash_at: int | None = None
    published: list[tuple[float, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def effect(self) -> None:
        self.effects += 1
        if self.crash_at is not None and self.effects == self.crash_at:
            self.crash_at = None
            raise Crash(f"crash before effect {self.effects}")

    def must_accept(self) -> set[str]:
        """Passwords a client may still hold: the published one, and any superseded less than
        a grace period ago (agents re-render within it)."""
        out = set()
        for i, (_at, pw) in enumerate(self.published):
            nxt = self.published[i + 1][0] if i + 1 < len(self.published) else None
            if nxt is None or self.now < nxt + CFG.grace_seconds:
                out.add(pw)
        return out

    def check(self, where: str) -> None:
        acl_hashes = {w[1:] for line in self.acl.splitlines()[1:] for w in line.split()
                      if w.startswith("#")}  # fmt: skip
        for pw in self.must_accept():
            for addr, hashes in self.nodes.items():
                if sha(pw) not in hashes:
                    self.violations.append(f"{where}: {addr} refuses a live password")
            if sha(pw) not in acl_hashes:
                self.violations.append(f"{where}: a restarted node would refuse a live password")

    # Nodes
    def discover(self) -> list[Node]:
        return [Node(a, "master", self.health.get(a, "online")) for a in self.nodes]

    def set_app_hashes(self, node: Node, user: str, hashes: frozenset[str]) -> None:
        self.effect()
        self.nodes[node.address] = hashes
        self.check("set_app_hashes")

    def app_hashes(self, node: Node, user: str) -> frozenset[str]:
        return self.nodes[node.address]

    # Store
    def read_state(self) -> tuple[State | None, int]:
        return (State.from_doc(self.state) if self.state else None), self.state_version

    def write_state(self, state: State, cas: int) -> int:
        self.effect()
        if cas != self.state_version:
            raise CasConflict(f"cas {cas} != {self.state_version}")
        self.state, self.state_version = state.to_doc(), self.state_version + 1
        self.check("write_state")
        return self.state_version

    def read_app(self) -> str | None:
        return self.app

    def write_app(self, user: str, password: str) -> None:
        self.effect()
        self.app = password
        self.published.append((self.now, password))
        self.check("write_app")

    # AclSink
    def write(self, text: str) -> None:
        self.effect()
        self.acl = text
        self.check("acl")


def rotator(w: World) -> Rotator:
    counter = itertools.count(1)
    return Rotator(CFG, nodes=w, store=w, sink=w, clock=lambda: w.now,
                   new_password=lambda: f"pw-{next(counter)}-{w.effects}")  # fmt: skip


def full_rotation(w: World, r: Rotator) -> None:
    """Bootstrap, then one forced rotation, each to idle, the clock moving in grace-sized steps."""
    for force in (False, True):
        phase = r.step(force=force)
        while phase != "idle":
            w.now += CFG.grace_seconds / 2
            phase = r.step()


def rotated() -> tuple[World, Rotator]:
    """A world after the bootstrap and one rotation, and its rotator."""
    w = World()
    r = rotator(w)
    full_rotation(w, r)
    return w, r


def test_bootstrap_then_rotation_leaves_exactly_the_new_password_everywhere() -> None:
    w = World()
    full_rotation(w, rotator(w))
    assert w.violations == []
    assert len(w.published) == 2
    new = w.app
    assert new is not None and new == w.published[-1][1]
    assert set(w.nodes.values()) == {frozenset({sha(new)})}
    assert w.acl == acl_text(CFG, frozenset({sha(new)}))
    assert w.state is not None and w.state["phase"] == "idle"
    assert w.state["rotated_at"] == w.published[-1][0]  # the period counts from the publish


def test_old_password_stays_valid_through_the_grace_period() -> None:
    w, r = rotated()
    old = w.app
    assert r.step(force=True) == "published"
    assert w.app != old
    w.now += CFG.grace_seconds - 1
    assert r.step() == "published"
    assert all(sha(str(old)) in h for h in w.nodes.values())  # still accepted
    w.now += 2
    assert r.step() == "idle"
    assert all(sha(str(old)) not in h for h in w.nodes.values())  # now refused


def _effects_of_a_full_rotation() -> int:
    w = World()
    full_rotation(w, rotator(w))
    return w.effects


@pytest.mark.parametrize("crash_at", range(1, _effects_of_a_full_rotation() + 1))
def test_a_crash_before_any_effect_resumes_without_a_refusal(crash_at: int) -> None:
    w = World(crash_at=crash_at)
    r = rotator(w)
    with pytest.raises(Crash):
        full_rotation(w, r)
    # the next run (a new process: a new rotator over the same world) finishes the job
    r = rotator(w)
    run_until_idle(r, force=False, wait=lambda s: setattr(w, "now", w.now + s),
                   poll_seconds=CFG.grace_seconds / 2)  # fmt: skip
    if len(w.published) < 2:  # crashed during the bootstrap: the rotation is still to come
        full_rotation(w, r)
    assert w.violations == []
    assert set(w.nodes.values()) == {frozenset({sha(str(w.app))})}
    assert w.state is not None and w.state["phase"] == "idle"


def test_rerun_when_idle_and_not_due_changes_nothing() -> None:
    w, r = rotated()
    before = (dict(w.nodes), w.state_version, w.app)
    w.now += 10
    assert r.step() == "idle"
    assert (dict(w.nodes), w.state_version, w.app) == before
    assert w.effects > 0  # the durable ACL is re-asserted (drift repair), with the same text


def test_rotation_is_due_after_the_period_from_config() -> None:
    w, r = rotated()
    # the last step ended the grace period: rotated_at (the publish time) is a grace ago
    w.now += CFG.period_seconds - CFG.grace_seconds - 1
    assert r.step() == "idle"
    w.now += 1
    assert r.step() == "published"


def test_drift_on_one_node_is_repaired() -> None:
    w, r = rotated()
    first = next(iter(w.nodes))
    w.nodes[first] = frozenset()  # e.g. restarted from a stale aclfile
    r.step()
    assert w.nodes[first] == frozenset({sha(str(w.app))})


def test_a_node_down_blocks_the_rotation_with_both_passwords_valid() -> None:
    w, r = rotated()
    old = w.app
    assert r.step(force=True) == "published"
    w.now += CFG.grace_seconds + 1
    down = next(iter(w.nodes))
    w.health[down] = "loading"
    with pytest.raises(RotationError, match=r"not online: 10\.0\.0\.1:6379 \(loading\)"):
        r.step()
    assert all(sha(str(old)) in h for h in w.nodes.values())
    w.health.clear()
    assert r.step() == "idle"


def test_a_missing_node_blocks_it_too() -> None:
    w = World()
    del w.nodes[next(iter(w.nodes))]
    with pytest.raises(RotationError, match="5/6 nodes"):
        rotator(w).step()
    assert w.app is None and all(h == frozenset() for h in w.nodes.values())


def test_two_runners_cannot_both_advance() -> None:
    w, r = rotated()
    stale_state, stale_version = w.read_state()
    r.step(force=True)  # the other runner went first
    with pytest.raises(CasConflict):
        w.write_state(State("adding", next="x"), stale_version)
    assert stale_state is not None and stale_state.phase == "idle"


def test_the_durable_acl_protects_the_default_user_and_holds_hashes_only() -> None:
    text = acl_text(CFG, frozenset({sha("a"), sha("b")}))
    default, app = text.splitlines()
    # without this line Redis ignores requirepass: the default user would be nopass +@all
    assert default == f"user default on #{sha(ADMIN)} ~* &* +@all"
    assert app.startswith("user ce_app on #") and app.endswith("~* &* +@all -@dangerous")
    assert "nopass" not in text and ">" not in text and "a" not in app.split()


def test_a_bad_hash_is_never_written() -> None:
    with pytest.raises(RotationError):
        acl_text(CFG, frozenset({"not-a-hash"}))
    with pytest.raises(RotationError):
        acl_text(CFG, frozenset())


def test_unknown_phase_in_the_state_is_a_clear_error() -> None:
    with pytest.raises(RotationError, match="unknown phase 'rotating'"):
        State.from_doc({"phase": "rotating"})


def test_rotate_now_while_a_rotation_is_in_flight_finishes_it_then_rotates_again() -> None:
    w, r = rotated()
    assert r.step(force=True) == "published"
    in_flight = w.app
    phase = run_until_idle(r, force=True, wait=lambda s: setattr(w, "now", w.now + s),
                           poll_seconds=CFG.grace_seconds / 2)  # fmt: skip
    assert phase == "idle" and w.app != in_flight and len(w.published) == 4
    assert set(w.nodes.values()) == {frozenset({sha(str(w.app))})}
    assert w.violations == []


def test_a_lost_state_adopts_the_published_password_instead_of_replacing_it() -> None:
    """Pods hold the published password: losing the rotation state must not revoke it."""
    w, r = rotated()
    held = w.app
    w.state, w.state_version = None, 0  # its KV path deleted (metadata and all)
    assert r.step() == "idle"
    assert w.app == held
    assert set(w.nodes.values()) == {frozenset({sha(str(held))})}
    assert w.state is not None and w.state["phase"] == "idle" and w.violations == []
