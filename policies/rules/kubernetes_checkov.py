"""checkov's Kubernetes checks (mandatory ones) on every Kubernetes resource (see lib/checkov_k8s.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.checkov_k8s import failures, warm_up
from policies.lib.rule import Rule

RULE = Rule(
    name="kubernetes-checkov",
    description="Kubernetes objects must pass checkov's Kubernetes checks (CKV_K8S_*), except those "
    "policies/exceptions.yaml lowers with a reason.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.8"],
        "ISO27001": ["A.8.9"],
        "CIS": ["K8s 5.1", "K8s 5.2", "K8s 5.7"],
        "OWASP": ["K8s Top 10 K01", "K8s Top 10 K03"],
    },
    remediation="Fix what the check id names (https://www.checkov.io/5.Policy%20Index/kubernetes.html); "
    "an exception goes to policies/exceptions.yaml with its reason, in a reviewed commit.",
    resource_types=("kubernetes:*",),
    tags=("kubernetes", "checkov"),
    warm_up=warm_up,
)

LEVEL = "mandatory"


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    return [message for _, level, message in failures(resource_type, props) if level == LEVEL]
