"""checkov's Kubernetes checks that exceptions.yaml made advisory: reported, never blocking."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.checkov_k8s import failures, warm_up
from policies.lib.rule import Rule

RULE = Rule(
    name="kubernetes-checkov-advisory",
    description="checkov Kubernetes checks reviewed down to advisory (policies/exceptions.yaml).",
    severity="low",
    frameworks={"CIS": ["K8s 5.7"]},
    remediation="See the check's reason in policies/exceptions.yaml.",
    resource_types=("kubernetes:*",),
    tags=("kubernetes", "checkov"),
    warm_up=warm_up,
    default_level="advisory",
)

LEVEL = "advisory"


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    return [message for _, level, message in failures(resource_type, props) if level == LEVEL]
