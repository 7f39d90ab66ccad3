"""The rollout's approvals as the cluster enforces them: the RolloutApproval CRD, its two
ValidatingAdmissionPolicies, one ClusterRole per approving role (cluster-scoped) and the
RoleBindings that grant each role's group its gates in the app namespace.

The manifests are :mod:`rollout.approvals`' (one home, also applied by the platform tests);
this component only declares them. Who belongs to a group is the cluster's identity
provider's business (client certificates on the local platform: ``./ce rollout identities``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.common import child, labels
from rollout import approvals


def _meta(manifest: dict, namespace: str | None = None) -> dict:
    md = {**manifest["metadata"], "labels": labels("rollout-approvals", "rollout")}
    if namespace is not None:
        md["namespace"] = namespace
    return md


@dataclass
class ApprovalsArgs:
    namespace: str
    """The rollout's namespace (the app's): approvals live there, the roles are bound there."""
    depends_on: list[pulumi.Resource]


class RolloutApprovals(pulumi.ComponentResource):
    """CRD + admission policies + approver roles (see rollout/approvals.py for the design)."""

    def __init__(
        self, name: str, args: ApprovalsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:RolloutApprovals", name, None, opts)
        crd = approvals.crd()
        self.crd = k8s.apiextensions.v1.CustomResourceDefinition(
            "rollout-approvals-crd", metadata=_meta(crd), spec=crd["spec"], opts=child(self)
        )
        self.policies: list[pulumi.Resource] = []
        for m in approvals.policies():
            cls = (
                k8s.admissionregistration.v1.ValidatingAdmissionPolicy
                if m["kind"] == "ValidatingAdmissionPolicy"
                else k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding
            )
            # a binding after its policy; the four-eyes policy's paramKind is the CRD
            self.policies.append(
                cls(
                    f"{m['kind'].lower()}-{m['metadata']['name'].split('.')[0]}",
                    metadata=_meta(m),
                    spec=m["spec"],
                    opts=child(self, [self.crd, *self.policies]),
                )
            )
        self.roles = [
            k8s.rbac.v1.ClusterRole(
                m["metadata"]["name"].replace(":", "-"),
                metadata=_meta(m),
                rules=m["rules"],
                opts=child(self),
            )
            for m in approvals.cluster_roles()
        ]
        self.bindings = [
            k8s.rbac.v1.RoleBinding(
                f"{m['metadata']['name'].replace(':', '-')}-binding",
                metadata=_meta(m, args.namespace),
                role_ref=m["roleRef"],
                subjects=m["subjects"],
                opts=child(self, [*args.depends_on, *self.roles]),
            )
            for m in approvals.role_bindings(args.namespace)
        ]
        self.register_outputs({})
