"""Istio PeerAuthentication must enforce STRICT mTLS (never PERMISSIVE/DISABLE, incl. port level)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, dig
from policies.lib.rule import Rule, crd_kind

RULE = Rule(
    name="istio-mtls-strict",
    description="Istio PeerAuthentication must set mTLS mode STRICT; PERMISSIVE and DISABLE are not allowed, "
    "including in portLevelMtls.",
    severity="critical",
    frameworks={
        "SOC2": ["CC6.1", "CC6.7"],
        "ISO27001": ["A.8.20", "A.8.24"],
        "CIS": ["Istio: mTLS STRICT"],
        "OWASP": ["A02:2021"],
        "GDPR": ["Art.32"],
    },
    remediation="Set spec.mtls.mode: STRICT and remove PERMISSIVE/DISABLE entries from spec.portLevelMtls.",
    resource_types=(
        "kubernetes:security.istio.io/v1:PeerAuthentication",
        "kubernetes:security.istio.io/v1beta1:PeerAuthentication",
    ),
    tags=("istio", "mtls"),
)

_BAD = ("PERMISSIVE", "DISABLE")


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "security.istio.io", ["PeerAuthentication"]) is None:
        return []
    out: list[str] = []
    mode = dig(props, "spec", "mtls", "mode")
    if mode is not UNKNOWN and mode != "STRICT":
        shown = mode if mode is not None else "unset"
        out.append(f"spec.mtls.mode is {shown}; must be STRICT")
    port_level = dig(props, "spec", "portLevelMtls")
    for port in sorted(as_dict(port_level), key=str):
        pmode = dig(port_level, port, "mode")
        if isinstance(pmode, str) and pmode.upper() in _BAD:
            out.append(f"spec.portLevelMtls[{port}].mode is {pmode}; must be STRICT")
    return out
