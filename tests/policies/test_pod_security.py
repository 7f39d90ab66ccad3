from __future__ import annotations

import pytest
from policy_fixtures import (
    UNKNOWN_BOOL,
    UNKNOWN_OBJECT,
    WORKLOAD_KINDS,
    container,
    pod_spec,
    wrap_workload,
)

from policies.lib.props import plain
from policies.rules import pod_security as rule


def run(kind: str, spec: dict) -> list[str]:
    return rule.check(WORKLOAD_KINDS[kind], plain(wrap_workload(kind, spec)), {})


@pytest.mark.parametrize("kind", sorted(WORKLOAD_KINDS))
def test_compliant_every_kind(kind: str) -> None:
    assert run(kind, pod_spec()) == []


@pytest.mark.parametrize("kind", sorted(WORKLOAD_KINDS))
def test_privileged_every_kind(kind: str) -> None:
    c = container()
    c["securityContext"]["privileged"] = True
    assert run(kind, pod_spec(containers=[c])) == [
        'container "app": securityContext.privileged must not be true'
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(hostNetwork=True), ["pod spec.hostNetwork must not be true"]),
        (lambda s: s.update(hostPID=True), ["pod spec.hostPID must not be true"]),
        (lambda s: s.update(hostIPC=True), ["pod spec.hostIPC must not be true"]),
        (
            lambda s: s["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run"}}),
            ['volume "docker" must not use hostPath'],
        ),
        (
            lambda s: s["containers"][0]["ports"].append({"containerPort": 80, "hostPort": 80}),
            ['container "app": hostPort 80 is not allowed'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
            ['container "app": securityContext.allowPrivilegeEscalation must be false'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            ['container "app": securityContext.allowPrivilegeEscalation must be false'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
            ['container "app": securityContext.readOnlyRootFilesystem must be true'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(
                capabilities={"drop": ["NET_RAW"]}
            ),
            ['container "app": securityContext.capabilities.drop must include ALL'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(
                capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}
            ),
            ['container "app": securityContext.capabilities.add must not include SYS_ADMIN'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(runAsNonRoot=False),
            ['container "app": runAsNonRoot must be true (pod or container securityContext)'],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(runAsUser=0),
            ['container "app": securityContext.runAsUser must not be 0'],
        ),
        (
            lambda s: s["securityContext"].update(runAsUser=0),
            ["pod securityContext.runAsUser must not be 0"],
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(
                seccompProfile={"type": "Unconfined"}
            ),
            ['container "app": seccompProfile.type must be RuntimeDefault or Localhost'],
        ),
        (
            lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            ["pod securityContext.seccompProfile.type must be RuntimeDefault or Localhost"],
        ),
    ],
)
def test_each_violation(mutate, expected: list[str]) -> None:
    spec = pod_spec()
    mutate(spec)
    assert run("Deployment", spec) == expected


def test_pod_level_settings_inherited() -> None:
    c = container()
    del c["securityContext"]["runAsNonRoot"]
    del c["securityContext"]["seccompProfile"]
    assert run("Deployment", pod_spec(containers=[c])) == []
    spec = pod_spec(containers=[c], securityContext={})
    assert run("Deployment", spec) == [
        'container "app": runAsNonRoot must be true (pod or container securityContext)',
        'container "app": seccompProfile.type must be RuntimeDefault or Localhost',
    ]


def test_init_containers_are_checked() -> None:
    init = container("init")
    init["securityContext"] = {}
    msgs = run("Job", pod_spec(initContainers=[init]))
    assert 'initContainer "init": securityContext.allowPrivilegeEscalation must be false' in msgs
    assert len(msgs) == 3  # runAsNonRoot and seccomp come from the pod securityContext


def test_localhost_seccomp_allowed() -> None:
    c = container()
    c["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p.json"}
    assert run("Pod", pod_spec(containers=[c])) == []


def test_unknown_and_missing_are_safe() -> None:
    assert rule.check(WORKLOAD_KINDS["Deployment"], {}, {}) == []
    assert rule.check(WORKLOAD_KINDS["Deployment"], plain({"spec": UNKNOWN_OBJECT}), {}) == []
    assert (
        rule.check(WORKLOAD_KINDS["Deployment"], plain({"spec": {"template": UNKNOWN_OBJECT}}), {})
        == []
    )
    c = container()
    c["securityContext"] = UNKNOWN_OBJECT
    assert run("Deployment", pod_spec(containers=[c])) == []
    c = container()
    c["securityContext"]["allowPrivilegeEscalation"] = UNKNOWN_BOOL
    assert run("Deployment", pod_spec(containers=[c])) == []
    assert run(
        "Deployment", pod_spec(containers=[{"name": "bare"}], securityContext=None)
    )  # flags, no crash


def test_other_types_ignored() -> None:
    assert rule.check("kubernetes:core/v1:ConfigMap", {"data": {}}, {}) == []


def test_allowed_capability_config() -> None:
    c = container()
    c["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert run("Deployment", pod_spec(containers=[c])) == []
    assert rule.check(
        WORKLOAD_KINDS["Pod"],
        plain(wrap_workload("Pod", pod_spec(containers=[c]))),
        {"allowedCapabilities": []},
    ) == ['container "app": securityContext.capabilities.add must not include NET_BIND_SERVICE']
