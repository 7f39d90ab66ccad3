"""The approval decision (rollout.approvals.decide), pure: which approvals count at a gate.

The API server's side (RBAC verb, approver == requester, four eyes at admission) is
tests/integration/test_rollout_approvals.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollout import approvals
from rollout.approvals import Approval, Snapshot, decide
from rollout.phases import RolloutError

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ap(phase: int, who: str, minute: float, rollout: str = "r1", decision: str = "continue",
       stack: str = "local") -> Approval:  # fmt: skip
    return Approval(
        name=f"{stack}-{rollout}-{phase}-{who}-{minute}",
        stack=stack,
        rollout=rollout,
        phase=phase,
        decision=decision,
        approver=who,
        created=T0 + timedelta(minutes=minute),
    )


def counted(d: approvals.GateDecision) -> list[str]:
    return [a.approver for a in d.counted]


def test_a_gate_counts_its_own_phase_of_the_current_rollout_since_the_phase_began() -> None:
    snap = Snapshot((ap(0, "dana", 0), ap(1, "tom", 40), ap(2, "sam", 90)))
    assert counted(decide(snap, "local", 1, T0 + timedelta(minutes=5))) == ["tom"]
    assert counted(decide(snap, "local", 2, T0 + timedelta(minutes=50))) == ["sam"]


def test_an_approval_from_before_the_phase_began_does_not_count() -> None:
    """A GO left from the last rollout must not start the next one after a rollback."""
    snap = Snapshot((ap(0, "dana", 0),))
    d = decide(snap, "local", 0, T0 + timedelta(minutes=30))
    assert d.counted == () and "before the stack entered" in d.ignored[0][1]


def test_the_api_servers_whole_seconds_still_count_in_the_phases_first_second() -> None:
    snap = Snapshot((ap(0, "dana", -1), ap(1, "tom", 0)))
    assert counted(decide(snap, "local", 1, T0 + timedelta(milliseconds=400))) == ["tom"]


def test_later_gates_belong_to_the_latest_go() -> None:
    snap = Snapshot((ap(0, "dana", 0, "old"), ap(1, "tom", 10, "old"), ap(0, "dana", 60, "new")))
    assert approvals.current_rollout(snap, "local") == "new"
    d = decide(snap, "local", 1, None)
    assert d.counted == () and "of rollout old" in d.ignored[0][1]


def test_other_stacks_are_not_read() -> None:
    snap = Snapshot((ap(0, "dana", 0, stack="staging"),))
    assert decide(snap, "local", 0, None).counted == ()
    assert approvals.current_rollout(snap, "local") == "local-without-go"


@pytest.mark.parametrize(
    ("mode", "allowed"),
    [("previous", False), ("both", False), ("starter", True), ("off", True)],
)
def test_four_eyes_previous_gate(mode: str, allowed: bool) -> None:
    """pat approved phase-1 and then phase-2 of the same rollout (pat holds both roles)."""
    snap = Snapshot((ap(0, "dana", 0), ap(1, "pat", 30), ap(2, "pat", 80)), mode)
    d = decide(snap, "local", 2, None)
    assert (counted(d) == ["pat"]) is allowed
    if not allowed:
        assert "four eyes: pat also approved phase-1" in d.ignored[0][1]


@pytest.mark.parametrize(
    ("mode", "allowed"),
    [("previous", True), ("starter", False), ("both", False), ("off", True)],
)
def test_four_eyes_starter(mode: str, allowed: bool) -> None:
    """dana gave the GO, and approves phase-3 (not the next gate: only `starter` refuses)."""
    snap = Snapshot((ap(0, "dana", 0), ap(3, "dana", 150)), mode)
    assert (counted(decide(snap, "local", 3, None)) == ["dana"]) is allowed


def test_a_rollback_decision_is_never_held_by_four_eyes() -> None:
    snap = Snapshot((ap(0, "dana", 0), ap(1, "pat", 30), ap(2, "pat", 80, decision="rollback")))
    d = decide(snap, "local", 2, None)
    assert [a.decision for a in d.counted] == ["rollback"] and d.continues == []


def test_four_eyes_is_per_rollout() -> None:
    snap = Snapshot((ap(1, "pat", 0, "old"), ap(0, "dana", 50, "new"), ap(2, "pat", 80, "new")))
    assert counted(decide(snap, "local", 2, None)) == ["pat"]


def test_an_unknown_four_eyes_mode_is_an_error() -> None:
    with pytest.raises(RolloutError, match="four-eyes"):
        decide(Snapshot((), "sometimes"), "local", 0, None)


def test_the_snapshot_reads_the_objects_and_the_namespace_annotation() -> None:
    obj = approvals.approval_object(
        namespace="ns", stack="local", rollout="r1", phase=2, decision="continue", approver="sam"
    )
    obj["metadata"] |= {"name": "local-phase-2-abcde", "creationTimestamp": "2026-01-01T12:00:00Z"}
    snap = Snapshot.from_objects([obj], {approvals.FOUR_EYES_ANNOTATION: "both"})
    assert snap.four_eyes == "both"
    assert snap.approvals == (
        Approval("local-phase-2-abcde", "local", "r1", 2, "continue", "sam", T0),
    )
    assert Snapshot.from_objects([], {}).four_eyes == approvals.DEFAULT_FOUR_EYES


def test_each_role_approves_its_own_gates_only() -> None:
    """The ClusterRoles grant the verb on the gates the phase table gives each role."""
    gates = {
        r["metadata"]["name"].rsplit(":", 1)[1]: r["rules"][1]["resourceNames"]
        for r in approvals.cluster_roles()
    }
    assert gates == {
        "deployment-commander": ["phase-0", "phase-4"],
        "tech-lead": ["phase-1"],
        "sre": ["phase-2"],
        "product-owner": ["phase-3"],
    }
    assert all(r["rules"][1]["verbs"] == ["approve"] for r in approvals.cluster_roles())


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_program_declares_the_crd_the_policies_and_the_roles(stack: str) -> None:
    """What the platform tests apply with kubectl is what every stack deploys."""
    from tests.unit.conftest import program_capture

    cap = program_capture(stack, 0)
    crds = [r.inputs for r in cap.of_type("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
            if r.inputs["metadata"]["name"] == f"{approvals.PLURAL}.{approvals.GROUP}"]  # fmt: skip
    assert len(crds) == 1 and crds[0]["spec"]["group"] == approvals.GROUP
    vaps = cap.of_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy")
    assert {r.inputs["metadata"]["name"] for r in vaps} >= {
        approvals.AUTHORITY_POLICY,
        approvals.FOUR_EYES_POLICY,
    }
    binds = cap.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    ours = {r.inputs["metadata"]["name"]: r.inputs for r in binds
            if r.inputs["metadata"]["name"].startswith(approvals.GROUP_PREFIX)}  # fmt: skip
    assert set(ours) == {approvals.approver_role_name(r) for r in approvals.roles()}
    assert {b["metadata"]["namespace"] for b in ours.values()} == {"claude-enhancer"}


def test_traffic_written_is_the_latest_spec_write_by_any_manager() -> None:
    """The program's apply and the controller's traffic switch both count; Istio's status
    writes do not (a status subresource write is no change of traffic)."""
    vs = {
        "metadata": {
            "managedFields": [
                {"manager": "pulumi-kubernetes-1", "operation": "Apply", "time": "2026-12-08T01:00:00Z"},
                {"manager": "ce-rollout", "operation": "Apply", "time": "2026-12-08T01:05:00Z"},
                {"manager": "pilot-discovery", "operation": "Update", "subresource": "status",
                 "time": "2026-12-08T01:09:00Z"},
            ]
        }
    }  # fmt: skip
    snap = approvals.Snapshot.from_objects([], {}, [vs])
    assert snap.traffic_written == datetime(2026, 12, 8, 1, 5, tzinfo=UTC)
    assert approvals.Snapshot.from_objects([], {}).traffic_written is None
