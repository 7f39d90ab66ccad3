"""Sidecar injection on the local platform, through Istio's own injector (issue 9, defect 7).

platform/local.sh runs istiod (pilot-discovery, built from istio.io/istio) as the cluster's
sidecar-injection webhook, with the injector templates and values Istio's own charts render with
the Istio CNI plugin on (platform/build.sh istiod). So every pod the program's controllers create
in its `istio-injection: enabled` namespaces reaches Pod Security admission ("restricted") as an
injected pod, as on a real cluster. kwok runs no container and no CNI plugin: the traffic
redirection itself is not exercised, only what admission sees.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import LocalProject, kubectl_json, kubectl_run
from tests.toolchain import pins
from tests.unit.conftest import settings_for


def _program_namespaces() -> list[str]:
    ns = settings_for("local", 0, None).namespaces
    return [ns.app, ns.data, ns.monitoring]


def _sidecar_defects(pod: dict[str, Any]) -> list[str]:
    """What keeps ``pod`` from being a CNI-injected pod that Pod Security "restricted" admits."""
    spec, name = pod["spec"], pod["metadata"]["name"]
    inits = {c["name"]: c for c in spec.get("initContainers", [])}
    out = []
    status = json.loads(pod["metadata"].get("annotations", {}).get("sidecar.istio.io/status", "{}"))
    if "istio-validation" not in status.get("initContainers", []):
        out.append(f"{name}: not injected with the CNI template (sidecar.istio.io/status {status})")
    proxy = inits.get("istio-proxy")
    if proxy is None or proxy.get("restartPolicy") != "Always":
        out.append(f"{name}: no native istio-proxy sidecar (init container, restartPolicy Always)")
    if "istio-init" in inits:
        out.append(f"{name}: classic istio-init container (needs NET_ADMIN/NET_RAW)")
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"} or caps.get("drop") != ["ALL"]:
            out.append(f"{name}/{c['name']}: capabilities {caps}")
    return out


def test_every_program_pod_runs_an_istio_cni_sidecar_admitted_by_pss_restricted(
    local_project: LocalProject,
) -> None:
    env = local_project.env
    pods = [
        p
        for ns in _program_namespaces()
        for p in kubectl_json(env, "-n", ns, "get", "pods")["items"]
        if p["status"].get("phase") not in ("Succeeded", "Failed")
    ]
    # the app tier, PostgreSQL, Redis and the monitoring StatefulSets are all there
    assert len(pods) >= 20, [p["metadata"]["name"] for p in pods]
    defects = [d for p in pods for d in _sidecar_defects(p)]
    assert defects == [], "\n".join(defects)
    refused = [
        f"{e['involvedObject']['name']}: {e['message']}"
        for ns in _program_namespaces()
        for e in kubectl_json(
            env, "-n", ns, "get", "events", "--field-selector", "reason=FailedCreate"
        )["items"]
        if "PodSecurity" in e.get("message", "") or "sidecar-injector" in e.get("message", "")
    ]
    assert refused == [], "\n".join(refused)


def _inject(istiod: Path, obj: dict[str, Any], values: dict[str, Any], tmp: Path) -> Any:
    """Istio's own injector code (`istioctl kube-inject`, the webhook's injectPod) over ``obj``."""
    src, vals = tmp / "in.json", tmp / "values.json"
    src.write_text(json.dumps(obj))
    vals.write_text(json.dumps(values))
    render = istiod / "render"
    r = subprocess.run(
        [str(istiod / "bin" / "istioctl"), "kube-inject", "-r", "default", "-f", str(src),
         "--injectConfigFile", str(render / "inject" / "config"), "--valuesFile", str(vals),
         "--meshConfigFile", str(render / "mesh")],
        env={"KUBECONFIG": "/nonexistent", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    # (it ends with an empty "---" document)
    return next(d for d in yaml.safe_load_all(r.stdout) if d)


def _dry_run_create(env: dict[str, str], pod: dict[str, Any], tmp: Path) -> Any:
    f = tmp / "pod.json"
    f.write_text(json.dumps(pod))
    return kubectl_run(env, "create", "--dry-run=server", "-f", str(f))


def test_restricted_admits_the_cni_template_and_refuses_classic_istio_init(
    local_project: LocalProject, tmp_path: Path
) -> None:
    """Defect 7 on the live apiserver: the program's own api pod, injected by Istio's injector
    code with the CNI template, is admitted; injected the classic way (istio-init with
    NET_ADMIN/NET_RAW) it is refused by Pod Security in the app namespace."""
    env = local_project.env
    istiod = Path(env["CE_TOOLS"]) / f"istiod-{pins()['ISTIOCTL_VERSION']}"
    app_ns = _program_namespaces()[0]
    deploy = next(
        d
        for d in kubectl_json(env, "-n", app_ns, "get", "deployments")["items"]
        if d["metadata"]["name"].startswith("api-")
    )
    template = deploy["spec"]["template"]
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "injection-control-", "namespace": app_ns,
                     "labels": template["metadata"].get("labels", {})},
        "spec": template["spec"],
    }  # fmt: skip
    values = json.loads((istiod / "render" / "inject" / "values").read_text())
    cni = _inject(istiod, pod, values, tmp_path)
    classic_values = dict(values, pilot=dict(values["pilot"], cni={"enabled": False}))
    classic = _inject(istiod, pod, classic_values, tmp_path)
    assert classic["spec"]["initContainers"][0]["name"] == "istio-init"

    admitted = _dry_run_create(env, cni, tmp_path)
    assert admitted.returncode == 0, admitted.stderr
    refused = _dry_run_create(env, classic, tmp_path)
    assert refused.returncode != 0, refused.stdout
    assert "violates PodSecurity" in refused.stderr and "NET_ADMIN" in refused.stderr, (
        refused.stderr
    )
