"""Istio's own analyzer (`istioctl analyze`, built from istio.io/istio at ISTIOCTL_VERSION in
toolchain/versions.env) over the program's mesh objects on the live local cluster (issue 9).

The local platform runs istiod as the sidecar injector only (platform/local.sh), so every pod
of the program carries the proxy Istio injects (no IST0103). What else an Istio install
provides and the program relies on, the ingress gateway's Deployment and Service (Istio's
defaults: `istio=ingressgateway`, ports 80 -> 8080 and 443 -> 8443), is applied here for the
duration of the test (kwok runs its pod). The analyzer then reads the live objects the program
registered: Gateway, VirtualService, DestinationRule, PeerAuthentication,
AuthorizationPolicies, Services, Deployments, Pods, and the injector's webhook configuration.

Errors must be none. Warnings may only be the ones the local platform causes, each listed in
ALLOWED_WARNINGS with its reason; anything else fails, with the analyzer's message.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import LocalProject, kubectl
from tests.toolchain import pins
from tests.unit.conftest import settings_for

#: analyzer code -> (origin prefix it may appear on, why it is expected)
ALLOWED_WARNINGS: dict[str, tuple[str, str]] = {
    # issue 23: the sidecar port exclusions are set on the operators' custom resources (the only
    # way to reach their pods), and the operators copy those annotations onto every object they
    # generate, the Services of the data namespace included (redis-operator's object meta,
    # CloudNativePG's inheritedMetadata). Istio reads them on pods only; on a Service they do nothing
    "IST0107": (
        "Service claude-enhancer-data/claude-enhancer-",
        "operators copy their CR's sidecar annotations onto the Services they generate",
    ),
}


def _gateway_manifest(root_namespace: str, service_account: str) -> str:
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    objs = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": service_account, "namespace": root_namespace}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "istio-ingressgateway", "namespace": root_namespace,
                      "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": service_account,
                      "nodeSelector": {"node.claude-enhancer.io/pool": "system"},
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 1337,
                                          "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [{
                          "name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.0",
                          "ports": [{"containerPort": 8080}, {"containerPort": 8443}],
                          "securityContext": {"allowPrivilegeEscalation": False,
                                              "capabilities": {"drop": ["ALL"]}},
                      }]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "istio-ingressgateway", "namespace": root_namespace,
                      "labels": labels},
         "spec": {"selector": labels, "ports": [
             {"name": "http2", "port": 80, "targetPort": 8080},
             {"name": "https", "port": 443, "targetPort": 8443}]}},
    ]  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})


@pytest.fixture
def ingress_gateway(local_project: LocalProject, tmp_path: Path) -> Iterator[None]:
    mesh = settings_for("local", 0, None).mesh
    f = tmp_path / "gateway.json"
    f.write_text(_gateway_manifest(mesh.root_namespace, mesh.ingress_service_account))
    env = local_project.env
    kubectl(env, "apply", "--server-side", "--field-manager", "ce-test-istio-install", "-f", str(f))
    try:
        kubectl(
            env, "-n", mesh.root_namespace, "rollout", "status", "deployment/istio-ingressgateway",
            "--timeout=120s",
        )  # fmt: skip
        yield
    finally:
        kubectl(env, "delete", "--ignore-not-found", "--wait=false", "-f", str(f))


def test_istioctl_analyze_finds_no_error_and_only_platform_warnings(
    local_project: LocalProject, ingress_gateway: None
) -> None:
    env = local_project.env
    exe = Path(env["CE_TOOLS"]) / f"istioctl-{pins()['ISTIOCTL_VERSION']}" / "bin" / "istioctl"
    if not exe.exists():
        pytest.fail(
            f"istioctl is not built at {exe}: run ./ce bootstrap --test-tools", pytrace=False
        )
    messages = _analyze(exe, env)
    errors = [m for m in messages if m["level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)
    warnings = [m for m in messages if m["level"] == "Warning"]
    unexpected = [
        m
        for m in warnings
        if m["code"] not in ALLOWED_WARNINGS
        or not m["origin"].startswith(ALLOWED_WARNINGS[m["code"]][0])
    ]
    assert unexpected == [], json.dumps(unexpected, indent=1)
    # no vacuous pass: the same run, plus a route to a subset no DestinationRule defines,
    # is an error the analyzer finds against the program's live objects
    ns = settings_for("local", 0, None).namespaces.app
    broken = Path(env["CE_HOME"]) / "istio-analyze-control.json"
    broken.write_text(json.dumps({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "control-missing-subset", "namespace": ns},
        "spec": {"hosts": [f"api.{ns}.svc.cluster.local"], "http": [{"route": [
            {"destination": {"host": f"api.{ns}.svc.cluster.local", "subset": "no-such-subset"}}
        ]}]},
    }))  # fmt: skip
    control = _analyze(exe, env, str(broken))
    assert any(
        m["level"] == "Error" and "control-missing-subset" in m["origin"] for m in control
    ), json.dumps(control, indent=1)


def _analyze(exe: Path, env: dict[str, str], *files: str) -> list[dict[str, str]]:
    r = subprocess.run(
        [str(exe), "analyze", "--all-namespaces", "-o", "json", "--timeout", "60s", *files],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    try:
        return list(json.loads(r.stdout or "[]"))
    except json.JSONDecodeError:
        pytest.fail(f"istioctl analyze gave no JSON (exit {r.returncode}):\n{r.stderr[-3000:]}")
