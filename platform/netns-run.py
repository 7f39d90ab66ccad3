#!/usr/bin/env python3
"""Run a command in its own network namespace whose only way out is TCP to chosen loopback ports.

    netns-run.py --pidfile FILE --forward 6443 [--forward PORT ...] -- CMD [ARG...]

Why: some controllers listen on every interface and cannot be told otherwise (the CloudNativePG
operator's webhook server binds ":<port>"). Inside a fresh namespace nothing they open is
reachable from the host; 127.0.0.1:PORT inside is forwarded to 127.0.0.1:PORT of the host (the
kube-apiserver), from threads that switched back to the host's namespace (setns is per thread).
The command's pid goes to FILE (platform/local.sh tracks and stops it by that pid); this process
exits with the command.

    --local-cidr 10.0.0.0/24 --expose 8000:18000

delivers every address of the CIDR locally inside the namespace (kwok's pod IPs, which nothing
routes) and relays connections to PORT on any of them to 127.0.0.1:HOSTPORT of the host, each
behind a PROXY v1 line naming the address dialled: how the CloudNativePG operator reaches its
instances' status endpoint (platform/cnpg-status.py answers for the pod behind that address).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve(listener: socket.socket, port: int, host_ns: int, proxy: bool = False) -> None:
    """Relay each connection to 127.0.0.1:port of the host. ``proxy``: first a PROXY v1 line
    naming the address that was dialled inside (a pod IP: the host side answers for that pod)."""

    def handle(conn: socket.socket) -> None:
        try:
            (src, sport), (dst, dport) = conn.getpeername()[:2], conn.getsockname()[:2]
            _check(libc.setns(host_ns, CLONE_NEWNET), "setns(host)")  # this thread only
            up = socket.create_connection(("127.0.0.1", port))
            if proxy:
                up.sendall(f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode())
        except OSError:
            conn.close()
            return
        threading.Thread(target=_pipe, args=(up, conn), daemon=True).start()
        _pipe(conn, up)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--forward", type=int, action="append", default=[])
    ap.add_argument(
        "--local-cidr",
        action="append",
        default=[],
        help="addresses delivered locally inside the namespace (kwok's pod IPs)",
    )
    ap.add_argument(
        "--expose",
        action="append",
        default=[],
        metavar="PORT:HOSTPORT",
        help="PORT on any local address inside -> 127.0.0.1:HOSTPORT of the host, PROXY v1",
    )
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    # a daemon must not keep what its starter held open, e.g. flock's lock on the platform
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    _check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for cidr in a.local_cidr:
        subprocess.run(["ip", "route", "add", "local", cidr, "dev", "lo"], check=True)
    for spec in a.expose:
        port, _, host_port = spec.partition(":")
        # every address of the namespace: only what its own processes dial can reach it
        ls = socket.create_server(("0.0.0.0", int(port)))
        threading.Thread(
            target=_serve, args=(ls, int(host_port), host_ns, True), daemon=True
        ).start()
    for port in a.forward:
        ls = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=_serve, args=(ls, port, host_ns), daemon=True).start()
    child = subprocess.Popen(cmd)
    with open(a.pidfile, "w") as f:
        f.write(f"{child.pid}\n")
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
