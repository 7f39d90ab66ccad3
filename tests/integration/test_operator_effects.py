"""Issue 23: what the real operators do to what the program declared, and the scrape
configuration the real prometheus-operator renders from the program's CRs.

After the `local` stack's `up` (the session's one), with cnpg-manager, redis-operator,
prometheus-operator and kube-controller-manager running (platform/local.sh):

- once the operators have reconciled, `pulumi preview --refresh --expect-no-changes` is clean, no
  declared object is gone, and no operator's field manager owns a field the program set (or
  would conflict with the program's next apply);
- the operator's Prometheus configuration has a job for every metric the gate, the judge, the
  rules and the dashboards read, in the namespace its producer runs in, on a port that works
  under STRICT mTLS.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import prometheus as prom
from components.data import PG_NAME, REDIS_NAME
from tests.integration.conftest import LocalProject, kubectl, kubectl_json, kubectl_run, wait_for
from tests.metric_producers import (
    DATA_NS,
    MON_NS,
    PRODUCERS,
    UNSCRAPED,
    metrics_read,
    producer_of,
)

#: The field managers of the platform's controllers, as they appear in managedFields: CNPG's
#: (cnpg-manager), redis-operator's, prometheus-operator's (PrometheusOperator, on status) and
#: the controller manager's (HPA, ReplicaSet, endpoint and node controllers).
OPERATORS = ("cnpg-manager", "redis-operator", "PrometheusOperator", "kube-controller-manager")
K8S_PREFIX = "kubernetes:"


def _operators_reconciled(env: dict[str, str]) -> None:
    """Each operator has done its work on the program's CRs: the CNPG Cluster healthy, the Redis
    Cluster's pods Ready, the Prometheus configuration rendered."""

    def probe() -> tuple[bool, Any]:
        pg = kubectl_json(env, "get", "clusters.postgresql.cnpg.io", "-n", DATA_NS, PG_NAME)
        rc = kubectl_json(env, "get", "redisclusters.redis.redis.opstreelabs.in", "-n", DATA_NS,
                          REDIS_NAME)  # fmt: skip
        secrets = kubectl_json(env, "get", "secrets", "-n", MON_NS)["items"]
        rs = rc.get("status", {})
        seen = (
            pg.get("status", {}).get("phase"),
            # kwok runs no Redis, so the cluster never leaves "Bootstrap": the operator's own
            # objects (StatefulSets, Services, PDBs) are in place once its pods are Ready
            (rs.get("readyLeaderReplicas"), rs.get("readyFollowerReplicas")),
            f"prometheus-{prom.NAME}" in {s["metadata"]["name"] for s in secrets},
        )
        return seen == ("Cluster in healthy state", (3, 3), True), seen

    wait_for("operators reconciled (CNPG healthy, Redis Ready, Prometheus config)", 300, probe)


#: The operators' CRs of the program, each watched by its operator (redis-operator's controller
#: is For(&RedisCluster{}) alone, controllers/rediscluster_controller.go:248, and otherwise
#: requeues after 60 s).
OPERATED = (
    ("clusters.postgresql.cnpg.io", DATA_NS, PG_NAME),
    ("redisclusters.redis.redis.opstreelabs.in", DATA_NS, REDIS_NAME),
    ("prometheuses.monitoring.coreos.com", MON_NS, prom.NAME),
)
TOUCH = "ce-test.claude-enhancer.io/reconcile"
SETTLE_S = 5


def _reconcile_now(env: dict[str, str]) -> None:
    """An update of each operated CR (an annotation of the test's own, set and removed) queues a
    reconcile at once: what the operators do to the program's objects happens before the
    check, not up to a minute after it."""
    for suffix in (f"={time.time():.0f}", "-"):
        for kind, ns, name in OPERATED:
            kubectl(env, "annotate", "-n", ns, kind, name, f"{TOUCH}{suffix}", "--overwrite",
                    "--field-manager=ce-test")  # fmt: skip
        time.sleep(SETTLE_S)


# --------------------------------------------------------------------------- ownership


@dataclass(frozen=True)
class Declared:
    """A Kubernetes object in the program's state, with the field manager its provider uses."""

    api_version: str
    kind: str
    namespace: str
    name: str
    manager: str
    inputs: dict[str, Any]

    @property
    def type_arg(self) -> str:
        """``Kind.version.group`` for kubectl (the core group has none)."""
        group, _, version = self.api_version.rpartition("/")
        return f"{self.kind}.{version}.{group}" if group else self.kind

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def declared_objects(state: str) -> list[Declared]:
    out = []
    for r in json.loads(state)["deployment"]["resources"]:
        outputs = r.get("outputs") or {}
        if not r["type"].startswith(K8S_PREFIX) or "__fieldManager" not in outputs:
            continue
        meta = outputs["metadata"]
        out.append(
            Declared(
                outputs["apiVersion"],
                outputs["kind"],
                meta.get("namespace") or "",
                meta["name"],
                outputs["__fieldManager"],
                r["inputs"],
            )
        )
    return out


def field_leaves(fields: dict[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The owned paths of a managedFields ``fieldsV1`` (``.`` = the map or item itself)."""
    out: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        if key == ".":
            out.add(path)
        elif sub:
            out |= field_leaves(sub, (*path, key))
        else:
            out.add((*path, key))
    return out


def field_name(path: tuple[str, ...]) -> str:
    return "".join(f".{k[2:]}" if k.startswith("f:") else f"[{k[2:]}]" for k in path) or "."


def ownership_problems(
    declared: Iterable[Declared],
    live: dict[tuple[str, str, str, str], dict[str, Any]],
    dry_apply: Callable[[Declared], str],
) -> list[str]:
    """Pure but for ``dry_apply`` (the program's own apply, server-side dry run, without force:
    what it answers about conflicts). One line per object gone, per field an operator's manager
    shares with the program's, and per conflict of the program's next apply."""
    problems = []
    for d in declared:
        obj = live.get((d.api_version, d.kind, d.namespace, d.name))
        if obj is None:
            problems.append(f"{d}: deleted")
            continue
        entries = [
            e for e in obj["metadata"].get("managedFields") or [] if not e.get("subresource")
        ]
        ours = [e for e in entries if e["manager"] == d.manager]
        if not ours:
            problems.append(f"{d}: the program's manager {d.manager} owns none of it")
            continue
        mine = set().union(*(field_leaves(e.get("fieldsV1") or {}) for e in ours))
        foreign = [e for e in entries if e["manager"] in OPERATORS]
        for e in foreign:
            for path in sorted(mine & field_leaves(e.get("fieldsV1") or {})):
                problems.append(f"{d}: {field_name(path)} is also owned by {e['manager']}")
        if foreign:
            # a field the operator took over with another value has left the program's entry:
            # the program's next apply says so, as a conflict naming the manager
            problems += [f"{d}: {line.strip()}" for line in dry_apply(d).splitlines()
                         if "conflict with" in line]  # fmt: skip
    return problems


def _live_objects(
    env: dict[str, str], declared: list[Declared]
) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    types = sorted({d.type_arg for d in declared})
    items = kubectl_json(env, "get", ",".join(types), "-A", "--show-managed-fields")["items"]
    return {
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace") or "", o["metadata"]["name"]): o
        for o in items
    }


def _dry_apply(env: dict[str, str], tmp: Path) -> Callable[[Declared], str]:
    def apply(d: Declared) -> str:
        if "ciphertext" in json.dumps(d.inputs):
            return ""  # a Secret's values are not in the export; operators write none of ours
        path = tmp / f"{d.kind}-{d.namespace}-{d.name}.json"
        path.write_text(json.dumps(d.inputs))
        r = kubectl_run(
            env, "apply", "--server-side", "--dry-run=server", f"--field-manager={d.manager}",
            "-o", "name", "-f", str(path),
        )  # fmt: skip
        return r.stderr

    return apply


def test_operators_leave_what_the_program_declared_alone(
    local_project: LocalProject, tmp_path: Path
) -> None:
    env = local_project.env
    _operators_reconciled(env)
    _reconcile_now(env)
    declared = declared_objects(local_project.export_state())
    assert len(declared) > 50, [str(d) for d in declared]
    problems = ownership_problems(declared, _live_objects(env, declared), _dry_apply(env, tmp_path))
    assert not problems, "operators changed what the program declared:\n" + "\n".join(problems)
    # what the field check cannot see (a value the provider reads back differently) shows here
    local_project.pulumi("preview", "--refresh", "--expect-no-changes", "--diff")


# --------------------------------------------------------------------------- scrape coverage

JOB_PREFIX = {"PodMonitor": "podMonitor", "ServiceMonitor": "serviceMonitor",
              "ScrapeConfig": "scrapeConfig"}  # fmt: skip
MERGED_PORT = "15020"  # the Istio agent's merged metrics; the CNI plugin never captures it


def rendered_config(env: dict[str, str]) -> dict[str, Any]:
    """What prometheus-operator v0.85.0 renders for our Prometheus: Secret ``prometheus-<name>``
    (pkg/prometheus/common.go ConfigSecretName -> PrefixedName), key ``prometheus.yaml.gz``
    (common.go ConfigFilename), gzipped."""
    secret = kubectl_json(env, "get", "secret", "-n", MON_NS, f"prometheus-{prom.NAME}")
    return dict(
        yaml.safe_load(gzip.decompress(base64.b64decode(secret["data"]["prometheus.yaml.gz"])))
    )


def _rendered_from_live(env: dict[str, str]) -> tuple[bool, dict[str, Any]]:
    """The rendered config and whether its jobs are exactly those of the scrape objects the
    Prometheus selects now (the operator re-renders a few seconds after a change)."""
    sel = ",".join(f"{k}={v}" for k, v in prom.SELECTOR.items())
    objs = kubectl_json(env, "get", "podmonitors,servicemonitors,scrapeconfigs", "-A", "-l", sel)
    want = {
        f"{JOB_PREFIX[o['kind']]}/{o['metadata']['namespace']}/{o['metadata']['name']}"
        for o in objs["items"]
    }
    config = rendered_config(env)
    # podMonitor/<ns>/<name>/<endpoint index>, scrapeConfig/<ns>/<name> (promcfg.go)
    jobs = {
        re.sub(r"^((?:pod|service)Monitor/[^/]+/[^/]+)/\d+$", r"\1", j["job_name"])
        for j in config.get("scrape_configs") or []
    }
    return jobs == want, config


def _sd_namespaces(job: dict[str, Any]) -> list[str] | None:
    """The namespaces a job's Kubernetes discovery is limited to; None: every namespace."""
    sds = job.get("kubernetes_sd_configs") or []
    names = [n for sd in sds for n in (sd.get("namespaces") or {}).get("names", [])]
    return names or None


def _kept(job: dict[str, Any], label: str) -> str | None:
    """The regex of the job's ``keep`` relabelling on ``label``."""
    for r in job.get("relabel_configs") or []:
        if r.get("action") == "keep" and r.get("source_labels") == [label]:
            return str(r.get("regex"))
    return None


def scrape_problems(
    config: dict[str, Any],
    reads: dict[str, str],
    meshed: set[str],
    pods_by_ns: dict[str, list[dict[str, Any]]],
    excluded: dict[int, str],
) -> list[str]:
    """Pure: one line per metric read without a job, per job in the wrong namespace, per job
    into a STRICT namespace on a port the sidecar captures (``excluded``: inbound exclusions
    with their reasons, policies/exceptions.yaml)."""
    jobs = config.get("scrape_configs") or []
    problems = []
    for metric, where in sorted(reads.items()):
        prefix = producer_of(metric)
        if prefix is None:
            problems.append(f"{metric} ({where}): no producer in tests/metric_producers.py")
            continue
        if prefix in UNSCRAPED:
            continue
        p = PRODUCERS[prefix]
        found = [
            j for j in jobs
            if j["job_name"].startswith(f"{JOB_PREFIX[p.kind]}/{p.namespace}/")
            and p.marker in yaml.safe_dump(j)
        ]  # fmt: skip
        if not found:
            problems.append(f"{metric} ({where}): no {p.kind} job in {p.namespace}")
            continue
        for job in found:
            name, sd = job["job_name"], _sd_namespaces(job)
            if p.runs_in and sd != [p.runs_in]:
                problems.append(
                    f"{metric}: {name} discovers in {sd}, its producer runs in {p.runs_in}"
                )
            if p.runs_in is None and sd is not None:
                problems.append(f"{metric}: {name} is limited to {sd}, its producer runs elsewhere")
            if p.runs_in in meshed:
                problems += [
                    f"{metric}: {name}: {x}"
                    for x in _strict_problems(job, pods_by_ns[p.runs_in], excluded)
                ]
    return problems


def _strict_problems(
    job: dict[str, Any], pods: list[dict[str, Any]], excluded: dict[int, str]
) -> list[str]:
    """Where a job into a STRICT namespace lands: the agent's merged metrics (the injector
    rewrote prometheus.io/port to 15020), or a container port kept out of the sidecar with a
    reviewed reason."""
    port_name = _kept(job, "__meta_kubernetes_pod_container_port_name")
    if port_name is None:
        if job.get("metrics_path") != prom.MERGED_METRICS_PATH:
            return [f"scrapes {job.get('metrics_path')}, not the merged metrics"]
        ports = {
            p["metadata"].get("annotations", {}).get("prometheus.io/port")
            for p in pods
            if p["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
        }
        return [] if ports == {MERGED_PORT} else [f"pods announce ports {ports}, not {MERGED_PORT}"]
    out, seen = [], False
    for pod in pods:
        name, ann = pod["metadata"]["name"], pod["metadata"].get("annotations", {})
        skipped = _port_list(ann.get("traffic.sidecar.istio.io/excludeInboundPorts", ""))
        for c in pod["spec"]["containers"]:
            for port in c.get("ports") or []:
                if port.get("name") != port_name:
                    continue
                n, seen = port["containerPort"], True
                if n not in excluded:
                    out.append(f"port {port_name} ({n}) of {name}: no reviewed exclusion")
                elif n not in skipped:
                    out.append(f"port {port_name} ({n}) of {name}: captured by the sidecar")
    return out if seen else [f"no pod exposes port {port_name}"]


def _port_list(value: str) -> set[int]:
    return {int(x) for x in value.split(",") if x.strip()}


def _inbound_exclusions() -> dict[int, str]:
    from policies.lib.reviewed import section

    return {
        int(port): str(e["reason"])
        for e in section("sidecarPortExclusions")
        if "inbound" in (e.get("directions") or ()) and str(e.get("reason") or "").strip()
        for port in e.get("ports") or ()
    }


def test_operator_rendered_scrape_config_covers_every_metric_read(
    local_project: LocalProject,
) -> None:
    env = local_project.env
    _operators_reconciled(env)
    config = wait_for("the operator's config rendered from the live scrape objects", 120,
                   lambda: _rendered_from_live(env))  # fmt: skip
    meshed = {
        n["metadata"]["name"]
        for n in kubectl_json(env, "get", "namespaces", "-l", "istio-injection=enabled")["items"]
    }
    pods_by_ns = {
        ns: [
            p
            for p in kubectl_json(env, "get", "pods", "-n", ns)["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        for ns in meshed
    }
    reads = metrics_read()
    problems = scrape_problems(config, reads, meshed, pods_by_ns, _inbound_exclusions())
    assert not problems, "\n".join(problems)
