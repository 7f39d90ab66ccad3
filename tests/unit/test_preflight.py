"""Cluster preflight: pure decision, the API edge against a fake API server, and the wiring
(nothing is registered when the cluster lacks something)."""

from __future__ import annotations

import json
import runpy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pytest
import yaml

from components import preflight as P
from components import settings as S
from components import state
from tests.unit.conftest import (
    ROOT,
    Capture,
    load_stack_raw,
    program_capture,
    run_mocked,
    set_obj,
    settings_for,
    with_secrets,
)

VERSIONS = P.read_versions()
ALL_CRDS = {crd for crd, _pin, _hint in P.CRDS.values()}
TOKEN = "preflight-test-token"


def test_crd_table_covers_every_custom_resource_the_program_registers() -> None:
    for stack in ("local", "prod"):
        for vault in (False, True):
            cap = program_capture(stack, vault=vault, generator="builtin")
            for r in cap.resources.values():
                api = r.inputs.get("apiVersion", "")
                if r.typ.startswith("kubernetes:") and "/" in api and "." in api.split("/")[0]:
                    group = api.split("/")[0]
                    if group.endswith(".k8s.io") or group in ("apps", "policy"):
                        continue
                    assert (group, r.inputs["kind"]) in P.CRDS, (stack, api, r.inputs["kind"])


def test_install_hints_carry_the_tested_versions() -> None:
    reqs = P.requirements(settings_for("local"), VERSIONS)
    by_crd = {r.crd: r.install for r in reqs}
    assert "v1.27.1" in by_crd["clusters.postgresql.cnpg.io"]
    assert "v1.27.0" in by_crd["virtualservices.networking.istio.io"]
    assert "v0.16.0" in by_crd["redisclusters.redis.redis.opstreelabs.in"]
    assert "v0.85.0" in by_crd["prometheusrules.monitoring.coreos.com"]


def test_missing_crd_is_named_with_how_to_install_it() -> None:
    reqs = P.requirements(settings_for("local"), VERSIONS)
    assert P.missing(reqs, ALL_CRDS, lambda _p: False) == []  # kwok: CRDs only
    msgs = P.missing(reqs, ALL_CRDS - {"clusters.postgresql.cnpg.io"}, lambda _p: True)
    assert len(msgs) == 1
    assert "missing CRD clusters.postgresql.cnpg.io" in msgs[0]
    assert "CloudNativePG operator v1.27.1" in msgs[0]


def test_existing_cluster_needs_the_declared_dataplane_and_operator_identities() -> None:
    s = settings_for("prod")
    assert s.mesh.dataplane == "cni"
    present = {
        "/apis/apps/v1/namespaces/kube-system/daemonsets/istio-cni-node",
        "/api/v1/namespaces/cnpg-system/serviceaccounts/cnpg-manager",
        "/api/v1/namespaces/redis-operator-system/serviceaccounts/redis-operator",
        "/api/v1/namespaces/istio-system/serviceaccounts/istio-ingressgateway-service-account",
        # issue 23: prod names its StorageClass (data.storageClass), which must exist
        "/apis/storage.k8s.io/v1/storageclasses/gp3",
    }
    reqs = P.requirements(s, VERSIONS)
    assert P.missing(reqs, ALL_CRDS, present.__contains__) == []
    msgs = P.missing(reqs, ALL_CRDS, (present - {min(present)}).__contains__)
    assert len(msgs) == 1 and "cnpg-system/cnpg-manager" in msgs[0]
    no_cni = P.missing(reqs, ALL_CRDS, lambda p: p in present and "istio-cni" not in p)
    assert len(no_cni) == 1 and "Istio CNI plugin" in no_cni[0]
    assert "restricted" in no_cni[0]
    raw = with_secrets(load_stack_raw("prod"))
    ambient = S.load_settings(set_obj(raw, "mesh", "dataplane", "ambient"), {}, None, "prod")
    msgs = P.missing(P.requirements(ambient, VERSIONS), ALL_CRDS, present.__contains__)
    assert len(msgs) == 1 and "ztunnel" in msgs[0]


class _FakeApi(BaseHTTPRequestHandler):
    crds: ClassVar[list[str]] = []
    objects: ClassVar[set[str]] = set()
    accepts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        body: dict[str, Any]
        if self.path == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions":
            type(self).accepts.append(self.headers.get("Accept", ""))
            body = {"items": [{"metadata": {"name": n}} for n in self.crds]}
        elif self.path in self.objects:
            body = {"metadata": {"name": self.path.rsplit("/", 1)[-1]}}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[tuple[type[_FakeApi], Path]]:
    handler = type("Handler", (_FakeApi,), {"crds": [], "objects": set(), "accepts": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    kc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "t",
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{srv.server_port}"}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    yield handler, path
    srv.shutdown()


def test_kube_api_lists_crds_and_looks_objects_up(fake_api: tuple[Any, Path]) -> None:
    handler, path = fake_api
    handler.crds = ["clusters.postgresql.cnpg.io"]
    handler.objects = {"/api/v1/namespaces/a/serviceaccounts/b"}
    api = P.KubeApi(P.load_kubeconfig(None, {"KUBECONFIG": str(path)}))
    assert api.crd_names() == {"clusters.postgresql.cnpg.io"}
    # names only (the full list carries every schema); a plain JSON answer is accepted too
    assert handler.accepts == [f"{P.METADATA_LIST},application/json"]
    assert api.exists("/api/v1/namespaces/a/serviceaccounts/b")
    assert not api.exists("/api/v1/namespaces/a/serviceaccounts/c")
    # the provider's own config wins over $KUBECONFIG (a path or the document itself)
    doc = path.read_text()
    assert P.KubeApi(P.load_kubeconfig(doc, {})).crd_names() == {"clusters.postgresql.cnpg.io"}


def test_exec_plugin_kubeconfig_is_refused_with_the_way_out() -> None:
    kc = {
        "current-context": "t",
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://example.invalid"}}],
        "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
    }
    with pytest.raises(S.SettingsError, match=r"cluster\.preflight=false"):
        P.KubeApi(kc)


def test_program_stops_before_any_resource_when_a_crd_is_missing(
    fake_api: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, path = fake_api
    handler.crds = sorted(ALL_CRDS - {"redisclusters.redis.redis.opstreelabs.in"})
    raw = with_secrets(load_stack_raw("local"))
    for k in ("VAULT_TOKEN", "CE_PREVIOUS_PHASE", "PULUMI_CONFIG", "PULUMI_HOME"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(state, "_under_mocks", lambda: False)
    monkeypatch.setattr(state, "previous_phase", lambda: None)
    pulumi.runtime.set_all_config(raw, list(raw))
    stopped = Capture()
    try:
        with pytest.raises(
            Exception, match=r"missing CRD redisclusters\.redis\.redis\.opstreelabs\.in"
        ):
            run_mocked(lambda: runpy.run_path(str(ROOT / "__main__.py")), stopped)
        # the same run with every CRD present gets through to the resources
        handler.crds = sorted(ALL_CRDS)
        cap = run_mocked(lambda: runpy.run_path(str(ROOT / "__main__.py")))
        assert len(cap.resources) > 50
    finally:
        pulumi.runtime.set_all_config({})
    assert stopped.resources == {}


def test_the_kubeconfig_ca_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """requests lets $REQUESTS_CA_BUNDLE override a session-level verify (this machine sets it):
    the kubeconfig's CA must go with every request."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    kc = {
        "current-context": "t",
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": "https://127.0.0.1:1", "certificate-authority": "/ca"},
            }
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
    }
    api = P.KubeApi(kc)
    seen: dict[str, Any] = {}

    def fake_get(url: str, **kw: Any) -> Any:
        seen.update(kw, url=url)
        raise OSError("stop")

    monkeypatch.setattr(api.session, "get", fake_get)
    with pytest.raises(OSError):
        api.crd_names()
    assert seen["verify"] == "/ca"
