"""The Redis ACL rotator (``python -m rotator``, issue 12) against a real Redis Cluster of 3
masters and 3 replicas (Debian's redis-server, what the platform's Redis part installs) and the
local platform's real Vault (KV v2, in a mount of its own per test).

Clients behave like the app's pods: each re-reads the password from Vault at a fixed interval
(the agent's re-render) and opens a new connection per request to a random node. A rotation
whose grace period exceeds that interval must refuse none of them; one shorter must (so the
test can see a refusal window). Nodes restarted mid-rotation load the durable ACL file.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import pytest
import redis

from rotator.redis_acl import sha
from tests.integration.conftest import ROOT, redis_auth_ok
from tests.toolchain import toolchain_env

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
USER = "ce_app"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class Cluster:
    admin: str
    acl: Path
    ports: list[int]
    confs: list[Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def seed(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"

    def admin_client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.admin, socket_timeout=5)

    def start(self, i: int) -> None:
        self.procs[i] = subprocess.Popen([str(REDIS_SERVER), str(self.confs[i])],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def wait_online(self, timeout: float = 60) -> None:
        """3 masters and 3 replicas, every node in cluster_state ok, no node loading, every
        replica's link to its master up."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                infos = [self.admin_client(p).info() for p in self.ports]
                states = {self.admin_client(p).cluster("info")["cluster_state"] for p in self.ports}
                last = (
                    states,
                    [(i["role"], i["loading"], i.get("master_link_status")) for i in infos],
                )
                if (
                    states == {"ok"}
                    and sorted(i["role"] for i in infos) == ["master"] * 3 + ["slave"] * 3
                    and all(i["loading"] == 0 and i.get("master_link_status", "up") == "up"
                            for i in infos)
                ):  # fmt: skip
                    return
            except (redis.RedisError, KeyError) as e:
                last = e
            time.sleep(0.2)
        raise AssertionError(f"cluster not online after {timeout}s: {last}")


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module (each test has its own Vault mount, so its own rotation)."""
    tmp_path = tmp_path_factory.mktemp("redis-cluster")
    for exe in (REDIS_SERVER, REDIS_CLI):
        if not exe.exists():
            pytest.fail(f"{exe} missing: run ./ce bootstrap (platform part redis)", pytrace=False)
    admin = secrets.token_hex(16)
    acl = tmp_path / "users.acl"
    # what the operator's ACL Secret starts as: the default user's line only
    acl.write_text(f"user default on #{sha(admin)} ~* &* +@all\n")
    free = _free_ports(12)
    ports, bus = free[:6], free[6:]
    confs = []
    for i in range(6):
        d = tmp_path / f"n{i}"
        d.mkdir()
        conf = d / "redis.conf"
        conf.write_text("\n".join([
            "bind 127.0.0.1", f"port {ports[i]}", f"cluster-port {bus[i]}",
            "cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000",
            f"dir {d}", f"aclfile {acl}", f"masterauth {admin}", 'save ""', "appendonly no", "",
        ]))  # fmt: skip
        confs.append(conf)
    c = Cluster(admin, acl, ports, confs, procs=[None] * 6)  # type: ignore[list-item]
    try:
        for i in range(6):
            c.start(i)
        for p in ports:
            _wait(lambda p=p: c.admin_client(p).ping())
        r = subprocess.run(
            [str(REDIS_CLI), "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            env={"REDISCLI_AUTH": admin, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        c.wait_online()
        yield c
    finally:
        for p in c.procs:
            if p is not None:
                p.kill()
                p.wait()


@pytest.fixture
def cluster(redis_cluster: Cluster) -> Cluster:
    redis_cluster.wait_online()
    return redis_cluster


def _wait(probe: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@dataclass
class Vault:
    client: hvac.Client
    mount: str
    env: dict[str, str]


@pytest.fixture
def vault() -> Iterator[Vault]:
    env = toolchain_env()
    client = hvac.Client(
        url=env.get("VAULT_ADDR", "http://127.0.0.1:8200"), token=env["VAULT_TOKEN"]
    )
    if not client.is_authenticated():
        pytest.fail(
            "the platform's Vault does not accept VAULT_TOKEN: run ./ce platform up", pytrace=False
        )
    mount = f"ce-rotator-test-{secrets.token_hex(4)}"
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    try:
        yield Vault(client, mount, env)
    finally:
        client.sys.disable_secrets_engine(mount)


def rotate(c: Cluster, v: Vault, *args: str, grace: float) -> subprocess.CompletedProcess[str]:
    env = dict(v.env, REDIS_PASSWORD=c.admin)
    return subprocess.run(
        [sys.executable, "-m", "rotator", "--seed", c.seed, "--acl-file", str(c.acl),
         "--kv-mount", v.mount, "--vault-addr", v.client.url, "--grace-seconds", str(grace),
         "--period-seconds", "3600", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _app_password(v: Vault) -> str:
    doc = v.client.secrets.kv.v2.read_secret_version(path="shared/redis-app", mount_point=v.mount,
                                                     raise_on_deleted_version=True)  # fmt: skip
    return str(doc["data"]["data"]["password"])


def _auth_ok(port: int, password: str) -> bool:
    return redis_auth_ok(port, USER, password)


class Clients:
    """App-like clients: the password re-read every ``render`` seconds, a new connection per
    request to a random node; counts requests and WRONGPASS refusals."""

    def __init__(self, c: Cluster, v: Vault, render: float, n: int = 6) -> None:
        self.c, self.v, self.render, self.n = c, v, render, n
        self.stop = threading.Event()
        self.requests = self.refused = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        password, read_at = _app_password(self.v), time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - read_at >= self.render:
                password, read_at = _app_password(self.v), time.monotonic()
            port = random.choice(self.c.ports)
            try:
                r = redis.Redis(port=port, username=USER, password=password, socket_timeout=5)
                r.ping()
                r.close()
                with self.lock:
                    self.requests += 1
            except redis.AuthenticationError:
                with self.lock:
                    self.requests += 1
                    self.refused += 1
            except redis.RedisError as e:
                with self.lock:
                    self.errors.append(f"{port}: {e}")

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_acl_users_are_per_node_which_is_why_a_single_address_cannot_rotate(
    cluster: Cluster,
) -> None:
    first, second = cluster.ports[0], cluster.ports[1]
    cluster.admin_client(first).execute_command("ACL SETUSER", USER, "on", ">pw", "~*", "+@all")
    assert _auth_ok(first, "pw")
    assert not _auth_ok(second, "pw")


def test_rotation_under_load_refuses_no_client_and_ends_with_the_new_password_only(
    cluster: Cluster, vault: Vault
) -> None:
    boot = rotate(cluster, vault, "--until-idle", grace=3)
    assert boot.returncode == 0, boot.stderr
    old = _app_password(vault)
    held = redis.Redis(
        port=cluster.ports[0], username=USER, password=old, single_connection_client=True
    )
    assert held.ping()
    with Clients(cluster, vault, render=1.0) as clients:
        time.sleep(1)
        r = rotate(cluster, vault, "--now", "--until-idle", grace=3)
        time.sleep(1)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "idle"
    new = _app_password(vault)
    assert new != old
    print(f"rotation under load: {clients.requests} fresh logins, {clients.refused} refused")
    assert clients.errors == []
    assert clients.requests > 100, clients.requests
    assert clients.refused == 0, f"{clients.refused} of {clients.requests} refused"
    for p in cluster.ports:
        hashes = cluster.admin_client(p).acl_getuser(USER)["passwords"]
        assert hashes == [sha(new)], p
        assert _auth_ok(p, new) and not _auth_ok(p, old)
    assert held.ping()  # an authenticated connection outlives the removal
    text = cluster.acl.read_text()
    assert sha(new) in text and sha(old) not in text and new not in text


def test_a_grace_shorter_than_the_re_render_interval_refuses_clients(
    cluster: Cluster, vault: Vault
) -> None:
    """The negative control: the load test above can see a refusal window."""
    assert rotate(cluster, vault, "--until-idle", grace=3).returncode == 0
    with Clients(cluster, vault, render=4.0) as clients:
        time.sleep(0.5)
        r = rotate(cluster, vault, "--now", "--until-idle", grace=0.2)
        time.sleep(2)
    assert r.returncode == 0, r.stderr
    print(f"grace < re-render: {clients.requests} fresh logins, {clients.refused} refused")
    assert clients.refused > 0, clients.requests


def test_a_node_restarted_mid_rotation_loads_both_passwords_and_keeps_default_protected(
    cluster: Cluster, vault: Vault
) -> None:
    assert rotate(cluster, vault, "--until-idle", grace=3).returncode == 0
    old = _app_password(vault)
    r = rotate(cluster, vault, "--now", grace=60)  # one step: published, grace running
    assert (r.returncode, r.stdout.strip()) == (0, "published"), r.stderr
    new = _app_password(vault)
    replica = next(
        i for i, p in enumerate(cluster.ports)
        if cluster.admin_client(p).info("replication")["role"] == "slave"
    )  # fmt: skip
    port = cluster.ports[replica]
    with contextlib.suppress(redis.ConnectionError):  # it closes the connection
        cluster.admin_client(port).shutdown(nosave=True)
    cluster.procs[replica].wait(timeout=30)
    cluster.start(replica)
    _wait(lambda: cluster.admin_client(port).ping())
    cluster.wait_online()
    assert _auth_ok(port, old) and _auth_ok(port, new)
    # the durable ACL keeps requirepass meaningful: no unauthenticated access
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5).ping()


def test_bad_input_is_refused_before_anything_is_touched(cluster: Cluster, vault: Vault) -> None:
    env = {k: v for k, v in vault.env.items() if k != "REDIS_PASSWORD"}
    r = subprocess.run([sys.executable, "-m", "rotator", "--seed", cluster.seed,
                        "--acl-file", str(cluster.acl)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "REDIS_PASSWORD" in r.stderr
    before = cluster.acl.read_text()
    r = rotate(cluster, vault, "--seed", f"127.0.0.1:{_free_ports(1)[0]}", grace=3)
    assert r.returncode == 1 and "Redis seed" in r.stderr, r.stderr
    assert cluster.acl.read_text() == before
    with pytest.raises(hvac.exceptions.InvalidPath):  # nothing published
        _app_password(vault)
