"""Approvals as Kubernetes objects: the API server decides who may approve, the controller
decides which approvals count (pure, over a snapshot).

An approval is a ``RolloutApproval`` (group ``rollout.claude-enhancer.io``) created in the
rollout's namespace with the approver's own credentials. Two ValidatingAdmissionPolicies,
no webhook server (kube-apiserver 1.34, ``admissionregistration.k8s.io/v1``):

- **authority**: ``spec.approver`` must be ``request.userInfo.username``, and the requester
  must hold the custom RBAC verb ``approve`` on ``phases.rollout.claude-enhancer.io`` with
  resource name ``phase-N`` in that namespace (Kargo's ``promote`` verb, akuity/kargo#450),
  asked with the CEL ``authorizer`` (k8s.io/apiserver pkg/cel/library/authz.go:
  ``authorizer.group(g).resource(r).namespace(ns).name(n).check(verb).allowed()``).
- **four eyes**: ``paramKind`` is ``RolloutApproval`` itself and the binding selects every
  approval of the namespace (``paramRef.selector``: the stack label, which the authority policy
  admits only equal to ``spec.stack``); the policy is evaluated once per
  existing approval and denies when one of them is the same user's approval of the previous
  gate (or of the GO that started the rollout) of the same rollout. With no approval yet the
  params list is empty and the policy is not evaluated at all
  (pkg/admission/plugin/policy/generic/policy_dispatcher.go ``CollectParams`` and
  validating/dispatcher.go ``for _, param := range params``), hence two policies: the
  authority check must not depend on a param existing.

Why a field checked at admission and not the creator read back later: ``managedFields``
records the client-chosen field manager, not the user, and the audit log is a file on the
API server's host. ``spec`` is immutable (a CRD transition rule), so the admitted approver
stays the approver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollout import phases

GROUP = "rollout.claude-enhancer.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RolloutApproval"
PLURAL = "rolloutapprovals"
#: the RBAC resource the custom verb is granted on (no API serves it; RBAC only matches strings)
GATE_RESOURCE = "phases"
VERB = "approve"
#: namespace annotation: who may not approve the next gate (read by the policy and the controller)
FOUR_EYES_ANNOTATION = f"{GROUP}/four-eyes"
FOUR_EYES_MODES = ("previous", "starter", "both", "off")
DEFAULT_FOUR_EYES = "previous"
CONTINUE, ROLLBACK = "continue", "rollback"
#: certificate group (O=) of each role's people; RoleBindings bind the group, not the user
GROUP_PREFIX = "claude-enhancer:"
AUTHORITY_POLICY = f"rollout-approval-authority.{GROUP}"
#: labels copying spec.stack / spec.rollout (checked at admission): the four-eyes binding
#: selects approvals by the first, people list them by both
STACK_LABEL, ROLLOUT_LABEL = f"{GROUP}/stack", f"{GROUP}/rollout"
FOUR_EYES_POLICY = f"rollout-approval-four-eyes.{GROUP}"


def gate_name(phase: int) -> str:
    """RBAC resource name of the gate that leaves ``phase`` (phase 4's is the promotion)."""
    return f"phase-{phases.validate_phase(phase)}"


def role_group(role: str) -> str:
    return f"{GROUP_PREFIX}{role}"


def roles() -> dict[str, list[int]]:
    """Each role and the gates it approves (from the phase table; promotion at the last)."""
    out: dict[str, list[int]] = {}
    for n in range(phases.MAX_PHASE + 1):
        out.setdefault(phases.approver_for(n), []).append(n)
    return out


def approver_role_name(role: str) -> str:
    return f"{GROUP_PREFIX}rollout-approver:{role}"


# --------------------------------------------------------------------------- manifests
def crd() -> dict[str, Any]:
    """The RolloutApproval CRD (its spec immutable once admitted)."""
    s = {"type": "string"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": KIND.lower(),
                "kind": KIND,
                "shortNames": ["rap"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": [
                                        "stack",
                                        "rollout",
                                        "phase",
                                        "decision",
                                        "approver",
                                    ],
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self == oldSelf",
                                            "message": "an approval is immutable",
                                        }
                                    ],
                                    "properties": {
                                        # label values too (at most 63 characters)
                                        "stack": {**s, "maxLength": 63},
                                        "rollout": {**s, "maxLength": 63},
                                        "phase": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "maximum": phases.MAX_PHASE,
                                        },
                                        "decision": {**s, "enum": [CONTINUE, ROLLBACK]},
                                        "approver": {**s, "maxLength": 512},
                                        "reason": {**s, "maxLength": 1024},
                                    },
                                }
                            },
                        }
                    },
                    "additionalPrinterColumns": [
                        {"name": "Stack", "type": "string", "jsonPath": ".spec.stack"},
                        {"name": "Phase", "type": "integer", "jsonPath": ".spec.phase"},
                        {"name": "Decision", "type": "string", "jsonPath": ".spec.decision"},
                        {"name": "Approver", "type": "string", "jsonPath": ".spec.approver"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def _fail_closed() -> dict[str, Any]:
    """Both policies: on creating an approval, and an error (e.g. the params' informer not yet
    synced) refuses it."""
    rule = {"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE"],
            "resources": [PLURAL]}  # fmt: skip
    return {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [rule]}}


def policies() -> list[dict[str, Any]]:
    """The two ValidatingAdmissionPolicies and their bindings (cluster-scoped, Deny)."""
    admission = "admissionregistration.k8s.io/v1"
    gate = "'phase-' + string(object.spec.phase)"
    authority = {
        "apiVersion": admission,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": AUTHORITY_POLICY},
        "spec": {
            **_fail_closed(),
            "variables": [{"name": "gate", "expression": gate}],
            "validations": [
                {
                    "expression": " && ".join(
                        f"has(object.metadata.labels) && '{key}' in object.metadata.labels && "
                        f"object.metadata.labels['{key}'] == object.spec.{field}"
                        for key, field in ((STACK_LABEL, "stack"), (ROLLOUT_LABEL, "rollout"))
                    ),
                    "message": f"labels {STACK_LABEL} and {ROLLOUT_LABEL} must equal "
                    "spec.stack and spec.rollout",
                    "reason": "Invalid",
                },
                {
                    "expression": "object.spec.approver == request.userInfo.username",
                    "messageExpression": "'spec.approver must be the authenticated user \"' + "
                    "request.userInfo.username + '\", not \"' + object.spec.approver + '\"'",
                    "reason": "Forbidden",
                },
                {
                    "expression": f"authorizer.group('{GROUP}').resource('{GATE_RESOURCE}')"
                    ".namespace(object.metadata.namespace).name(variables.gate)"
                    f".check('{VERB}').allowed()",
                    "messageExpression": "'user \"' + request.userInfo.username + '\" may not "
                    f"approve ' + variables.gate + ': missing RBAC permission: verb \"{VERB}\" on "
                    f'"{GATE_RESOURCE}.{GROUP}" with resourceName "\' + variables.gate + '
                    "'\" in namespace \"' + object.metadata.namespace + '\"'",
                    "reason": "Forbidden",
                },
            ],
        },
    }
    mine = (
        "params.spec.approver == request.userInfo.username && "
        "params.spec.stack == object.spec.stack && params.spec.rollout == object.spec.rollout && "
        f"params.spec.decision == '{CONTINUE}' && object.spec.decision == '{CONTINUE}'"
    )
    mode = (
        f"'{FOUR_EYES_ANNOTATION}' in namespaceObject.metadata.annotations ? "
        f"namespaceObject.metadata.annotations['{FOUR_EYES_ANNOTATION}'] : '{DEFAULT_FOUR_EYES}'"
    )
    four_eyes = {
        "apiVersion": admission,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": FOUR_EYES_POLICY},
        "spec": {
            **_fail_closed(),
            "paramKind": {"apiVersion": API_VERSION, "kind": KIND},
            "variables": [
                {"name": "mine", "expression": mine},
                {
                    "name": "mode",
                    "expression": f"has(namespaceObject.metadata.annotations) ? ({mode}) : "
                    f"'{DEFAULT_FOUR_EYES}'",
                },
            ],
            "validations": [
                {
                    "expression": "!(variables.mine && variables.mode in ['previous', 'both'] "
                    "&& params.spec.phase == object.spec.phase - 1)",
                    "messageExpression": "'four eyes: \"' + request.userInfo.username + '\" "
                    "approved the previous gate (phase-' + string(params.spec.phase) + ', ' + "
                    "params.metadata.name + ') of rollout ' + object.spec.rollout + "
                    "' and may not approve phase-' + string(object.spec.phase)",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!(variables.mine && variables.mode in ['starter', 'both'] "
                    "&& params.spec.phase == 0 && object.spec.phase > 0)",
                    "messageExpression": "'four eyes: \"' + request.userInfo.username + '\" "
                    "started rollout ' + object.spec.rollout + ' (' + params.metadata.name + "
                    "') and may not approve phase-' + string(object.spec.phase)",
                    "reason": "Forbidden",
                },
            ],
        },
    }
    bindings = [
        {
            "apiVersion": admission,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": AUTHORITY_POLICY},
            "spec": {"policyName": AUTHORITY_POLICY, "validationActions": ["Deny"]},
        },
        {
            "apiVersion": admission,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": FOUR_EYES_POLICY},
            "spec": {
                "policyName": FOUR_EYES_POLICY,
                "validationActions": ["Deny"],
                # every approval of the request's namespace (paramRef.namespace unset; the
                # label is admitted only equal to spec.stack, so none escapes the selector)
                "paramRef": {
                    "selector": {"matchExpressions": [{"key": STACK_LABEL, "operator": "Exists"}]},
                    "parameterNotFoundAction": "Allow",
                },
            },
        },
    ]
    return [authority, four_eyes, *bindings]


def cluster_roles() -> list[dict[str, Any]]:
    """One ClusterRole per role: create/read approvals, and ``approve`` on its gates only."""
    out = []
    for role, gates in roles().items():
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": approver_role_name(role)},
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "resources": [PLURAL],
                        "verbs": ["create", "get", "list", "watch"],
                    },
                    {
                        "apiGroups": [GROUP],
                        "resources": [GATE_RESOURCE],
                        "resourceNames": [gate_name(n) for n in gates],
                        "verbs": [VERB],
                    },
                    # the four-eyes annotation; bound by a RoleBinding this reaches only the
                    # rollout's own namespace (GET /api/v1/namespaces/NS is authorized in
                    # namespace NS: k8s.io/apiserver pkg/endpoints/request/requestinfo.go)
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
                    # the traffic objects' last write: when the phase began, for an approver's
                    # own snapshot (driver.approval_store reads it with the approvals)
                    {
                        "apiGroups": ["networking.istio.io"],
                        "resources": ["virtualservices"],
                        "verbs": ["get", "list"],
                    },
                ],
            }
        )
    return out


def role_bindings(namespace: str) -> list[dict[str, Any]]:
    """The roles granted in the rollout's namespace, each to its certificate group."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": approver_role_name(role), "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": approver_role_name(role),
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": role_group(role),
                }
            ],
        }
        for role in roles()
    ]


def cluster_manifests() -> list[dict[str, Any]]:
    """Everything cluster-scoped, CRD first."""
    return [crd(), *policies(), *cluster_roles()]


def approval_object(
    *,
    namespace: str,
    stack: str,
    rollout: str,
    phase: int,
    decision: str,
    approver: str,
    reason: str = "",
) -> dict[str, Any]:
    """The object ``approve`` creates (the name generated by the API server)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "generateName": f"{stack}-{gate_name(phase)}-"[:50],
            "namespace": namespace,
            "labels": {STACK_LABEL: stack, ROLLOUT_LABEL: rollout},
        },
        "spec": {
            "stack": stack,
            "rollout": rollout,
            "phase": phase,
            "decision": decision,
            "approver": approver,
            "reason": reason,
        },
    }


# --------------------------------------------------------------------------- decision
@dataclass(frozen=True)
class Approval:
    name: str
    stack: str
    rollout: str
    phase: int
    decision: str
    approver: str
    created: datetime

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Approval:
        md, spec = obj["metadata"], obj["spec"]
        return cls(
            name=str(md["name"]),
            stack=str(spec["stack"]),
            rollout=str(spec["rollout"]),
            phase=int(spec["phase"]),
            decision=str(spec["decision"]),
            approver=str(spec["approver"]),
            created=datetime.fromisoformat(str(md["creationTimestamp"])),
        )


@dataclass(frozen=True)
class Snapshot:
    """What the controller reads from the API server (at the edge), then decides on."""

    approvals: tuple[Approval, ...]
    four_eyes: str = DEFAULT_FOUR_EYES
    #: when the namespace's traffic objects (VirtualServices) were last written, by anyone: the
    #: cluster's own record of the latest phase change, for a controller whose audit log does
    #: not know when the phase began (another machine, a fresh log). None: no such object.
    traffic_written: datetime | None = None

    @classmethod
    def from_objects(
        cls,
        items: Iterable[Mapping[str, Any]],
        namespace_annotations: Mapping[str, str],
        traffic: Iterable[Mapping[str, Any]] = (),
    ) -> Snapshot:
        mode = namespace_annotations.get(FOUR_EYES_ANNOTATION, DEFAULT_FOUR_EYES)
        return cls(tuple(Approval.from_object(o) for o in items), mode, last_written(traffic))


def last_written(objects: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The latest write of the objects' spec or metadata, from their managedFields (every
    manager's: the program's apply and the controller's traffic switch alike; a status
    subresource write is not a change of traffic). Whole seconds, as the API server keeps them."""
    times = [
        datetime.fromisoformat(str(m["time"]).replace("Z", "+00:00"))
        for o in objects
        for m in (o.get("metadata") or {}).get("managedFields") or ()
        if m.get("time") and not m.get("subresource")
    ]
    return max(times, default=None)


@dataclass(frozen=True)
class GateDecision:
    """The approvals that count at one gate, oldest first, and the ones that do not (why)."""

    phase: int
    rollout: str
    counted: tuple[Approval, ...]
    ignored: tuple[tuple[Approval, str], ...]

    @property
    def continues(self) -> list[Approval]:
        return [a for a in self.counted if a.decision == CONTINUE]

    @property
    def rollbacks(self) -> list[Approval]:
        return [a for a in self.counted if a.decision == ROLLBACK]


def current_rollout(snapshot: Snapshot, stack: str) -> str:
    """The rollout id of the stack's latest GO (a continue at phase 0): later gates belong to
    it. A stack put past phase 0 without a GO approval (by hand, or before approvals were
    objects) has one fixed id, so its gates still count and four eyes still holds."""
    gos = [
        a
        for a in snapshot.approvals
        if a.stack == stack and a.phase == 0 and a.decision == CONTINUE
    ]
    if not gos:
        return f"{stack}-without-go"
    return max(gos, key=lambda a: (a.created, a.name)).rollout


def four_eyes_violation(approval: Approval, others: Sequence[Approval], mode: str) -> str | None:
    """Pure: why ``approval`` breaks four eyes against the same rollout's ``others`` (None: it
    does not). The admission policy enforces this first; the controller checks it again, so an
    object admitted while the policy was missing or its params cache was stale never counts."""
    if approval.decision != CONTINUE or mode == "off":
        return None
    for o in others:
        if (
            o.name == approval.name
            or o.approver != approval.approver
            or o.rollout != approval.rollout
            or o.stack != approval.stack
            or o.decision != CONTINUE
        ):
            continue
        if mode in ("previous", "both") and o.phase == approval.phase - 1:
            return f"{approval.approver} also approved phase-{o.phase} ({o.name})"
        if mode in ("starter", "both") and o.phase == 0 and approval.phase > 0:
            return f"{approval.approver} started the rollout ({o.name})"
    return None


def decide(snapshot: Snapshot, stack: str, phase: int, since: datetime | None) -> GateDecision:
    """Pure: which approvals count at the gate leaving ``phase``.

    Counted: the stack's approvals of this gate created at or after ``since`` (the phase's
    entry; an approval from before it belongs to an earlier visit of the phase) and, past
    phase 0, of the current rollout (its latest GO), that do not break four eyes.
    """
    if snapshot.four_eyes not in FOUR_EYES_MODES:
        raise phases.RolloutError(
            f"namespace annotation {FOUR_EYES_ANNOTATION}={snapshot.four_eyes!r}: "
            f"expected one of {', '.join(FOUR_EYES_MODES)}"
        )
    rollout = current_rollout(snapshot, stack)
    counted: list[Approval] = []
    ignored: list[tuple[Approval, str]] = []
    ours = sorted(
        (a for a in snapshot.approvals if a.stack == stack and a.phase == phase),
        key=lambda a: (a.created, a.name),
    )
    for a in ours:
        # creationTimestamp has whole seconds: compare at that precision, or an approval made
        # in the phase's first second would never count
        if since is not None and a.created < since.replace(microsecond=0):
            ignored.append((a, "made before the stack entered the phase"))
        elif phase > 0 and a.rollout != rollout:
            ignored.append((a, f"of rollout {a.rollout}, not the current {rollout}"))
        elif (why := four_eyes_violation(a, snapshot.approvals, snapshot.four_eyes)) is not None:
            ignored.append((a, f"four eyes: {why}"))
        else:
            counted.append(a)
    return GateDecision(phase, rollout, tuple(counted), tuple(ignored))
