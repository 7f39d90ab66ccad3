"""ServiceAccount tokens are not auto-mounted unless a workload is marked as needing the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool, as_dict, as_list, dig
from policies.lib.reviewed import section
from policies.lib.rule import (
    WORKLOAD_TYPES,
    Rule,
    base_type,
    is_patch,
    pod_templates,
)

SA_TYPE = "kubernetes:core/v1:ServiceAccount"
SECRET_TYPE = "kubernetes:core/v1:Secret"
LEGACY_TOKEN_TYPE = "kubernetes.io/service-account-token"
ANNOTATION = "claude-enhancer.io/needs-api-token"

RULE = Rule(
    name="automount-serviceaccount-token",
    description="ServiceAccounts and pod specs must set automountServiceAccountToken: false unless annotated "
    f'{ANNOTATION}: "true" or listed in allowedServiceAccounts; no legacy service-account-token Secrets.',
    severity="medium",
    frameworks={
        "SOC2": ["CC6.1"],
        "ISO27001": ["A.8.2", "A.5.15"],
        "CIS": ["K8s 5.1.6"],
        "OWASP": ["K8s Top 10 K03"],
    },
    remediation=f"Set automountServiceAccountToken: false on the ServiceAccount and pod spec; workloads that "
    f'call the Kubernetes API annotate the ServiceAccount/pod template with {ANNOTATION}: "true".',
    resource_types=(SA_TYPE, SECRET_TYPE, *WORKLOAD_TYPES),
    config_schema={
        "allowedServiceAccounts": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "namespace/name of ServiceAccounts allowed to mount tokens.",
        },
        "exemptAnnotation": {
            "type": "string",
            "default": ANNOTATION,
            "description": 'Annotation (value "true") marking a real need for the API token.',
        },
    },
    tags=("kubernetes", "rbac"),
)


def _annotated(metadata: Any, key: str) -> bool:
    return as_bool(dig(as_dict(metadata), "annotations", key)) is True


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    key = str(cfg.get("exemptAnnotation") or ANNOTATION)
    allowed = {str(a) for a in as_list(cfg.get("allowedServiceAccounts"))}
    ns = dig(props, "metadata", "namespace") or "default"
    # A *Patch changes only what it names; leaving the field out keeps the object's value.
    judge_missing = not is_patch(resource_type)
    if base_type(resource_type) == SA_TYPE:
        name = dig(props, "metadata", "name")
        if _annotated(dig(props, "metadata"), key) or f"{ns}/{name}" in allowed:
            return []
        value = dig(props, "automountServiceAccountToken")
        if value is not UNKNOWN and as_bool(value) is not False and (judge_missing or value is not None):
            return ["automountServiceAccountToken must be false"]
        return []
    if base_type(resource_type) == SECRET_TYPE:
        admitted = {str(e.get("secret")) for e in section("legacyTokenSecrets")}
        if dig(props, "type") == LEGACY_TOKEN_TYPE and f"{ns}/{dig(props, 'metadata', 'name')}" not in admitted:
            # KEP-2799: a token Secret never expires and is readable by anyone who can read Secrets
            return [
                f"Secret type {LEGACY_TOKEN_TYPE} holds a non-expiring ServiceAccount token; use a "
                "projected (TokenRequest) token, or admit it in policies/exceptions.yaml with a reason"
            ]
        return []
    out: list[str] = []
    if _annotated(dig(props, "metadata"), key):
        return []
    for template in pod_templates(resource_type, props):
        spec = template.spec
        if _annotated(template.metadata, key):
            continue
        sa = dig(spec, "serviceAccountName") or "default"
        if f"{ns}/{sa}" in allowed:
            continue
        value = dig(spec, "automountServiceAccountToken")
        if value is not UNKNOWN and as_bool(value) is not False and (not template.partial or value is not None):
            out.append(f"{template.where}pod spec.automountServiceAccountToken must be false")
    return out
