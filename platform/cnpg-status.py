#!/usr/bin/env python3
"""What CloudNativePG's instance manager answers the operator, for kwok pods (loopback only).

    cnpg-status.py --listen 127.0.0.1:18000 --apiserver https://127.0.0.1:6443 --pki DIR

Under kwok no container runs, so nothing in an instance pod answers the operator's
``GET https://<pod IP>:8000/pg/status``; the operator then requeues forever and never creates
instances 2 and 3 (docs/plans/cnpg-local-instances.md). netns-run.py relays the operator's
connections to pod IPs here, each prefixed with a PROXY v1 line naming the pod IP it dialled.
This answers as the instance manager would, for the pod behind that IP:

- TLS 1.3 with the cluster's ``<cluster>-server`` key pair (what the instance manager serves;
  the operator checks the chain against ``<cluster>-ca`` only);
- ``/pg/status``: exactly one primary (``currentPrimary``, else ``targetPrimary``), every
  instance at the same LSN, the operator's own executable hash;
- and the one Cluster status write only the instance manager makes: ``currentPrimary`` once the
  target primary's pod is Ready (instance_startup.go "marking myself as primary").

It proves orchestration, admission and zone spread, not PostgreSQL replication: nothing streams.
Stdlib only; it talks to the kube-apiserver with the platform's admin client certificate.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

LSN = "0/5000060"
CONFIG_HASH = "ce-local-platform"


# ------------------------------------------------------------------ pure
def parse_proxy_v1(line: bytes) -> str:
    """Destination address of a PROXY protocol v1 header line (``PROXY TCP4 src dst sp dp``)."""
    parts = line.decode("ascii").strip().split(" ")
    if len(parts) != 6 or parts[0] != "PROXY" or parts[1] not in ("TCP4", "TCP6"):
        raise ValueError(f"not a PROXY v1 line: {line!r}")
    return parts[3]


def primary_of(cluster: dict[str, Any]) -> str:
    st = cluster.get("status") or {}
    return str(st.get("currentPrimary") or st.get("targetPrimary") or "")


def pg_status(pod: str, cluster: dict[str, Any]) -> dict[str, Any]:
    """The instance manager's PostgresqlStatus for ``pod`` (the fields the operator reads)."""
    st = cluster.get("status") or {}
    uid = cluster.get("metadata", {}).get("uid", "")
    primary = pod == primary_of(cluster)
    out: dict[str, Any] = {
        "isPrimary": primary,
        # constant per cluster, 19 digits like initdb's system identifier
        "systemID": str(int(uid.replace("-", "")[:15] or "0", 16) % 10**19).rjust(19, "7"),
        "timeLineID": 1,
        "mightBeUnavailable": False,
        "pendingRestart": False,
        "pendingRestartForDecrease": False,
        "isPgRewindRunning": False,
        "replayPaused": False,
        "executableHash": st.get("operatorHash", "") or "unknown",
        "instanceArch": "amd64",
        "isInstanceManagerUpgrading": False,
        "loadedConfigurationHash": CONFIG_HASH,
        "isWalReceiverActive": not primary,
    }
    if primary:
        out["currentLsn"] = LSN
        out["replicationInfo"] = [
            {
                "applicationName": name,
                "state": "streaming",
                "syncState": "async",
                "receivedLsn": LSN,
                "writeLsn": LSN,
                "flushLsn": LSN,
                "replayLsn": LSN,
            }
            for name in st.get("instanceNames") or []
            if name != pod
        ]
    else:
        out["receivedLsn"] = LSN
        out["replayLsn"] = LSN
    return out


# ------------------------------------------------------------------ kube API
class Kube:
    def __init__(self, server: str, pki: str) -> None:
        u = urllib.parse.urlsplit(server)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 443
        self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))

    def request(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if ctype:
                headers["Content-Type"] = ctype
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {raw[:200]!r}")
            return json.loads(raw)
        finally:
            conn.close()

    def pod_by_ip(self, ip: str) -> dict[str, Any] | None:
        q = urllib.parse.urlencode(
            {"fieldSelector": f"status.podIP={ip}", "labelSelector": "cnpg.io/podRole=instance"}
        )
        items = self.request("GET", f"/api/v1/pods?{q}").get("items") or []
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return live[0] if live else None

    def cluster(self, ns: str, name: str) -> dict[str, Any]:
        return self.request("GET", f"/apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{name}")

    def secret(self, ns: str, name: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/namespaces/{ns}/secrets/{name}")


def _ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def mark_primaries(kube: Kube) -> None:
    """currentPrimary := targetPrimary once that pod is Ready (the instance manager's write)."""
    items = kube.request("GET", "/apis/postgresql.cnpg.io/v1/clusters").get("items") or []
    for c in items:
        st = c.get("status") or {}
        target, current = st.get("targetPrimary"), st.get("currentPrimary")
        if not target or target == current or target.startswith("pending"):
            continue
        ns = c["metadata"]["namespace"]
        try:
            pod = kube.request("GET", f"/api/v1/namespaces/{ns}/pods/{target}")
        except RuntimeError:
            continue
        if not _ready(pod):
            continue
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kube.request(
            "PATCH",
            f"/apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{c['metadata']['name']}/status",
            {"status": {"currentPrimary": target, "currentPrimaryTimestamp": now}},
            "application/merge-patch+json",
        )
        print(f"{ns}/{c['metadata']['name']}: currentPrimary={target}", flush=True)


# ------------------------------------------------------------------ server
def instance(kube: Kube, ip: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The live instance pod at ``ip`` and its Cluster, read for every request: kwok reuses pod
    IPs and the operator keeps connections open, so what was true when a connection opened (a
    pod name, a primary) may no longer be."""
    pod = kube.pod_by_ip(ip)
    if pod is None:
        return None
    meta = pod["metadata"]
    return pod, kube.cluster(meta["namespace"], meta["labels"]["cnpg.io/cluster"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kube: Kube
    ip: str = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/pg/status":
            found = instance(self.kube, self.ip)
            if found is None:  # the pod is gone: no instance manager answers
                body, code = b"no instance at this address", 503
            else:
                pod, cluster = found
                body, code = json.dumps(pg_status(pod["metadata"]["name"], cluster)).encode(), 200
        elif path in ("/healthz", "/readyz", "/startupz"):
            body, code = b"OK", 200
        else:
            body, code = b"not found", 404
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if code == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Relayed(socketserver.BaseRequestHandler):
    kube: Kube
    certs: str

    def handle(self) -> None:
        raw: socket.socket = self.request
        line = b""
        while not line.endswith(b"\r\n") and len(line) < 108:
            ch = raw.recv(1)
            if not ch:
                return
            line += ch
        ip = parse_proxy_v1(line)
        found = instance(self.kube, ip)
        if found is None:
            return  # not an instance pod: close, as an unreachable address would
        pod, cluster = found
        ns, cname = pod["metadata"]["namespace"], cluster["metadata"]["name"]
        secret_name = ((cluster.get("status") or {}).get("certificates") or {}).get(
            "serverTLSSecret"
        ) or f"{cname}-server"
        ctx = self._context(ns, secret_name)
        with ctx.wrap_socket(raw, server_side=True) as tls:
            handler = type("H", (Handler,), {"kube": self.kube, "ip": ip})
            handler(tls, self.client_address, self.server)

    def _context(self, ns: str, name: str) -> ssl.SSLContext:
        data = self.kube.secret(ns, name)["data"]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        with tempfile.TemporaryDirectory(dir=self.certs) as d:
            crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
            for path, k in ((crt, "tls.crt"), (key, "tls.key")):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64decode(data[k]))
            ctx.load_cert_chain(crt, key)
        return ctx


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:18000")
    ap.add_argument("--apiserver", default="https://127.0.0.1:6443")
    ap.add_argument("--pki", required=True, help="dir with ca.crt, admin.crt, admin.key")
    ap.add_argument("--certs", required=True, help="private dir for the per-request key files")
    a = ap.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    if not host.startswith("127."):
        ap.error("--listen must be a loopback address")
    os.makedirs(a.certs, mode=0o700, exist_ok=True)
    kube = Kube(a.apiserver, a.pki)
    handler = type("R", (Relayed,), {"kube": kube, "certs": a.certs})
    srv = Server((host, int(port)), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"cnpg-status: listening on {a.listen}", flush=True)
    while True:
        try:
            mark_primaries(kube)
        except Exception as exc:  # the apiserver restarting, a CRD not there yet
            print(f"mark_primaries: {exc}", flush=True)
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
