"""checkov's Kubernetes checks in the pack: what they catch, the reviewed exceptions, our program passes."""

from __future__ import annotations

import copy

import pytest
from policy_fixtures import deployment

from policies.lib import checkov_k8s
from policies.lib.props import plain
from policies.lib.reviewed import reviewed
from policies.rules import kubernetes_checkov, kubernetes_checkov_advisory

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"


def mandatory(rtype: str, props: dict) -> list[str]:
    return kubernetes_checkov.check(rtype, plain(props), {})


def test_every_exception_has_a_known_check_a_level_and_a_reason() -> None:
    known = {c.id for checks in checkov_k8s._registry().checks.values() for c in checks}
    entries = reviewed()["checkov"]
    assert entries and set(entries) <= known
    for check_id, entry in entries.items():
        assert entry["level"] in ("advisory", "disabled"), check_id
        assert len(entry["reason"].split()) >= 8, check_id


def test_hand_rule_admissions_have_reasons() -> None:
    for section in ("sidecarPortExclusions", "legacyTokenSecrets"):
        for entry in reviewed()[section]:
            assert len(entry["reason"].split()) >= 8


def test_compliant_deployment_passes_the_mandatory_checks() -> None:
    d = deployment()
    assert mandatory(DEPLOYMENT, d) == []
    # the advisory ones are reported (probes, pull policy...), never blocking
    assert kubernetes_checkov_advisory.check(DEPLOYMENT, plain(d), {})


@pytest.mark.parametrize(
    ("mutate", "check_id"),
    [
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "CKV_K8S_16"),
        (lambda s: s.update(hostPID=True), "CKV_K8S_17"),
        (lambda s: s.update(hostIPC=True), "CKV_K8S_18"),
        (lambda s: s.update(hostNetwork=True), "CKV_K8S_19"),
        (
            lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
            "CKV_K8S_20",
        ),
        (
            lambda s: s["containers"][0]["securityContext"]["capabilities"].update(
                add=["SYS_ADMIN"]
            ),
            "CKV_K8S_39",
        ),
        (
            lambda s: s["containers"][0].update(
                image="registry.claude-enhancer.internal/x/app:latest"
            ),
            "CKV_K8S_14",
        ),
    ],
)
def test_checkov_catches_pod_risks(mutate, check_id: str) -> None:  # type: ignore[no-untyped-def]
    d = deployment()
    mutate(d["spec"]["template"]["spec"])
    assert any(m.startswith(check_id + ":") for m in mandatory(DEPLOYMENT, d))


def test_checkov_catches_rbac_escalation() -> None:
    role = {"metadata": {"name": "r", "namespace": "app"}, "rules": []}
    # checkov 3.1.47 has no impersonate check and reads "bind" only on bindings: rbac-no-wildcards
    # judges escalate/bind/impersonate on any resource
    for verbs, check_id in (
        (["escalate"], "CKV_K8S_158"),
        (["*"], "CKV_K8S_49"),
    ):
        r = copy.deepcopy(role)
        r["rules"] = [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": verbs}
        ]
        assert any(m.startswith(check_id + ":") for m in mandatory(ROLE, r)), verbs


def test_pod_templates_inside_custom_resources_are_handed_to_checkov_as_pods() -> None:
    d = deployment()
    spec = d["spec"]["template"]["spec"]
    spec["hostNetwork"] = True
    rollout = {
        "metadata": {"name": "api", "namespace": "app"},
        "spec": {"template": d["spec"]["template"]},
    }
    found = mandatory("kubernetes:argoproj.io/v1alpha1:Rollout", rollout)
    assert (
        "spec.template.spec: CKV_K8S_19: Containers should not share the host network namespace"
        in found
    )


def test_unknown_values_and_workload_patches_are_left_to_the_hand_rules() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["hostNetwork"] = (
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"  # unknown bool
    )
    assert mandatory(DEPLOYMENT, d) == []
    patch = {"metadata": {"name": "app", "namespace": "app"}, "spec": {"replicas": 1}}
    assert mandatory(DEPLOYMENT + "Patch", patch) == []
