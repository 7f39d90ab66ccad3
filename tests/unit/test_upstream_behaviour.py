"""Issue 23: the rendered objects read the way the real controllers and proxies read them.

Each test names the upstream behaviour it encodes (file paths in docs/real-cluster.md) and
failed before its fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import data as data_mod
from tests.metric_producers import PRODUCERS
from tests.unit.conftest import Capture, program_capture, unsecret

STACKS = ("local", "staging", "prod")
DATA_NS = "claude-enhancer-data"
APP_NS = "claude-enhancer"
MON_NS = "claude-enhancer-monitoring"


def _ports(annotations: dict[str, str], key: str) -> set[int]:
    return {int(p) for p in annotations.get(key, "").split(",") if p.strip()}


def _one(cap: Capture, kind: str) -> dict[str, Any]:
    (r,) = cap.crs(kind)
    return r.inputs


def _pdbs(cap: Capture, ns: str) -> dict[str, dict[str, Any]]:
    return {
        p.inputs["metadata"]["name"]: p.inputs
        for p in cap.of_type("kubernetes:policy/v1:PodDisruptionBudget")
        if p.inputs["metadata"]["namespace"] == ns
    }


# --------------------------------------------------------------------------- defect 1


@pytest.mark.parametrize("stack", STACKS)
def test_redis_cluster_bus_bypasses_the_sidecar_both_ways(stack: str) -> None:
    """redis-operator v0.16.0 copies the RedisCluster's metadata.annotations onto the pod
    template (k8sutils/labels.go generateStatefulSetsAnots); the bus is port + 10000."""
    rc = _one(program_capture(stack), "RedisCluster")
    ann = rc["metadata"].get("annotations") or {}
    bus = data_mod.REDIS_PORT + 10000
    assert bus in _ports(ann, "traffic.sidecar.istio.io/excludeInboundPorts")
    assert bus in _ports(ann, "traffic.sidecar.istio.io/excludeOutboundPorts")
    # the client port stays in the mesh (mTLS through the headless Service's port)
    assert data_mod.REDIS_PORT not in _ports(ann, "traffic.sidecar.istio.io/excludeInboundPorts")


def test_the_excluded_redis_bus_is_guarded_by_a_networkpolicy_between_redis_pods() -> None:
    nps = {
        n.inputs["metadata"]["name"]: n.inputs["spec"]
        for n in program_capture("prod").of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if n.inputs["metadata"]["namespace"] == DATA_NS
    }
    bus = {"protocol": "TCP", "port": data_mod.REDIS_BUS_PORT}
    redis = {"matchLabels": data_mod.REDIS_PODS}
    # every ingress rule that opens the bus: only the Redis pods, from the Redis pods
    (spec,) = [spec for spec in nps.values() for r in spec.get("ingress", []) if bus in r["ports"]]
    assert spec["podSelector"] == redis
    (rule,) = spec["ingress"]
    assert rule["from"] == [{"podSelector": redis}]


# --------------------------------------------------------------------------- defect 2


@pytest.mark.parametrize("stack", STACKS)
def test_cnpg_status_port_bypasses_the_instance_sidecars(stack: str) -> None:
    """The operator calls https://<pod IP>:8000/pg/status with no Service in front; CNPG copies
    inheritedMetadata.annotations onto each instance pod when it creates it."""
    spec = _one(program_capture(stack), "Cluster")["spec"]
    ann = spec["inheritedMetadata"]["annotations"]
    inbound = _ports(ann, "traffic.sidecar.istio.io/excludeInboundPorts")
    assert data_mod.CNPG_STATUS_PORT in inbound
    assert data_mod.PG_PORT not in inbound  # clients and replication stay on mTLS


# --------------------------------------------------------------------------- defect 3


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_vault_logs_in_as_a_cnpg_managed_role_with_a_password_secret(stack: str) -> None:
    """CNPG 1.27: enableSuperuserAccess defaults to false (postgres has a NULL password), so
    Vault gets a managed role with CREATEROLE whose password Secret holds the admin password."""
    cap = program_capture(stack)
    spec = _one(cap, "Cluster")["spec"]
    assert spec.get("enableSuperuserAccess") is not True
    (role,) = spec["managed"]["roles"]
    assert role["name"] == "vault" and role["login"] is True and role["createrole"] is True
    assert role["superuser"] is False
    (secret,) = [
        s.inputs
        for s in cap.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == role["passwordSecret"]["name"]
    ]
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["metadata"]["namespace"] == DATA_NS
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in unsecret(secret["data"]).items()}
    from tests.unit.conftest import PG_PW

    assert data == {"username": "vault", "password": PG_PW}
    # the Vault mount logs in with that same role
    (mount,) = cap.of_type("vault:database/secretsMount:SecretsMount")
    (conn,) = unsecret(mount.inputs["postgresqls"])
    assert conn["username"] == role["name"]


def test_a_reserved_cnpg_role_is_refused_for_vault() -> None:
    from components import settings as S
    from tests.unit.conftest import load_stack_raw, set_obj, with_secrets

    raw = set_obj(with_secrets(load_stack_raw("prod")), "vault", "postgres.adminUser", "postgres")
    with pytest.raises(S.SettingsError, match="reserved by CloudNativePG"):
        S.load_settings(raw, {}, None, stack="prod")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_vault_database_mount_waits_for_the_cnpg_cluster(stack: str) -> None:
    cap = program_capture(stack)
    pg = _one(cap, "Cluster")
    import json

    waits = json.loads(pg["metadata"]["annotations"]["pulumi.com/waitFor"])
    assert waits == [
        "condition=Ready",
        "jsonpath={.status.managedRolesStatus.byStatus.reconciled[0]}=vault",
    ]
    deps = cap.dependencies["vault:database/secretsMount:SecretsMount::database"]
    assert "kubernetes:postgresql.cnpg.io/v1:Cluster::postgres" in deps


def test_local_vault_uses_its_own_postgres_and_does_not_wait_for_cnpg() -> None:
    pg = _one(program_capture("local"), "Cluster")
    assert "pulumi.com/waitFor" not in (pg["metadata"].get("annotations") or {})
    assert "managed" not in pg["spec"]


# --------------------------------------------------------------------------- defect 6


@pytest.mark.parametrize("stack", STACKS)
def test_redis_pdbs_are_the_operators_not_ours(stack: str) -> None:
    """redis-operator v0.16.0 deletes the PDB ``<cluster>-<role>`` on every reconcile unless
    ``pdb.enabled`` (k8sutils/poddisruption.go): it must own them, with both roles' settings
    equal (it builds the follower's from the leader's)."""
    cap = program_capture(stack)
    spec = _one(cap, "RedisCluster")["spec"]
    assert spec["redisLeader"]["pdb"] == {"enabled": True, "maxUnavailable": 1}
    assert spec["redisFollower"]["pdb"] == spec["redisLeader"]["pdb"]
    ours = _pdbs(cap, DATA_NS)
    operator_names = {f"{data_mod.REDIS_NAME}-{role}" for role in ("leader", "follower")}
    assert not operator_names & set(ours), "a PDB the operator would delete"


# --------------------------------------------------------------------------- defect 7

VS = "kubernetes:networking.istio.io/v1beta1:VirtualService::virtual-service"
GREEN_API = "kubernetes:apps/v1:Deployment::api-green"


def _ordering(stack: str, previous: int, phase: int) -> tuple[bool, bool]:
    """(VirtualService waits for green api, green api waits for the VirtualService)."""
    from tests.unit.conftest import run_program, settings_for

    deps = run_program(settings_for(stack, phase=phase, previous=previous)).dependencies
    return GREEN_API in deps[VS], VS in deps[GREEN_API]


@pytest.mark.parametrize(("previous", "phase"), [(3, 2), (4, 0), (1, 0), (2, 0)])
def test_plain_up_that_lowers_the_weight_moves_traffic_before_green_shrinks(
    previous: int, phase: int
) -> None:
    assert _ordering("prod", previous, phase) == (False, True)


@pytest.mark.parametrize(("previous", "phase"), [(None, 0), (0, 1), (2, 3), (3, 3)])
def test_plain_up_that_raises_the_weight_scales_green_before_traffic_moves(
    previous: int | None, phase: int
) -> None:
    assert _ordering("prod", previous, phase) == (True, False)  # type: ignore[arg-type]


def test_app_pods_keep_serving_while_their_endpoint_removal_propagates() -> None:
    for d in program_capture("prod").of_type("kubernetes:apps/v1:Deployment"):
        if d.inputs["metadata"]["namespace"] != APP_NS:
            continue
        (c,) = d.inputs["spec"]["template"]["spec"]["containers"]
        sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = d.inputs["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert 0 < sleep < grace


# --------------------------------------------------------------------------- defect 5


def _scrapes(cap: Capture) -> list[dict[str, Any]]:
    return [r.inputs for k in ("ServiceMonitor", "PodMonitor", "ScrapeConfig") for r in cap.crs(k)]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("prefix", sorted(PRODUCERS))
def test_every_producer_the_rules_read_has_a_scrape_object_prometheus_selects(
    stack: str, prefix: str
) -> None:
    from components import prometheus as prom

    cap = program_capture(stack)
    spec = _one(cap, "Prometheus")["spec"]
    kind, ns, marker, _ = PRODUCERS[prefix]
    found = [
        s
        for s in _scrapes(cap)
        if s["kind"] == kind and s["metadata"]["namespace"] == ns and marker in repr(s["spec"])
    ]
    assert found, f"{stack}: nothing scrapes {prefix}* ({kind} in {ns})"
    field = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}.get(
        kind, "scrapeConfig"
    )
    for s in found:
        labels = s["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in spec[f"{field}Selector"]["matchLabels"].items())
        (expr,) = spec[f"{field}NamespaceSelector"]["matchExpressions"]
        assert ns in expr["values"]
    assert prom.SELECTOR.items() <= found[0]["metadata"]["labels"].items()


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_scrapes_an_app_port_through_the_sidecars(stack: str) -> None:
    """Under STRICT a scrape of 8080 from Prometheus' sidecar is passthrough plaintext."""
    cap = program_capture(stack)
    for s in _scrapes(cap):
        sel = s["spec"].get("namespaceSelector", {})
        if APP_NS in sel.get("matchNames", [s["metadata"]["namespace"]]):
            eps = s["spec"].get("endpoints", []) + s["spec"].get("podMetricsEndpoints", [])
            assert all(e.get("path") == "/stats/prometheus" for e in eps), s["metadata"]["name"]
    # the app pods announce their metrics port for the injector's merge
    for d in cap.of_type("kubernetes:apps/v1:Deployment"):
        if d.inputs["metadata"]["namespace"] == APP_NS:
            ann = d.inputs["spec"]["template"]["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "8080"


@pytest.mark.parametrize("stack", STACKS)
def test_cnpg_podmonitor_is_ours_not_the_deprecated_operator_one(stack: str) -> None:
    spec = _one(program_capture(stack), "Cluster")["spec"]
    assert not spec.get("monitoring", {}).get("enablePodMonitor")


# --------------------------------------------------------------------------- preflight


POOL = "node.claude-enhancer.io/pool"
ZONES = ("eu-central-1a", "eu-central-1b", "eu-central-1c")
DATA_TAINT = {"key": "dedicated", "value": "data", "effect": "NoSchedule"}


def _node(pool: str, zone: str, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"ip-{pool}-{zone}",
            "labels": {POOL: pool, "topology.kubernetes.io/zone": zone},
        },
        "spec": {
            "taints": taints if taints is not None else ([DATA_TAINT] if pool == "data" else [])
        },
    }


#: node groups as a real cluster has them: every pool in every zone, the data pool tainted.
NODE_GROUPS = [_node(pool, z) for pool in ("system", "app", "data") for z in ZONES]


class _Cluster:
    """A cluster as the preflight reads it: every requirement present, plus ``objects``."""

    def __init__(self, objects: dict[str, Any], nodes: list[dict[str, Any]] | None = None) -> None:
        self.objects = {
            f"/api/v1/nodes?labelSelector={POOL}": {
                "items": NODE_GROUPS if nodes is None else nodes
            },
            **objects,
        }

    def crd_names(self) -> set[str]:
        from components import preflight as P

        return {crd for crd, _pin, _hint in P.CRDS.values()}

    def exists(self, path: str) -> bool:
        return True

    def get_json(self, path: str) -> Any:
        return self.objects.get(path)


def _cnpg_webhook_cluster(
    pod_annotations: dict[str, str] | None = None,
    injected: bool = True,
    root_mode: str | None = "STRICT",
    ns_mode: str | None = None,
) -> _Cluster:
    """cloudnative-pg v1.27.1's install: cnpg-webhook-service 443 -> 9443 (config/webhook)."""
    containers = [{"name": "manager", "ports": [{"name": "webhook-server", "containerPort": 9443}]}]
    if injected:
        containers.append({"name": "istio-proxy"})
    pas = []
    if root_mode:
        pas.append(
            {
                "metadata": {"namespace": "istio-system", "name": "default"},
                "spec": {"mtls": {"mode": root_mode}},
            }
        )
    if ns_mode:
        pas.append(
            {
                "metadata": {"namespace": "cnpg-system", "name": "default"},
                "spec": {"mtls": {"mode": ns_mode}},
            }
        )
    return _Cluster(
        {
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": {
                "items": [
                    {
                        "metadata": {"name": "cnpg-validating-webhook-configuration"},
                        "webhooks": [
                            {
                                "name": "vcluster.cnpg.io",
                                "clientConfig": {
                                    "service": {
                                        "namespace": "cnpg-system",
                                        "name": "cnpg-webhook-service",
                                        "port": 443,
                                    }
                                },
                            }
                        ],
                    }
                ]
            },
            "/api/v1/namespaces/cnpg-system/services/cnpg-webhook-service": {
                "spec": {
                    "selector": {"app.kubernetes.io/name": "cloudnative-pg"},
                    "ports": [{"port": 443, "targetPort": "webhook-server"}],
                }
            },
            "/api/v1/namespaces/cnpg-system/pods?labelSelector=app.kubernetes.io/name=cloudnative-pg": {
                "items": [
                    {
                        "metadata": {
                            "name": "cnpg-controller-manager-0",
                            "labels": {"app.kubernetes.io/name": "cloudnative-pg"},
                            "annotations": pod_annotations or {},
                        },
                        "spec": {"containers": containers},
                    }
                ]
            },
            "/apis/security.istio.io/v1/peerauthentications": {"items": pas},
        }
    )


def test_preflight_refuses_a_webhook_behind_a_strict_sidecar_with_one_line() -> None:
    from components import preflight as P
    from components.settings import SettingsError
    from tests.unit.conftest import settings_for

    with pytest.raises(SettingsError) as e:
        P.check(settings_for("prod"), _cnpg_webhook_cluster())
    lines = [ln for ln in str(e.value).splitlines() if "webhook" in ln]
    assert len(lines) == 1
    assert "cnpg-system/cnpg-webhook-service:443" in lines[0] and "port 9443" in lines[0]
    assert 'traffic.sidecar.istio.io/excludeInboundPorts: "9443"' in lines[0]


@pytest.mark.parametrize(
    "cluster",
    [
        _cnpg_webhook_cluster({"traffic.sidecar.istio.io/excludeInboundPorts": "9443"}),
        _cnpg_webhook_cluster(injected=False),
        _cnpg_webhook_cluster(root_mode=None),  # PERMISSIVE by default
        _cnpg_webhook_cluster(ns_mode="PERMISSIVE"),  # the namespace's policy wins
    ],
    ids=["port-excluded", "not-injected", "no-strict", "namespace-permissive"],
)
def test_preflight_passes_a_webhook_the_api_server_can_reach(cluster: _Cluster) -> None:
    from components import preflight as P
    from tests.unit.conftest import settings_for

    P.check(settings_for("prod"), cluster)


def test_preflight_counts_the_mesh_wide_strict_the_stack_would_apply() -> None:
    import dataclasses

    from components import preflight as P
    from components.settings import SettingsError
    from tests.unit.conftest import settings_for

    s = settings_for("prod")
    P.check(s, _cnpg_webhook_cluster(root_mode=None))
    wide = dataclasses.replace(s, mesh=dataclasses.replace(s.mesh, mesh_wide_mtls=True))
    with pytest.raises(SettingsError, match="cnpg-webhook-service"):
        P.check(wide, _cnpg_webhook_cluster(root_mode=None))


# --------------------------------------------------------------------------- defect 11 (mTLS scope)


def test_prod_mtls_is_strict_in_our_namespaces_not_mesh_wide() -> None:
    pas = program_capture("prod").crs("PeerAuthentication")
    assert {p.inputs["metadata"]["namespace"] for p in pas} == {APP_NS, DATA_NS, MON_NS}
    assert all(p.inputs["spec"] == {"mtls": {"mode": "STRICT"}} for p in pas)


# --------------------------------------------------------------------------- defects 8 and 10

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _hpas(cap: Capture) -> dict[str, dict[str, Any]]:
    return {h.inputs["spec"]["scaleTargetRef"]["name"]: h.inputs["spec"] for h in cap.of_type(HPA)}


@pytest.mark.parametrize("stack", STACKS)
def test_green_tracks_autoscale_too(stack: str) -> None:
    cap = program_capture(stack, 3)
    deps = {
        d.inputs["metadata"]["name"]: d.inputs
        for d in cap.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["namespace"] == APP_NS
    }
    hpas = _hpas(cap)
    assert set(hpas) == set(deps)
    for name, spec in hpas.items():
        if name.endswith("-green"):
            # the phase's size stays the program's; the HPA adds under load, and the next
            # phase step wins over the HPA's ownership of spec.replicas
            assert spec["minReplicas"] <= deps[name]["spec"]["replicas"] <= spec["maxReplicas"]
            assert deps[name]["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


@pytest.mark.parametrize("stack", STACKS)
def test_memory_target_is_above_normal_usage_and_below_the_limit(stack: str) -> None:
    """A pod's memory does not fall as replicas are added: a memory target at or below the
    normal usage (the request) asks for more pods forever and pins the track at its maximum."""
    from tests.unit.test_real_cluster import qty

    cap = program_capture(stack)
    res = {
        d.inputs["metadata"]["name"]: d.inputs["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]
        for d in cap.of_type("kubernetes:apps/v1:Deployment")
    }
    for name, spec in _hpas(cap).items():
        (mem,) = [m for m in spec["metrics"] if m["resource"]["name"] == "memory"]
        target = (
            qty(res[name]["requests"]["memory"])
            * mem["resource"]["target"]["averageUtilization"]
            / 100
        )
        assert qty(res[name]["requests"]["memory"]) < target < qty(res[name]["limits"]["memory"])


@pytest.mark.parametrize("stack", STACKS)
def test_one_drain_never_takes_the_serving_canary_down(stack: str) -> None:
    """At phase 1 the canary serves sticky users: its PDB allows one disruption, so it needs
    at least two pods (and its HPA never goes below that)."""
    cap = program_capture(stack, 1)
    (green,) = [
        d.inputs
        for d in cap.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["name"] == "api-green"
    ]
    pdb = _pdbs(cap, APP_NS)["api-green"]["spec"]
    allowed = pdb.get("maxUnavailable", green["spec"]["replicas"] - pdb.get("minAvailable", 0))
    assert green["spec"]["replicas"] - allowed >= 1
    assert _hpas(cap)["api-green"]["minReplicas"] >= 2


# --------------------------------------------------------------------------- defect 9


def _zone_filter_passes(
    constraint: dict[str, Any], zone: str, pods: dict[str, int], tainted: set[str]
) -> bool:
    """Kubernetes v1.34 PodTopologySpread Filter for one zone constraint, as in
    pkg/scheduler/framework/plugins/podtopologyspread: domains are the zones of eligible nodes
    (common.go:50-53: with nodeTaintsPolicy Honor a node with an untolerated NoSchedule taint
    is not eligible; Ignore is the default); the global minimum is 0 while fewer domains than
    minDomains exist (filtering.go:56-66); skew = matchNum + 1 - min must be <= maxSkew."""
    honor = constraint.get("nodeTaintsPolicy", "Ignore") == "Honor"
    domains = {z: n for z, n in pods.items() if not (honor and z in tainted)}
    if constraint["whenUnsatisfiable"] == "ScheduleAnyway":
        return True
    if zone not in domains:
        return False
    low = min(domains.values())
    if len(domains) < constraint.get("minDomains", 1):
        low = 0
    return domains[zone] + 1 - low <= int(constraint["maxSkew"])


@pytest.mark.parametrize("stack", STACKS)
def test_a_zone_outage_leaves_no_replacement_pod_pending(stack: str) -> None:
    """zone-c is down: its nodes carry node.kubernetes.io/unreachable:NoSchedule (no pod
    tolerates it) and its pods are gone; the replacements and HPA pods must fit in a and b."""
    cap = program_capture(stack, 3)
    for d in cap.of_type("kubernetes:apps/v1:Deployment"):
        if d.inputs["metadata"]["namespace"] != APP_NS:
            continue
        pod = d.inputs["spec"]["template"]["spec"]
        (zone,) = [
            c for c in pod["topologySpreadConstraints"] if c["topologyKey"].endswith("/zone")
        ]
        placed = {"a": 0, "b": 0, "c": 0}
        for _ in range(int(d.inputs["spec"].get("replicas") or 6)):  # replacements, HPA pods
            fits = [z for z in ("a", "b") if _zone_filter_passes(zone, z, placed, {"c"})]
            assert fits, f"{stack}: {d.inputs['metadata']['name']} pod Pending with {placed}"
            placed[min(fits, key=placed.__getitem__)] += 1


# --------------------------------------------------------------------------- defect 4


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_existing_mode_patches_no_node(stack: str) -> None:
    """The kubelet and the node controller own real nodes (region label, atomic spec.taints)."""
    cap = program_capture(stack)
    assert cap.of_type("kubernetes:core/v1:NodePatch") == []
    assert cap.of_type("kubernetes:core/v1:Node") == []


def test_preflight_checks_what_the_node_groups_must_provide() -> None:
    from components import preflight as P
    from components.settings import SettingsError
    from tests.unit.conftest import settings_for

    s = settings_for("prod")
    P.check(s, _Cluster({}))
    no_zone_c = [
        n
        for n in NODE_GROUPS
        if not (
            n["metadata"]["labels"][POOL] == "app"
            and n["metadata"]["labels"]["topology.kubernetes.io/zone"].endswith("c")
        )
    ]
    with pytest.raises(SettingsError, match=f"{POOL}=app in zone.s. eu-central-1c"):
        P.check(s, _Cluster({}, no_zone_c))
    # a cordoned data node keeps its pool taint next to the node controller's own
    untainted = [
        *NODE_GROUPS[:-1],
        _node(
            "data", ZONES[2], [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        ),
    ]
    with pytest.raises(SettingsError, match="without the taint dedicated=data:NoSchedule"):
        P.check(s, _Cluster({}, untainted))


# --------------------------------------------------------------------------- defect 11


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_real_cluster_stacks_pull_from_the_release_registry(stack: str) -> None:
    from tests.unit.conftest import settings_for

    s = settings_for(stack)
    assert not s.app.registry.startswith("registry.local")
    for d in program_capture(stack).of_type("kubernetes:apps/v1:Deployment"):
        for c in d.inputs["spec"]["template"]["spec"]["containers"]:
            assert c["image"].startswith(s.app.registry + "/")


def test_registry_local_is_refused_on_an_existing_cluster() -> None:
    from components import settings as S
    from tests.unit.conftest import load_stack_raw, set_obj, with_secrets

    raw = set_obj(
        with_secrets(load_stack_raw("prod")), "app", "registry", "registry.local/claude-enhancer"
    )
    with pytest.raises(S.SettingsError, match="local platform's registry"):
        S.load_settings(raw, {}, None, stack="prod")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_real_cluster_volumes_name_a_storage_class(stack: str) -> None:
    cap = program_capture(stack)
    pg = _one(cap, "Cluster")["spec"]["storage"]
    rc = _one(cap, "RedisCluster")["spec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert pg["storageClass"] == rc["storageClassName"] == "gp3"


def test_preflight_refuses_a_cluster_without_the_storage_class_or_a_default() -> None:
    import dataclasses

    from components import preflight as P
    from components.settings import SettingsError
    from tests.unit.conftest import settings_for

    s = settings_for("prod")
    missing = P.missing(
        P.requirements(s, P.read_versions()),
        _Cluster({}).crd_names(),
        lambda p: "storageclasses" not in p,
    )
    assert len(missing) == 1 and "StorageClass gp3" in missing[0]
    unnamed = dataclasses.replace(s, data=dataclasses.replace(s.data, storage_class=None))
    with pytest.raises(SettingsError, match="missing a default StorageClass"):
        P.check(unnamed, _Cluster({}))
    default = {"metadata": {"name": "std", "annotations": {P.DEFAULT_CLASS: "true"}}}
    P.check(unnamed, _Cluster({"/apis/storage.k8s.io/v1/storageclasses": {"items": [default]}}))
