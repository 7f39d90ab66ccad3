"""App component: blue/green tracks, hardening, scaling, registry."""

from __future__ import annotations

import json

import pytest

from rollout import phases as rollout
from tests.unit.conftest import Registered, program_capture, settings_for

DEP = "kubernetes:apps/v1:Deployment"


def deployments(stack: str = "local", phase: int = 0) -> dict[str, Registered]:
    return {d.inputs["metadata"]["name"]: d for d in program_capture(stack, phase).of_type(DEP)}


def _cpu_m(v: str) -> int:
    return int(v[:-1]) if v.endswith("m") else int(float(v) * 1000)


def _mem_mi(v: str) -> int:
    assert v.endswith("Mi") or v.endswith("Gi")
    return int(v[:-2]) * (1024 if v.endswith("Gi") else 1)


def test_six_deployments_blue_green() -> None:
    deps = deployments()
    assert set(deps) == {
        f"{s}-{c}" for s in ("api", "workflow-engine", "agent-runtime") for c in ("blue", "green")
    }
    for name, d in deps.items():
        track = "stable" if name.endswith("blue") else "canary"
        assert d.inputs["spec"]["selector"]["matchLabels"]["track"] == track
        assert d.inputs["spec"]["template"]["metadata"]["labels"]["track"] == track


def test_security_context_hardening() -> None:
    for d in deployments("prod").values():
        pod = d.inputs["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert sc["runAsUser"] > 0


def test_resources_within_spec_budget() -> None:
    for d in deployments("prod").values():
        for c in d.inputs["spec"]["template"]["spec"]["containers"]:
            lim, req = c["resources"]["limits"], c["resources"]["requests"]
            assert _cpu_m(lim["cpu"]) < 2000 and _mem_mi(lim["memory"]) < 4096
            assert _cpu_m(req["cpu"]) <= _cpu_m(lim["cpu"])
            assert _mem_mi(req["memory"]) <= _mem_mi(lim["memory"])


def test_startup_probe_under_30s() -> None:
    for d in deployments().values():
        for c in d.inputs["spec"]["template"]["spec"]["containers"]:
            p = c["startupProbe"]
            assert p["failureThreshold"] * p["periodSeconds"] < 30
            assert c["readinessProbe"] and c["livenessProbe"]


def test_images_pinned_by_tag() -> None:
    s = settings_for()
    for name, d in deployments().items():
        (c,) = d.inputs["spec"]["template"]["spec"]["containers"]
        repo, tag = c["image"].rsplit(":", 1)
        assert tag not in ("", "latest")
        assert repo == f"registry.local/claude-enhancer/{name.rsplit('-', 1)[0]}"
        assert tag == (s.app.stable_version if name.endswith("blue") else s.app.canary_version)


def test_topology_spread_and_pool_affinity() -> None:
    for d in deployments().values():
        pod = d.inputs["spec"]["template"]["spec"]
        zones = [
            t
            for t in pod["topologySpreadConstraints"]
            if t["topologyKey"] == "topology.kubernetes.io/zone"
        ]
        assert (
            zones and zones[0]["whenUnsatisfiable"] == "DoNotSchedule" and zones[0]["maxSkew"] == 1
        )
        # per revision, or a rolling update leaves the new pods in fewer zones
        assert zones[0]["matchLabelKeys"] == ["pod-template-hash"]
        # issue 23 defect 9: no minDomains (a zone outage left pods Pending; was == 3); the
        # failed zone's tainted nodes drop out of the count instead
        assert "minDomains" not in zones[0] and zones[0]["nodeTaintsPolicy"] == "Honor"
        term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]
        assert term["matchExpressions"][0]["values"] == ["app"]


@pytest.mark.parametrize("phase", [0, 1, 2, 3, 4])
def test_canary_replicas_follow_phase(phase: int) -> None:
    s = settings_for("prod")
    deps = deployments("prod", phase)
    for svc in s.app.services:
        green = deps[f"{svc.name}-green"].inputs["spec"]
        if svc.name == "api":  # the VirtualService splits api traffic
            assert green["replicas"] == rollout.canary_replicas(phase, svc.replicas)
        else:  # internal green backends: warm at full size in every phase
            assert green["replicas"] == svc.replicas
        assert "replicas" not in deps[f"{svc.name}-blue"].inputs["spec"]  # owned by the HPA


def test_hpa_on_blue_with_full_size_minimum() -> None:
    s = settings_for("prod")
    hpas = [
        h
        for h in program_capture("prod").of_type(
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
        )
        if h.inputs["spec"]["scaleTargetRef"]["name"].endswith("-blue")
    ]
    # issue 23 defect 8: green has HPAs too (tests/unit/test_upstream_behaviour.py); 3 blue ones
    assert len(hpas) == 3
    for h in hpas:
        spec = h.inputs["spec"]
        svc = s.app.service(spec["scaleTargetRef"]["name"].rsplit("-", 1)[0])
        assert spec["scaleTargetRef"]["name"].endswith("-blue")
        assert spec["minReplicas"] == svc.replicas >= 2
        assert spec["maxReplicas"] == svc.max_replicas


def test_pdb_per_track() -> None:
    pdbs = [
        p
        for p in program_capture().of_type("kubernetes:policy/v1:PodDisruptionBudget")
        if p.inputs["metadata"]["namespace"] == "claude-enhancer"
    ]
    assert len(pdbs) == 6
    assert all(p.inputs["spec"]["maxUnavailable"] == 1 for p in pdbs)


def test_agent_registry_configmap() -> None:
    cms = [
        c
        for c in program_capture().of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["name"] == "agent-registry"
    ]
    (cm,) = cms
    doc = json.loads(cm.inputs["data"]["agents.json"])
    assert doc["counts"] == {"total": 61, "standard": 56, "system": 5}
    assert len({a["name"] for a in doc["agents"]}) == 61


def test_service_accounts_no_automount() -> None:
    sas = program_capture().of_type("kubernetes:core/v1:ServiceAccount")
    assert {(s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) for s in sas} == {
        ("claude-enhancer", "api"),
        ("claude-enhancer", "workflow-engine"),
        ("claude-enhancer", "agent-runtime"),
        ("claude-enhancer-data", "claude-enhancer-redis"),
        ("claude-enhancer-data", "redis-rotator"),  # the Redis rotator's CronJob
        ("claude-enhancer", "vault-token-reviewer"),  # Vault's TokenReview identity
        ("claude-enhancer-monitoring", "prometheus"),  # the operator's Prometheus
        ("claude-enhancer-monitoring", "alertmanager"),
    }
    assert all(s.inputs["automountServiceAccountToken"] is False for s in sas)


def test_track_downstream_services() -> None:
    svcs = {
        s.inputs["metadata"]["name"]: s.inputs["spec"]
        for s in program_capture().of_type("kubernetes:core/v1:Service")
    }
    assert svcs["api"]["selector"] == {"app.kubernetes.io/name": "api"}
    assert svcs["workflow-engine-canary"]["selector"] == {
        "app.kubernetes.io/name": "workflow-engine",
        "track": "canary",
    }
    green = deployments()["api-green"].inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in green["env"]}
    assert env["WORKFLOW_ENGINE_URL"].startswith("http://workflow-engine-canary.")


def test_images_pinned_by_digest_when_configured() -> None:
    from components.app import image
    from components.settings import SettingsError, load_settings
    from tests.unit.conftest import load_stack_raw, set_obj, with_secrets

    digest = "sha256:" + "ab" * 32
    raw = set_obj(
        with_secrets(load_stack_raw("local")), "app", "services.api.digests", {"5.1.0": digest}
    )
    s = load_settings(raw, {}, None, stack="local")
    assert image(s.app, "api", "canary") == f"registry.local/claude-enhancer/api:5.1.0@{digest}"
    assert image(s.app, "api", "stable") == "registry.local/claude-enhancer/api:5.0.3"
    assert (
        image(s.app, "workflow-engine", "canary")
        == "registry.local/claude-enhancer/workflow-engine:5.1.0"
    )
    bad = set_obj(raw, "app", "services.api.digests", {"5.1.0": "sha256:short"})
    with pytest.raises(
        SettingsError, match=r"claude-enhancer:app\.services\.api\.digests\.5\.1\.0"
    ):
        load_settings(bad, {}, None, stack="local")
