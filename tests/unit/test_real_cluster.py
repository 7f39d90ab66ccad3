"""What a real cluster would reject or break (issue 9, defects 1, 2, 5, 6, 7).

Each test reads the program's rendered objects (full program under mocks) and checks them
against how the real system behaves: LimitRange admission, Istio/NetworkPolicy peers of the
data tier, Secrets the objects reference, the HPA and CPU alert against the budget, and Pod
Security "restricted" against the mesh data plane.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from components import settings as settings_mod
from tests.unit.conftest import (
    Capture,
    is_secret,
    load_stack_raw,
    program_capture,
    set_obj,
    settings_for,
    with_secrets,
)

STACKS = ("local", "staging", "prod")
DATA_NS = "claude-enhancer-data"
APP_NS = "claude-enhancer"
MON_NS = "claude-enhancer-monitoring"

_QTY = re.compile(r"^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G)?$")
_MULT = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def qty(v: str | int | float) -> float:
    """A Kubernetes quantity as a float (cores or bytes)."""
    m = _QTY.fullmatch(str(v))
    assert m, f"not a quantity: {v!r}"
    return float(m.group(1)) * _MULT[m.group(2)]


def containers(cap: Capture) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, what, resources) of every container the program declares, directly or via
    an operator CR (CNPG puts spec.resources on every instance container; the redis-operator
    puts kubernetesConfig.resources on redis and redisExporter.resources on the exporter)."""
    for r in cap.resources.values():
        inputs = r.inputs
        ns = str((inputs.get("metadata") or {}).get("namespace"))
        if r.typ == "kubernetes:apps/v1:Deployment":
            for c in inputs["spec"]["template"]["spec"]["containers"]:
                yield ns, f"Deployment {inputs['metadata']['name']}/{c['name']}", c["resources"]
        elif inputs.get("kind") == "Cluster" and r.typ.startswith("kubernetes:"):
            yield ns, "CNPG Cluster", inputs["spec"]["resources"]
        elif inputs.get("kind") == "RedisCluster":
            spec = inputs["spec"]
            yield ns, "RedisCluster redis", spec["kubernetesConfig"]["resources"]
            if spec.get("redisExporter", {}).get("enabled"):
                yield ns, "RedisCluster exporter", spec["redisExporter"].get("resources", {})


# --------------------------------------------------------------------------- defect 1


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_admitted_by_its_namespace_limitrange(stack: str) -> None:
    """LimitRanger rejects a container whose limit exceeds ``max`` (pods never created)."""
    cap = program_capture(stack)
    maxes = {}
    for lr in cap.of_type("kubernetes:core/v1:LimitRange"):
        (item,) = [x for x in lr.inputs["spec"]["limits"] if x["type"] == "Container"]
        maxes[lr.inputs["metadata"]["namespace"]] = item["max"]
    seen = set()
    for ns, what, res in containers(cap):
        seen.add(ns)
        mx = maxes[ns]
        limits = res.get("limits", {})
        for k in ("cpu", "memory"):
            assert k in limits, f"{stack}: {what} has no {k} limit"
            assert qty(limits[k]) <= qty(mx[k]), (
                f"{stack}: {what} limit {k}={limits[k]} exceeds the {ns} LimitRange max {mx[k]}"
            )
            assert qty(res["requests"][k]) <= qty(limits[k]), f"{stack}: {what} {k}"
    assert {APP_NS, DATA_NS} <= seen


# --------------------------------------------------------------------------- defect 2

# Upstream facts (cloudnative-pg v1.27.1: config/default namePrefix cnpg- + SA "manager" in
# cnpg-system, pkg/management/url: StatusPort 8000, PostgresMetricsPort 9187;
# redis-operator v0.16.0: config/default namespace redis-operator-system, SA redis-operator,
# pod labels redis_setup_type/role, exporter port 9121, cluster bus = port + 10000).
PG_SA = f"cluster.local/ns/{DATA_NS}/sa/claude-enhancer-pg"
REDIS_SA = f"cluster.local/ns/{DATA_NS}/sa/claude-enhancer-redis"
CNPG_OP = ("cnpg-system", "cnpg-manager")
REDIS_OP = ("redis-operator-system", "redis-operator")
VAULT = ("vault", "vault")
PROM_SA = f"cluster.local/ns/{MON_NS}/sa/prometheus"
PG_PODS = {"cnpg.io/cluster": "claude-enhancer-pg"}
REDIS_PODS = {"redis_setup_type": "cluster", "app": "claude-enhancer-redis-leader"}

#: (flow, target pod labels, source principal, source namespace, port)
DATA_FLOWS = [
    ("app->postgres", PG_PODS, f"cluster.local/ns/{APP_NS}/sa/api", APP_NS, 5432),
    ("pg replication", PG_PODS, PG_SA, DATA_NS, 5432),
    ("pg instance manager", PG_PODS, PG_SA, DATA_NS, 8000),
    (
        "cnpg operator->pg status",
        PG_PODS,
        "cluster.local/ns/cnpg-system/sa/cnpg-manager",
        CNPG_OP[0],
        8000,
    ),
    (
        "cnpg operator->pg",
        PG_PODS,
        "cluster.local/ns/cnpg-system/sa/cnpg-manager",
        CNPG_OP[0],
        5432,
    ),
    ("vault->postgres", PG_PODS, "cluster.local/ns/vault/sa/vault", VAULT[0], 5432),
    ("prometheus->pg metrics", PG_PODS, PROM_SA, MON_NS, 9187),
    ("app->redis", REDIS_PODS, f"cluster.local/ns/{APP_NS}/sa/agent-runtime", APP_NS, 6379),
    ("redis replication", REDIS_PODS, REDIS_SA, DATA_NS, 6379),
    ("redis cluster bus", REDIS_PODS, REDIS_SA, DATA_NS, 16379),
    (
        "redis operator->redis",
        REDIS_PODS,
        "cluster.local/ns/redis-operator-system/sa/redis-operator",
        REDIS_OP[0],
        6379,
    ),
]
# redis-operator v0.16.0's exporter cannot pass Pod Security "restricted" (see components/data.py)


def _selects(selector: dict[str, Any] | None, pod: dict[str, str]) -> bool:
    want = (selector or {}).get("matchLabels") or {}
    return all(pod.get(k) == v for k, v in want.items())


def _authz_allows(cap: Capture, ns: str, pod: dict[str, str], principal: str, port: int) -> bool:
    """An ALLOW rule in ``ns`` selecting ``pod`` with this principal and port (all rules in
    the program name principals and ports explicitly)."""
    for ap in cap.crs("AuthorizationPolicy"):
        spec = ap.inputs.get("spec") or {}
        if ap.inputs["metadata"]["namespace"] != ns or spec.get("action") != "ALLOW":
            continue
        if not _selects(spec.get("selector"), pod):
            continue
        for rule in spec.get("rules", []):
            principals = [
                p for f in rule.get("from", []) for p in f["source"].get("principals", [])
            ]
            ports = [p for t in rule.get("to", []) for p in t["operation"].get("ports", [])]
            if principal in principals and str(port) in ports:
                return True
    return False


def _np_admits(cap: Capture, ns: str, pod: dict[str, str], src_ns: str, port: int) -> bool:
    """An ingress NetworkPolicy rule in ``ns`` admitting ``src_ns`` on ``port``."""
    for np in cap.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        if np.inputs["metadata"]["namespace"] != ns:
            continue
        spec = np.inputs["spec"]
        if not _selects(spec.get("podSelector"), pod):
            continue
        for rule in spec.get("ingress", []):
            peers = rule.get("from", [])
            ok_peer = any(
                ("namespaceSelector" not in p and src_ns == ns)
                or (
                    (p.get("namespaceSelector") or {})
                    .get("matchLabels", {})
                    .get("kubernetes.io/metadata.name")
                    == src_ns
                )
                for p in peers
            )
            ports = [p["port"] for p in rule.get("ports", [])]
            if ok_peer and (not ports or port in ports):
                return True
    return False


@pytest.mark.parametrize("flow", DATA_FLOWS, ids=[f[0] for f in DATA_FLOWS])
def test_data_tier_flow_is_allowed_by_authz_and_networkpolicy(flow: tuple) -> None:
    name, pod, principal, src_ns, port = flow
    cap = program_capture("prod")
    assert _authz_allows(cap, DATA_NS, pod, principal, port), f"{name}: AuthorizationPolicy"
    assert _np_admits(cap, DATA_NS, pod, src_ns, port), f"{name}: NetworkPolicy"


def test_redis_pods_run_as_their_own_service_account() -> None:
    """The cluster-bus ALLOW names the Redis pods' principal: it must be theirs, not default."""
    (rc,) = program_capture("prod").crs("RedisCluster")
    assert rc.inputs["spec"]["serviceAccountName"] == "claude-enhancer-redis"
    sas = {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"])
        for s in program_capture("prod").of_type("kubernetes:core/v1:ServiceAccount")
    }
    assert (DATA_NS, "claude-enhancer-redis") in sas


# --------------------------------------------------------------------------- defect 5


def _secrets(cap: Capture) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]): s.inputs
        for s in cap.of_type("kubernetes:core/v1:Secret")
    }


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_tls_secret_exists_where_the_gateway_pods_read_it(stack: str) -> None:
    """Istio reads ``credentialName`` from the namespace of the ingress gateway workload."""
    cap = program_capture(stack)
    s = settings_for(stack)
    (gw,) = cap.crs("Gateway")
    names = [
        srv["tls"]["credentialName"]
        for srv in gw.inputs["spec"]["servers"]
        if "credentialName" in srv.get("tls", {})
    ]
    assert names
    secrets = _secrets(cap)
    for n in names:
        sec = secrets.get((s.mesh.root_namespace, n))
        assert sec is not None, f"{stack}: no Secret {s.mesh.root_namespace}/{n} for the Gateway"
        assert sec["type"] == "kubernetes.io/tls"
        assert is_secret(sec["data"]), "TLS material must be a secret Output"


@pytest.mark.parametrize("stack", STACKS)
def test_cnpg_backup_credentials_secret_exists(stack: str) -> None:
    cap = program_capture(stack)
    (pg,) = cap.crs("Cluster")
    creds = pg.inputs["spec"]["backup"]["barmanObjectStore"]["s3Credentials"]
    refs = {v["name"] for v in creds.values() if isinstance(v, dict) and "name" in v}
    if creds.get("inheritFromIAMRole"):
        assert not refs
        return
    assert refs
    secrets = _secrets(cap)
    for ref in refs:
        sec = secrets.get((DATA_NS, ref))
        assert sec is not None, f"{stack}: CNPG backup references Secret {ref}, nothing creates it"
        assert is_secret(sec["data"])
        keys = {v["key"] for v in creds.values() if isinstance(v, dict) and v.get("name") == ref}
        assert keys  # the keys the Cluster reads are the keys the Secret has
    data_secret_keys = set()
    for ref in refs:
        data_secret_keys |= set(secrets[(DATA_NS, ref)]["data"]["value"])
    assert {v["key"] for v in creds.values() if isinstance(v, dict)} <= data_secret_keys


def test_backup_credentials_are_required_as_secrets() -> None:
    """Staging/prod read them from secret config; a missing one is named before any resource."""
    raw = with_secrets(load_stack_raw("prod"))
    raw.pop("claude-enhancer:backupS3SecretAccessKey", None)
    with pytest.raises(settings_mod.SettingsError, match="backupS3SecretAccessKey"):
        settings_mod.load_settings(raw, {}, None, stack="prod")


# --------------------------------------------------------------------------- defect 6

#: SPEC: per instance budget < 2 cores / < 4 GB, normal usage 1.8 cores / 2.8 GB.
BUDGET_CPU, BUDGET_MEM = 2.0, 4e9
NORMAL_CPU, NORMAL_MEM = 1.8, 2.8e9
#: monitoring/rules.yaml CEHighCPU: usage / limit > 0.8.
ALERT_RATIO = 0.8


@pytest.mark.parametrize("stack", STACKS)
def test_requests_are_normal_usage_and_limits_the_budget(stack: str) -> None:
    cap = program_capture(stack)
    for ns, what, res in containers(cap):
        if ns != APP_NS:
            continue
        lim, req = res["limits"], res["requests"]
        assert qty(lim["cpu"]) < BUDGET_CPU and qty(lim["memory"]) < BUDGET_MEM, what
        assert qty(req["cpu"]) == pytest.approx(NORMAL_CPU), what
        assert qty(req["memory"]) == pytest.approx(NORMAL_MEM, rel=0.03), what
        assert qty(lim["cpu"]) > qty(req["cpu"]) and qty(lim["memory"]) > qty(req["memory"])


@pytest.mark.parametrize("stack", STACKS)
def test_hpa_scales_out_before_the_cpu_alert_and_is_not_at_max_at_normal_load(stack: str) -> None:
    cap = program_capture(stack)
    s = settings_for(stack)
    res = {
        d.inputs["metadata"]["name"]: d.inputs["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]
        for d in cap.of_type("kubernetes:apps/v1:Deployment")
    }
    for hpa in cap.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        spec = hpa.inputs["spec"]
        r = res[spec["scaleTargetRef"]["name"]]
        (cpu,) = [m for m in spec["metrics"] if m["resource"]["name"] == "cpu"]
        target = qty(r["requests"]["cpu"]) * cpu["resource"]["target"]["averageUtilization"] / 100
        # the HPA holds per-pod usage at its target: below the alert, or the alert fires
        # whenever the HPA is merely doing its job
        assert target < ALERT_RATIO * qty(r["limits"]["cpu"]), hpa.name
        # at the SPEC's normal usage per instance on the minimum replicas, the HPA's desired
        # count (ceil(current * usage / target)) stays below its ceiling
        svc = s.app.service(spec["scaleTargetRef"]["name"].rsplit("-", 1)[0])
        desired = math.ceil(spec["minReplicas"] * NORMAL_CPU / target)
        assert desired <= svc.max_replicas, (
            f"{stack}: {hpa.name} wants {desired} > max {svc.max_replicas} at normal load"
        )


# --------------------------------------------------------------------------- defect 7


def _ns_labels(cap: Capture) -> dict[str, dict[str, str]]:
    return {
        n.inputs["metadata"]["name"]: n.inputs["metadata"]["labels"]
        for n in cap.of_type("kubernetes:core/v1:Namespace")
        if n.inputs["metadata"]["name"] in (APP_NS, DATA_NS, MON_NS)
    }


def test_dataplane_is_a_stated_setting() -> None:
    for stack in STACKS:
        assert settings_for(stack).mesh.dataplane in ("cni", "ambient")
    raw = with_secrets(load_stack_raw("local"))
    with pytest.raises(settings_mod.SettingsError, match=r"mesh\.dataplane"):
        settings_mod.load_settings(set_obj(raw, "mesh", "dataplane", "sidecar"), {}, None)


def test_ambient_namespaces_have_no_injection_label() -> None:
    from components import program
    from tests.unit.conftest import run_mocked

    raw = with_secrets(load_stack_raw("prod"))
    s = settings_mod.load_settings(set_obj(raw, "mesh", "dataplane", "ambient"), {}, None, "prod")
    cap = run_mocked(lambda: program.run(s))
    for ns, lab in _ns_labels(cap).items():
        assert lab.get("istio.io/dataplane-mode") == "ambient", ns
        assert "istio-injection" not in lab, ns
        assert lab["pod-security.kubernetes.io/enforce"] == "restricted"


def test_cni_namespaces_are_injected() -> None:
    for ns, lab in _ns_labels(program_capture("prod")).items():
        assert settings_for("prod").mesh.dataplane == "cni"
        assert lab.get("istio-injection") == "enabled", ns
        assert "istio.io/dataplane-mode" not in lab


# --------------------------------------------------------------------------- Redis under PSS


def _restricted_violations(pod_ctx: dict[str, Any], containers: list[dict[str, Any]]) -> list[str]:
    """Pod Security "restricted" (k8s.io/pod-security-admission policy checks) for the fields
    the redis-operator sets: runAsNonRoot and seccompProfile (pod or container level),
    allowPrivilegeEscalation=false and capabilities.drop=[ALL] on every container."""
    out = []
    for c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            out.append(f"{c['name']}: runAsNonRoot")
        seccomp = (sc.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: seccompProfile")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation")
        if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
            out.append(f"{c['name']}: capabilities.drop ALL")
    return out


@pytest.mark.parametrize("role", ["redisLeader", "redisFollower"])
def test_redis_operator_pods_pass_pod_security_restricted(role: str) -> None:
    """redis-operator v0.16.0 (k8sutils/statefulset.go) builds the redis container with
    redisLeader/redisFollower.securityContext, the pod with podSecurityContext, and the
    exporter sidecar (redisExporter.enabled) with NO securityContext at all."""
    (rc,) = program_capture("prod").crs("RedisCluster")
    spec = rc.inputs["spec"]
    containers = [{"name": "redis", "securityContext": spec[role].get("securityContext")}]
    if spec.get("redisExporter", {}).get("enabled"):
        containers.append({"name": "redis-exporter"})
    assert _restricted_violations(spec.get("podSecurityContext") or {}, containers) == []
