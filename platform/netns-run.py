#!/usr/bin/env python3
"""Run a command in its own network namespace whose only way out is TCP to chosen loopback ports.

    netns-run.py --pidfile FILE --forward 6443 [--forward PORT ...] -- CMD [ARG...]

Why: some controllers listen on every interface and cannot be told otherwise (the CloudNativePG
operator's webhook server binds ":<port>"). Inside a fresh namespace nothing they open is
reachable from the host; 127.0.0.1:PORT inside is forwarded to 127.0.0.1:PORT of the host (the
kube-apiserver), from threads that switched back to the host's namespace (setns is per thread).
The command's pid goes to FILE (platform/local.sh tracks and stops it by that pid); this process
exits with the command.
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


def _serve(listener: socket.socket, port: int, host_ns: int) -> None:
    def handle(conn: socket.socket) -> None:
        _check(libc.setns(host_ns, CLONE_NEWNET), "setns(host)")  # this thread only
        try:
            up = socket.create_connection(("127.0.0.1", port))
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
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    # a daemon must not keep what its starter held open, e.g. flock's lock on the platform
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    _check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
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
