"""platform/istiod-render.py: the files a host-run istiod injector reads, split out of
`istioctl manifest generate` (the real render runs in platform/build.sh istiod and is exercised by
tests/integration/test_sidecar_injection.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.conftest import ROOT
from tests.scripts import load_script

render = load_script("istiod_render", ROOT / "platform" / "istiod-render.py")

MESH = "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\nrootNamespace: istio-system\n"
DOCS = [
    {"kind": "ConfigMap", "metadata": {"name": "istio"}, "data": {"mesh": MESH, "meshNetworks": "networks: {}"}},
    {"kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector"},
     "data": {"config": "policy: enabled\ntemplates: {}\n", "values": '{"pilot": {"cni": {"enabled": true}}}'}},
    {"kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-sidecar-injector"},
     "webhooks": [{"name": "namespace.sidecar-injector.istio.io",
                   "clientConfig": {"url": "https://localhost:15017/inject", "caBundle": "Q0VfQ0FfQlVORExF"}}]},
    {"kind": "Deployment", "metadata": {"name": "istiod"}},
    None,
]  # fmt: skip


def test_injector_files_come_verbatim_from_the_rendered_objects() -> None:
    out = render.split(DOCS)
    assert out["inject/config"] == DOCS[1]["data"]["config"]  # type: ignore[index]
    assert out["inject/values"] == DOCS[1]["data"]["values"]  # type: ignore[index]
    assert out["meshNetworks"] == "networks: {}"
    mwc = json.loads(out["mutatingwebhook.json"])
    assert mwc["webhooks"][0]["clientConfig"]["url"] == "https://localhost:15017/inject"
    # local.sh swaps the CA bundle with a pattern on this exact JSON form
    assert '"caBundle": "Q0VfQ0FfQlVORExF"' in out["mutatingwebhook.json"]


def test_mesh_keeps_istios_defaults_and_turns_ingress_status_off() -> None:
    mesh = yaml.safe_load(render.split(DOCS)["mesh"])
    assert mesh["rootNamespace"] == "istio-system"
    assert mesh["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    # a string, not YAML 1.1's boolean off, which istiod's enum would reject
    assert mesh["ingressControllerMode"] == "OFF"


def test_a_missing_object_is_named() -> None:
    with pytest.raises(SystemExit, match="MutatingWebhookConfiguration"):
        render.split(DOCS[:2])
