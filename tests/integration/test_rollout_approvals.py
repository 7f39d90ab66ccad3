"""Approvals on the real API server: RBAC's custom verb, the admission policies, real users.

The cluster-scoped objects (CRD, the two ValidatingAdmissionPolicies, the per-role
ClusterRoles: rollout.approvals.cluster_manifests) are the deployed `local` stack's own
(components/approvals.py): the test never applies them itself, since a second field manager on
the program's objects makes the program's next `up` fail with an apply conflict. Each test
module gets its own namespace with the role bindings, deleted at the end.
The users are client certificates signed by the platform CA (driver.identities), in a temp dir.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driver import core, identities
from driver.approval_store import ApprovalRefused, KubectlApprovals
from driver.audit import AuditLog
from rollout import approvals
from tests.driver.driver_fakes import FakeStack
from tests.integration.conftest import LocalProject, kubectl, kubectl_json, kubectl_run

USERS = {  # user -> groups: one per role, one with none, one holding two consecutive roles
    "nobody": [],
    "pat": [approvals.role_group("tech-lead"), approvals.role_group("sre")],
}


@dataclass
class Cluster:
    env: dict[str, str]
    namespace: str
    kubeconfigs: dict[str, Path]

    def driver(self, who: str, phase: int, tmp_path: Path) -> tuple[core.Driver, list[str]]:
        """A driver whose stack is at ``phase``, approving with ``who``'s kubeconfig."""
        lines: list[str] = []
        d = core.Driver(
            FakeStack(config={"phase": phase}, deployed=phase),
            AuditLog(tmp_path / f"audit-{who}.jsonl"),
            out=lines.append,
            approvals=KubectlApprovals(self.namespace, str(self.kubeconfigs[who])),
        )
        return d, lines

    def create_as(self, who: str, phase: int, approver: str, rollout: str = "r1") -> str:
        obj = approvals.approval_object(
            namespace=self.namespace, stack="test", rollout=rollout, phase=phase,
            decision="continue", approver=approver,
        )  # fmt: skip
        r = kubectl_run(self.env, "--kubeconfig", str(self.kubeconfigs[who]), "create", "-f",
                        "-", "-o", "name", input=json.dumps(obj))  # fmt: skip
        return r.stdout if r.returncode == 0 else r.stderr


@pytest.fixture(scope="module")
def cluster(
    local_project: LocalProject, tool_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    manifests = tmp_path_factory.mktemp("approvals") / "cluster.json"
    kubectl(tool_env, "wait", "--for=condition=Established", "--timeout=60s",
            f"crd/{approvals.PLURAL}.{approvals.GROUP}")  # fmt: skip
    ns = f"ce-test-approvals-{uuid.uuid4().hex[:6]}"
    kubectl(tool_env, "create", "namespace", ns)
    try:
        bindings = manifests.with_name("bindings.json")
        bindings.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                        "items": approvals.role_bindings(ns)}))  # fmt: skip
        kubectl(tool_env, "apply", "-f", str(bindings))
        ids = tmp_path_factory.mktemp("identities")
        kubeconfigs = {
            identities.user_name(r).split("@")[0]: p
            for r, p in identities.ensure_role_identities(ids).items()
        }
        for user, groups in USERS.items():
            kubeconfigs[user] = identities.issue(
                identities.user_name(user), groups, ids / f"{user}.kubeconfig"
            )
        yield Cluster(tool_env, ns, kubeconfigs)
    finally:
        kubectl_run(tool_env, "delete", "namespace", ns, "--wait=false")


def test_an_sre_can_approve_phase_2_but_not_phase_3(cluster: Cluster, tmp_path: Path) -> None:
    # phase 3 first: once the sre approved phase 2, four eyes would refuse phase 3 as well
    d3, lines3 = cluster.driver("sre", 3, tmp_path)
    assert d3.approve() == core.REFUSED
    assert 'may not approve phase-3: missing RBAC permission: verb "approve"' in lines3[-1]
    assert d3.approved_by(3) is None
    refused = d3.audit.entries()[-1]
    assert (refused["result"], refused["actor"]) == ("refused", "sre@claude-enhancer.local")
    d, lines = cluster.driver("sre", 2, tmp_path)
    assert d.approve() == core.OK, lines
    assert d.approved_by(2) == "sre@claude-enhancer.local"


def test_a_user_without_the_role_is_refused_naming_the_missing_permission(
    cluster: Cluster,
) -> None:
    # no role at all: RBAC refuses the create itself
    out = cluster.create_as("nobody", 2, "nobody@claude-enhancer.local")
    assert 'cannot create resource "rolloutapprovals"' in out, out
    assert 'in API group "rollout.claude-enhancer.io"' in out
    # a role, but not this gate's: the admission policy asks the authorizer for the verb
    out = cluster.create_as("tech-lead", 2, "tech-lead@claude-enhancer.local")
    assert (
        'may not approve phase-2: missing RBAC permission: verb "approve" on '
        f'"phases.rollout.claude-enhancer.io" with resourceName "phase-2" in namespace '
        f'"{cluster.namespace}"'
    ) in out, out


def test_the_same_user_cannot_approve_two_consecutive_gates(
    cluster: Cluster, tmp_path: Path
) -> None:
    go, lines = cluster.driver("deployment-commander", 0, tmp_path)
    assert go.approve() == core.OK, lines
    d1, lines1 = cluster.driver("pat", 1, tmp_path)
    assert d1.approve() == core.OK, lines1
    # the policy's params come from the API server's informer: give it the new object
    time.sleep(1)
    d2, lines2 = cluster.driver("pat", 2, tmp_path)
    assert d2.approve() == core.REFUSED
    assert "four eyes" in lines2[-1] and "approved the previous gate (phase-1" in lines2[-1]
    assert d2.approved_by(2) is None
    # a rollback decision is never held by four eyes
    assert d2.approve("rollback") == core.OK, lines2
    # four eyes is the namespace's setting, read by the policy and the controller alike
    kubectl(cluster.env, "annotate", "namespace", cluster.namespace,
            f"{approvals.FOUR_EYES_ANNOTATION}=off")  # fmt: skip
    try:
        for _ in range(20):  # the admission plugin reads namespaces from an informer too
            if d2.approve() == core.OK:
                break
            time.sleep(0.5)
        assert d2.approved_by(2) == "pat@claude-enhancer.local", lines2
    finally:
        kubectl(cluster.env, "annotate", "namespace", cluster.namespace,
                f"{approvals.FOUR_EYES_ANNOTATION}-")  # fmt: skip


def test_the_approver_recorded_is_the_authenticated_user(cluster: Cluster, tmp_path: Path) -> None:
    out = cluster.create_as("sre", 2, "product-owner@claude-enhancer.local")
    assert 'spec.approver must be the authenticated user "sre@claude-enhancer.local"' in out, out
    d, lines = cluster.driver("product-owner", 3, tmp_path)
    assert d.approve() == core.OK, lines
    mine = [e for e in d.decisions(3) if e["actor"] == "product-owner@claude-enhancer.local"]
    assert mine, d.decisions(3)
    recorded = d.audit.entries()[-1]
    assert recorded["actor"] == "product-owner@claude-enhancer.local"
    assert recorded["approval"] == mine[-1]["approval"]
    # and it stays so: the spec is immutable, even for the cluster admin
    r = kubectl_run(cluster.env, "-n", cluster.namespace, "patch", "rolloutapproval",
                    mine[-1]["approval"], "--type=merge", "-p", '{"spec":{"approver":"x"}}')  # fmt: skip
    assert r.returncode != 0 and "an approval is immutable" in r.stderr
    got = kubectl_json(cluster.env, "-n", cluster.namespace, "get", "rolloutapproval",
                       mine[-1]["approval"])  # fmt: skip
    assert got["spec"]["approver"] == "product-owner@claude-enhancer.local"
    with pytest.raises(ApprovalRefused):
        KubectlApprovals(cluster.namespace, str(cluster.kubeconfigs["nobody"])).create(
            stack="test", rollout="r1", phase=3, decision="continue", reason=""
        )


def test_the_api_servers_audit_log_names_who_approved_what(
    cluster: Cluster, tmp_path: Path
) -> None:
    """platform/local.sh starts the API server with an audit policy recording approvals."""
    d, lines = cluster.driver("deployment-commander", 4, tmp_path)
    assert d.approve() == core.OK, lines
    name = d.audit.entries()[-1]["approval"]
    refused = cluster.create_as("nobody", 4, "nobody@claude-enhancer.local")
    assert "forbidden" in refused
    log = identities.platform_dir() / "logs" / "audit.log"
    events: list[dict] = []
    for _ in range(20):  # the log backend writes as the request completes; allow a moment
        events = [
            e
            for e in map(json.loads, log.read_text().splitlines())
            if e.get("objectRef", {}).get("resource") == approvals.PLURAL
            and e["objectRef"].get("namespace") == cluster.namespace
            and e["verb"] == "create"
            and e["stage"] == "ResponseComplete"
        ]
        if len(events) >= 2 and any(e["user"]["username"].startswith("nobody") for e in events):
            break
        time.sleep(0.5)
    ok = [e for e in events if e["responseStatus"]["code"] == 201]
    mine = [e for e in ok if e["responseObject"]["metadata"]["name"] == name]
    assert len(mine) == 1, events
    assert mine[0]["user"]["username"] == "deployment-commander@claude-enhancer.local"
    assert "claude-enhancer:deployment-commander" in mine[0]["user"]["groups"]
    assert mine[0]["responseObject"]["spec"]["phase"] == 4
    denied = [e for e in events if e["user"]["username"] == "nobody@claude-enhancer.local"]
    assert denied and denied[-1]["responseStatus"]["code"] == 403


def test_an_approval_whose_labels_differ_from_its_spec_is_refused(cluster: Cluster) -> None:
    """Four eyes selects approvals by label: one without it must not be admitted."""
    obj = approvals.approval_object(
        namespace=cluster.namespace, stack="test", rollout="r9", phase=2,
        decision="continue", approver="sre@claude-enhancer.local",
    )  # fmt: skip
    del obj["metadata"]["labels"][approvals.STACK_LABEL]
    r = kubectl_run(cluster.env, "--kubeconfig", str(cluster.kubeconfigs["sre"]), "create",
                    "-f", "-", input=json.dumps(obj))  # fmt: skip
    assert r.returncode != 0 and "must equal spec.stack and spec.rollout" in r.stderr, r.stderr
