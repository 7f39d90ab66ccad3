"""Reachability matrix of the program's NetworkPolicies + Istio AuthorizationPolicies, computed
by np-guard's network-config-analyzer (NCA, a maintained implementation of both semantics; built
by ``platform/build.sh nca``), not by code written here.

Input: the objects the program renders (full program under mocks) plus the pods the operators
create from its CRs, shaped as upstream creates them (cloudnative-pg v1.27.1, redis-operator
v0.16.0) and the peers the settings name (operators, Vault, Prometheus, ingress gateway).
Assertion: between those endpoints, into the program's namespaces, exactly the intended flows
are allowed; everything else is denied.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import data as data_mod
from components import prometheus as prom
from components.settings import Settings
from tests.toolchain import platform_tool
from tests.unit.conftest import Capture, program_capture, settings_for

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"Namespace", "NetworkPolicy", "AuthorizationPolicy", "PeerAuthentication", "Deployment"}
CORE_API = {"Namespace": "v1", "NetworkPolicy": "networking.k8s.io/v1", "Deployment": "apps/v1"}


def nca_bin() -> str:
    return platform_tool("nca", "NCA_VERSION", "nca")


def _ints(o: Any) -> Any:
    # the mocks hand numbers back as floats
    if isinstance(o, float) and o.is_integer():
        return int(o)
    if isinstance(o, dict):
        return {k: _ints(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_ints(v) for v in o]
    return o


def _pod(ns: str, name: str, labels: dict[str, str], sa: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x"}]},
    }


def _ns(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
    }


def render(cap: Capture, s: Settings) -> list[dict[str, Any]]:
    """The program's objects + the operator-created and peer pods, as Kubernetes documents."""
    docs: list[dict[str, Any]] = []
    for r in cap.resources.values():
        if not r.typ.startswith("kubernetes:"):
            continue
        kind = r.inputs.get("kind") or r.typ.rsplit(":", 1)[-1]
        if kind not in KINDS:
            continue
        doc = {
            "apiVersion": r.inputs.get("apiVersion") or CORE_API[kind],
            "kind": kind,
            "metadata": r.inputs["metadata"],
            **({"spec": r.inputs["spec"]} if "spec" in r.inputs else {}),
        }
        if kind == "Namespace":
            labels = {**doc["metadata"].get("labels", {})}
            labels["kubernetes.io/metadata.name"] = doc["metadata"]["name"]
            doc["metadata"] = {**doc["metadata"], "labels": labels}
        docs.append(_ints(json.loads(json.dumps(doc))))
    ns = s.namespaces
    # a CronJob's pod: the Job controller creates it from the program's own template
    for r in cap.resources.values():
        if r.typ == "kubernetes:batch/v1:CronJob":
            tpl = r.inputs["spec"]["jobTemplate"]["spec"]["template"]
            docs.append(_pod(r.inputs["metadata"]["namespace"], f"{r.inputs['metadata']['name']}-job",
                             tpl["metadata"]["labels"], tpl["spec"]["serviceAccountName"]))  # fmt: skip
    # cloudnative-pg: instance pods carry cnpg.io/cluster and run as the Cluster-named SA
    for i, role in ((1, "primary"), (2, "replica"), (3, "replica")):
        labels = {**data_mod.PG_PODS, "cnpg.io/instanceRole": role, "role": role}
        docs.append(_pod(ns.data, f"{data_mod.PG_NAME}-{i}", labels, data_mod.PG_SERVICE_ACCOUNT))
    # redis-operator k8sutils/labels.go: app=<name>-<role>, redis_setup_type, role
    for role in ("leader", "follower"):
        for i in range(s.data.redis.masters):
            labels = {
                "app": f"{data_mod.REDIS_NAME}-{role}",
                "redis_setup_type": "cluster",
                "role": role,
            }
            docs.append(
                _pod(ns.data, f"{data_mod.REDIS_NAME}-{role}-{i}", labels, data_mod.REDIS_NAME)
            )
    cl = s.data.clients
    peers = [
        (cl.cnpg_operator.namespace, cl.cnpg_operator.service_account, "cnpg-operator"),
        (cl.redis_operator.namespace, cl.redis_operator.service_account, "redis-operator"),
        (cl.vault.namespace, cl.vault.service_account, "vault"),
        (s.mesh.root_namespace, s.mesh.ingress_service_account, "gateway"),
    ]
    # prometheus-operator's StatefulSet pods: its selector labels (makeSelectorLabels, which win
    # over the CR's podMetadata) plus podMetadata, and the CR's service account
    for app, n, pods, sa in (
        ("prometheus", prom.PROMETHEUS_REPLICAS, prom.PROMETHEUS_PODS, prom.PROMETHEUS_SA),
        ("alertmanager", prom.ALERTMANAGER_REPLICAS, prom.ALERTMANAGER_PODS, prom.ALERTMANAGER_SA),
    ):
        for i in range(n):
            labels = {
                **prom.POD_METADATA,
                **pods,
                "app.kubernetes.io/managed-by": "prometheus-operator",
                app: prom.NAME,
            }
            docs.append(_pod(ns.monitoring, f"{app}-{prom.NAME}-{i}", labels, sa))
    have = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    for pns, sa, role in peers:
        if pns not in have:
            docs.append(_ns(pns))
            have.add(pns)
        docs.append(_pod(pns, f"{role}-0", {"ce-test/role": role}, sa))
    return docs


ROLE_RE = [
    (re.compile(r"^api-(blue|green)"), "api"),
    (re.compile(r"^workflow-engine-(blue|green)"), "workflow-engine"),
    (re.compile(r"^agent-runtime-(blue|green)"), "agent-runtime"),
    (re.compile(rf"^{data_mod.PG_NAME}-\d+$"), "postgres"),
    (re.compile(rf"^{data_mod.REDIS_NAME}-(leader|follower)-\d+$"), "redis"),
    (re.compile(rf"^prometheus-{prom.NAME}-\d+$"), "prometheus"),
    (re.compile(rf"^alertmanager-{prom.NAME}-\d+$"), "alertmanager"),
    (re.compile(r"^claude-enhancer-redis-rotator-job$"), "redis-rotator"),
    (re.compile(r"^(cnpg-operator|redis-operator|vault|gateway)-0$"), None),
]


def role(endpoint: str) -> str | None:
    name = endpoint.split("/", 1)[-1]
    for rx, r in ROLE_RE:
        if rx.match(name):
            return r or name[:-2]
    return None


def connectivity(
    docs: list[dict[str, Any]], tmp: Path, role_of: Callable[[str], str | None] = role
) -> dict[tuple[str, str], set[str]]:
    """NCA's pod-level TCP connectivity, folded to roles (``role_of`` a "namespace/pod"):
    (src, dst) -> connection sets. Without Istio objects NCA prints one undivided section."""
    path = tmp / "resources.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    out = subprocess.run(
        [
            nca_bin(),
            "--connectivity",
            "-r",
            str(path),
            "--output_format",
            "txt_no_fw_rules",
            "--output_endpoints",
            "pods",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    tcp = out.stdout.split("TCP Connections:", 1)[-1].split("non-TCP Connections:", 1)[0]
    found: dict[tuple[str, str], set[str]] = {}
    for line in tcp.splitlines():
        m = re.match(r"^(\S+) => (\S+) : (.+)$", line.strip())
        if not m:
            continue
        src, dst = role_of(m.group(1)), role_of(m.group(2))
        if src and dst:
            found.setdefault((src, dst), set()).add(m.group(3))
    return found


APP = ("api", "workflow-engine", "agent-runtime")

#: every allowed flow into the program's namespaces, exactly (the issue's list).
INTENDED: dict[tuple[str, str], set[str]] = {
    ("gateway", "api"): {"{dst_ports:8080}"},
    ("api", "workflow-engine"): {"{dst_ports:8080}"},
    ("api", "agent-runtime"): {"{dst_ports:8080}"},
    ("workflow-engine", "agent-runtime"): {"{dst_ports:8080}"},
    **{(a, "postgres"): {"{dst_ports:5432}"} for a in APP},
    **{(a, "redis"): {"{dst_ports:6379}"} for a in APP},
    ("postgres", "postgres"): {"{dst_ports:5432,8000}"},
    ("redis", "redis"): {"{dst_ports:6379,16379}"},
    ("cnpg-operator", "postgres"): {"{dst_ports:5432,8000}"},
    ("redis-operator", "redis"): {"{dst_ports:6379}"},
    ("redis-rotator", "redis"): {"{dst_ports:6379}"},  # ACL SETUSER on every node
    ("vault", "postgres"): {"{dst_ports:5432}"},
    ("prometheus", "postgres"): {"{dst_ports:9187}"},
    **({("prometheus", "redis"): {"{dst_ports:9121}"}} if data_mod.REDIS_EXPORTER_ENABLED else {}),
    ("prometheus", "alertmanager"): {f"{{dst_ports:{prom.ALERTMANAGER_PORT}}}"},
    ("alertmanager", "alertmanager"): {f"{{dst_ports:{prom.ALERTMANAGER_MESH_PORT}}}"},
}
PROGRAM_ROLES = {*APP, "postgres", "redis", "prometheus", "alertmanager", "redis-rotator"}


@pytest.mark.parametrize("stack", ["prod", "local"])
def test_reachability_matrix_is_exactly_the_intended_flows(stack: str, tmp_path: Path) -> None:
    s = settings_for(stack, phase=3)  # both tracks at full size: every app pod exists
    found = connectivity(render(program_capture(stack, 3), s), tmp_path)
    into_program = {k: v for k, v in found.items() if k[1] in PROGRAM_ROLES}
    missing = {k: v - into_program.get(k, set()) for k, v in INTENDED.items()}
    assert {k: v for k, v in missing.items() if v} == {}, "intended flows denied"
    extra = {k: v - INTENDED.get(k, set()) for k, v in into_program.items()}
    assert {k: v for k, v in extra.items() if v} == {}, "flows allowed beyond the intended"


def test_the_matrix_sees_a_denied_flow(tmp_path: Path) -> None:
    """The analyzer is really consulted: dropping the Redis peers' ALLOW denies the bus."""
    s = settings_for("prod", phase=3)
    docs = [
        d
        for d in render(program_capture("prod", 3), s)
        if d["metadata"]["name"] != "allow-redis-peers"
    ]
    found = connectivity(docs, tmp_path)
    assert ("redis", "redis") not in found
    assert found[("cnpg-operator", "postgres")] == {"{dst_ports:5432,8000}"}
