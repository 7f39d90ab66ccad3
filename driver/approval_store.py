"""The one reader (and writer) of rollout approvals: Kubernetes objects, through kubectl.

The edge of :mod:`rollout.approvals`: ``snapshot()`` reads the namespace's RolloutApprovals and
its four-eyes annotation; ``create()`` makes an approval with this store's kubeconfig, i.e. as
the person whose credentials those are; the approver field is their authenticated name
(``kubectl auth whoami``, a SelfSubjectReview) and the API server's admission policy rejects
any other. Every path that advances (``run``, ``advance``, ``promote``) decides on a snapshot
from here with :func:`rollout.approvals.decide` (``driver.core.Driver.gate_decision``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any, Protocol

from driver.traffic import find_kubectl
from rollout import approvals


class ApprovalError(RuntimeError):
    """The API server could not be asked (not a refusal)."""


class ApprovalRefused(ApprovalError):
    """The API server refused the approval (RBAC or the admission policy); its message, and
    the authenticated user it refused (None: not known)."""

    def __init__(self, message: str, user: str | None = None) -> None:
        super().__init__(message)
        self.user = user


class ApprovalStore(Protocol):
    def snapshot(self) -> approvals.Snapshot: ...

    def create(
        self, *, stack: str, rollout: str, phase: int, decision: str, reason: str
    ) -> approvals.Approval:
        """Create an approval as this store's own identity (ApprovalRefused: not allowed)."""
        ...


class KubectlApprovals:
    """RolloutApprovals in ``namespace`` (a callable: resolved on first use, from the stack)."""

    def __init__(
        self,
        namespace: str | Callable[[], str],
        kubeconfig: str | None = None,
        kubectl: str | None = None,
    ) -> None:
        self._namespace = namespace
        self.kubeconfig = kubeconfig
        self._kubectl = kubectl

    @property
    def namespace(self) -> str:
        if callable(self._namespace):
            self._namespace = self._namespace()
        return self._namespace

    def _run(self, args: list[str], stdin: str | None = None) -> Any:
        cmd = [find_kubectl(self._kubectl), *args, "-o", "json"]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            err = r.stderr.strip()
            if "forbidden" in err.lower():
                raise ApprovalRefused(err)
            raise ApprovalError(f"kubectl {' '.join(args[:2])}: {err[:800]}")
        return json.loads(r.stdout)

    def whoami(self) -> str:
        return str(self._run(["auth", "whoami"])["status"]["userInfo"]["username"])

    def snapshot(self) -> approvals.Snapshot:
        ns = self.namespace
        # the approvals and the traffic objects in one request (one kubectl per controller turn)
        kinds = f"{approvals.PLURAL}.{approvals.GROUP},virtualservices.networking.istio.io"
        found = self._run(["get", kinds, "-n", ns, "--show-managed-fields"])["items"]
        items = [o for o in found if o.get("kind") == approvals.KIND]
        traffic = [o for o in found if o.get("kind") == "VirtualService"]
        annotations = self._run(["get", "namespace", ns])["metadata"].get("annotations") or {}
        return approvals.Snapshot.from_objects(items, annotations, traffic)

    def create(
        self, *, stack: str, rollout: str, phase: int, decision: str, reason: str
    ) -> approvals.Approval:
        user = self.whoami()
        obj = approvals.approval_object(
            namespace=self.namespace,
            stack=stack,
            rollout=rollout,
            phase=phase,
            decision=decision,
            approver=user,
            reason=reason,
        )
        try:
            created = self._run(["create", "-f", "-"], json.dumps(obj))
        except ApprovalRefused as exc:
            raise ApprovalRefused(str(exc), user) from None
        return approvals.Approval.from_object(created)
