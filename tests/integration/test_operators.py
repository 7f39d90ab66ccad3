"""The real CloudNativePG operator (run by platform/local.sh) reconciles the program's Cluster on
the local control plane; its pods go through real admission (Pod Security "restricted",
LimitRanger, ResourceQuota) and scheduling.

kwok fakes the kubelet: pods become Running/Ready and Job pods complete, but no container runs.
What the operator reads from each instance (``GET https://<pod IP>:8000/pg/status``) is answered
by platform/cnpg-status.py, relayed from the operator's network namespace by netns-run.py, the
way the instance manager would answer (TLS with the cluster's server certificate, one primary,
equal LSNs), and it sets ``currentPrimary`` as the primary's instance manager does. So the
operator's whole path to 3 instances runs for real; PostgreSQL replication does not (nothing
streams).
"""

from __future__ import annotations

import base64
import gzip
import subprocess
import time
from pathlib import Path
from typing import Any

from components import alerting, monitoring
from components import prometheus as prom
from components.data import PG_NAME
from tests.integration.conftest import ROOT, LocalProject, kubectl, kubectl_json

DATA_NS = "claude-enhancer-data"
POOL_LABEL = "node.claude-enhancer.io/pool"
ZONE_LABEL = "topology.kubernetes.io/zone"


def _refusals(env: dict[str, str], since: str, prefix: str, ns: str = DATA_NS) -> list[str]:
    """Admission refusals of objects named ``prefix...`` reported at or after ``since`` (RFC 3339):
    earlier ones belong to whatever spec the shared platform held before this deploy."""
    out = []
    for e in kubectl_json(env, "get", "events", "-n", ns)["items"]:
        when = e.get("lastTimestamp") or e.get("eventTime") or ""
        if not e["involvedObject"].get("name", "").startswith(prefix) or when < since:
            continue
        if e.get("reason") == "FailedCreate" or "forbidden" in e.get("message", ""):
            out.append(
                f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e['message']}"
            )
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _wait(what: str, timeout: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        ok, last = probe()
        if ok:
            return last
        time.sleep(3)
    raise AssertionError(f"{what} not reached after {timeout}s; last seen: {last}")


def test_cnpg_operator_brings_up_3_admitted_instances_over_the_zones(
    local_project: LocalProject,
) -> None:
    env = local_project.env
    # from nothing: the Cluster deleted out of band (its pods and claims go with it), the static
    # PVs handed back by `local.sh up`, then `up --refresh` creates it again
    kubectl(env, "delete", "clusters.postgresql.cnpg.io", "-n", DATA_NS, PG_NAME, "--wait=true")
    _wait(
        "old instance pods gone",
        120,
        lambda: (not _instances(env), [p["metadata"]["name"] for p in _instances(env)]),
    )
    subprocess.run(
        ["bash", str(ROOT / "platform" / "local.sh"), "up"],
        env={**env, "CE_TELEMETRY": "0"},
        check=True,
        capture_output=True,
    )
    since = _now()
    local_project.pulumi("up", "--yes", "--skip-preview", "--refresh")

    def healthy() -> tuple[bool, Any]:
        st = kubectl_json(env, "get", "clusters.postgresql.cnpg.io", "-n", DATA_NS, PG_NAME).get(
            "status", {}
        )
        ready = [p["metadata"]["name"] for p in _instances(env) if _ready(p)]
        return len(ready) == 3 and st.get("phase") == "Cluster in healthy state", (ready, st)

    _, st = _wait("3 Ready CNPG instances, cluster healthy", 300, healthy)
    assert st["instances"] == st["readyInstances"] == 3
    assert st["currentPrimary"] == st["targetPrimary"] == f"{PG_NAME}-1"
    reported = st["instancesReportedState"]
    assert len(reported) == 3 and sum(r["isPrimary"] for r in reported.values()) == 1

    pods = _instances(env)
    nodes = [kubectl_json(env, "get", "node", p["spec"]["nodeName"]) for p in pods]
    assert {n["metadata"]["labels"][POOL_LABEL] for n in nodes} == {"data"}
    assert len({n["metadata"]["labels"][ZONE_LABEL] for n in nodes}) == 3, "one per zone"
    for pod in pods:
        # the operator applied the program's resources to the instance container, admitted by
        # the data namespace's LimitRange (defect 1) under Pod Security "restricted"
        (pg,) = [c for c in pod["spec"]["containers"] if c["name"] == "postgres"]
        assert pg["resources"]["limits"] == {"cpu": "4", "memory": "12Gi"}
        assert pod["spec"]["serviceAccountName"] == PG_NAME

    # the replicas joined through the operator's own Jobs (initdb, then a join per replica)
    log = Path(env["CE_HOME"]) / "platform" / "logs" / "cnpg-manager.log"
    assert log.is_file(), f"{log} missing: is the cnpg part in components/needs.py running?"
    recent = [
        line
        for line in log.read_text().splitlines()
        if line.split('"ts":"', 1)[-1][:19] >= since[:19]
    ]
    created = " ".join(line for line in recent if "Creating new Job" in line)
    for job in (f"{PG_NAME}-1-initdb", f"{PG_NAME}-2-join", f"{PG_NAME}-3-join"):
        assert job in created, f"no Job {job} in the operator's log since {since}"
    # nothing the operator created since this deploy was refused by admission
    assert _refusals(env, since, PG_NAME) == []
    assert [line for line in recent if "is forbidden" in line] == []


def _instances(env: dict[str, str]) -> list[dict[str, Any]]:
    sel = f"cnpg.io/cluster={PG_NAME},cnpg.io/podRole=instance"
    pods = kubectl_json(env, "get", "pods", "-n", DATA_NS, "-l", sel)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_redis_operator_creates_3_leaders_and_3_followers(local_project: LocalProject) -> None:
    env = local_project.env
    since = _now()

    def roles_running() -> tuple[bool, Any]:
        pods = kubectl_json(env, "get", "pods", "-n", DATA_NS, "-l", "redis_setup_type=cluster")[
            "items"
        ]
        running: dict[str, list[str]] = {}
        for p in pods:
            if p["status"].get("phase") == "Running":
                running.setdefault(p["metadata"]["labels"]["role"], []).append(
                    p["spec"]["nodeName"]
                )
        return len(running.get("leader", [])) == 3 and len(
            running.get("follower", [])
        ) == 3, running

    running = _wait("3 Redis leaders and 3 followers Running", 300, roles_running)
    for role, nodes in running.items():
        pools = {
            kubectl_json(env, "get", "node", n)["metadata"]["labels"][POOL_LABEL] for n in nodes
        }
        assert pools == {"data"}, (role, nodes)
        assert len(set(nodes)) == 3, f"{role}: one pod per data node (anti-affinity) {nodes}"
    assert _refusals(env, since, "claude-enhancer-redis") == []


MON_NS = "claude-enhancer-monitoring"


def _secret_gz(env: dict[str, str], name: str, key: str) -> str:
    data = kubectl_json(env, "get", "secret", "-n", MON_NS, name)["data"][key]
    return gzip.decompress(base64.b64decode(data)).decode()


def test_prometheus_operator_runs_the_programs_prometheus_and_alertmanager(
    local_project: LocalProject,
) -> None:
    """prometheus-operator (run by platform/local.sh) turns the program's Prometheus and
    Alertmanager into StatefulSets whose pods pass admission, and builds their configuration from
    the program's ServiceMonitor, PrometheusRule and alertmanager config Secret."""
    env = local_project.env
    since = _now()
    want = {"prometheus": prom.PROMETHEUS_REPLICAS, "alertmanager": prom.ALERTMANAGER_REPLICAS}

    def pods_running() -> tuple[bool, Any]:
        seen: dict[str, list[dict[str, Any]]] = {}
        for app in want:
            sel = f"app.kubernetes.io/name={app},app.kubernetes.io/instance={prom.NAME}"
            pods = kubectl_json(env, "get", "pods", "-n", MON_NS, "-l", sel)["items"]
            seen[app] = [p for p in pods if p["status"].get("phase") == "Running"]
        return all(len(seen[a]) == n for a, n in want.items()), {
            a: [p["metadata"]["name"] for p in v] for a, v in seen.items()
        }

    _wait("Prometheus 2/2 and Alertmanager 3/3 Running", 240, pods_running)
    for app, sa in (("prometheus", prom.PROMETHEUS_SA), ("alertmanager", prom.ALERTMANAGER_SA)):
        sts = kubectl_json(env, "get", "statefulset", "-n", MON_NS, f"{app}-{prom.NAME}")
        assert sts["metadata"]["ownerReferences"][0]["kind"] == app.capitalize()
        sel = f"app.kubernetes.io/name={app},app.kubernetes.io/instance={prom.NAME}"
        for pod in kubectl_json(env, "get", "pods", "-n", MON_NS, "-l", sel)["items"]:
            assert pod["spec"]["serviceAccountName"] == sa  # the identity the mesh admits
            node = kubectl_json(env, "get", "node", pod["spec"]["nodeName"])
            assert node["metadata"]["labels"][POOL_LABEL] == "system"
            assert all(
                c["securityContext"]["capabilities"]["drop"] == ["ALL"]
                for c in pod["spec"]["containers"]
            )
    assert _refusals(env, since, "prometheus-", MON_NS) == []
    assert _refusals(env, since, "alertmanager-", MON_NS) == []

    # the operator generated Prometheus' config from the program's ServiceMonitor and rules
    config = _secret_gz(env, f"prometheus-{prom.NAME}", "prometheus.yaml.gz")
    # (issue 23: the app through Istio's merged metrics, a PodMonitor, not a ServiceMonitor)
    assert "job_name: podMonitor/claude-enhancer/istio-merged-metrics/0" in config
    assert "job_name: podMonitor/claude-enhancer-data/cnpg-metrics/0" in config
    rules = kubectl_json(
        env, "get", "configmap", "-n", MON_NS, f"prometheus-{prom.NAME}-rulefiles-0"
    )
    text = "\n".join(rules["data"].values())
    groups = monitoring.load_rule_groups()
    assert groups and all(f"name: {g['name']}" in text for g in groups)
    # ... and Alertmanager's from the program's routing tree (alertmanager-<name>)
    am = _secret_gz(env, f"alertmanager-{prom.NAME}-generated", "alertmanager.yaml.gz")
    assert "receivers:" in am and alerting.PAGING in am
