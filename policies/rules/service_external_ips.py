"""Services do not claim external IPs (CVE-2020-8554: any IP can be intercepted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_list, dig
from policies.lib.rule import Rule, base_type

SERVICE = "kubernetes:core/v1:Service"

RULE = Rule(
    name="service-no-external-ips",
    description="Services must not set spec.externalIPs: whoever can create a Service can then receive the "
    "cluster's traffic for any IP (CVE-2020-8554).",
    severity="high",
    frameworks={
        "SOC2": ["CC6.6"],
        "ISO27001": ["A.8.20", "A.8.22"],
        "CIS": ["K8s 5.3"],
        "OWASP": ["K8s Top 10 K07"],
    },
    remediation="Expose the Service through the Istio ingress gateway (or a LoadBalancer) instead of externalIPs.",
    resource_types=(SERVICE,),
    tags=("kubernetes", "network"),
)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if base_type(resource_type) != SERVICE:
        return []
    ips = dig(props, "spec", "externalIPs")
    if ips is UNKNOWN or not as_list(ips):
        return []
    return [
        f"spec.externalIPs {', '.join(map(str, as_list(ips)))}: traffic to these IPs is intercepted (CVE-2020-8554)"
    ]
