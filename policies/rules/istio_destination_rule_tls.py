"""Istio DestinationRule traffic must use ISTIO_MUTUAL TLS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.istio import is_cluster_local
from policies.lib.props import UNKNOWN, as_bool, as_list, dig
from policies.lib.rule import Rule, crd_kind, is_patch

RULE = Rule(
    name="istio-destinationrule-mtls",
    description="Istio DestinationRule trafficPolicy.tls.mode must be ISTIO_MUTUAL (also per subset and port); "
    "for hosts outside the cluster (ServiceEntry) TLS origination (SIMPLE/MUTUAL) is accepted too.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.7"],
        "ISO27001": ["A.8.20", "A.8.24"],
        "CIS": ["Istio: client-side mTLS"],
        "OWASP": ["A02:2021"],
        "GDPR": ["Art.32"],
    },
    remediation="Set spec.trafficPolicy.tls.mode: ISTIO_MUTUAL and do not override it with another mode "
    "in subsets[].trafficPolicy or portLevelSettings[].tls.",
    resource_types=tuple(f"kubernetes:networking.istio.io/{v}:DestinationRule" for v in ("v1", "v1beta1", "v1alpha3")),
    config_schema={
        "allowedModes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["ISTIO_MUTUAL"],
            "description": "TLS modes accepted for in-mesh traffic.",
        },
    },
    tags=("istio", "mtls"),
)


_ORIGINATION = ("SIMPLE", "MUTUAL")


def _tls_issues(where: str, traffic_policy: Any, allowed: list[str], required: bool) -> list[str]:
    out: list[str] = []
    mode = dig(traffic_policy, "tls", "mode")
    if mode is not UNKNOWN and (mode is not None or required) and mode not in allowed:
        out.append(f"{where}.tls.mode is {mode if mode is not None else 'unset'}; must be {' or '.join(allowed)}")
    if as_bool(dig(traffic_policy, "tls", "insecureSkipVerify")) is True:
        out.append(f"{where}.tls.insecureSkipVerify is true: TLS origination without verifying the server")
    for i, pls in enumerate(as_list(dig(traffic_policy, "portLevelSettings"))):
        pmode = dig(pls, "tls", "mode")
        if isinstance(pmode, str) and pmode not in allowed:
            out.append(f"{where}.portLevelSettings[{i}].tls.mode is {pmode}; must be {' or '.join(allowed)}")
        if as_bool(dig(pls, "tls", "insecureSkipVerify")) is True:
            out.append(f"{where}.portLevelSettings[{i}].tls.insecureSkipVerify is true: the server is not verified")
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "networking.istio.io", ["DestinationRule"]) is None:
        return []
    allowed = [str(m) for m in as_list(RULE.resolve_config(config).get("allowedModes"))]
    spec = dig(props, "spec")
    host = dig(spec, "host")
    if spec is UNKNOWN or host is UNKNOWN:
        return []
    if isinstance(host, str) and host and not is_cluster_local(host):
        # An external host (a MESH_EXTERNAL ServiceEntry) has no mesh identity: the sidecar originates
        # ordinary TLS to it, so SIMPLE/MUTUAL are the secure modes there.
        allowed = [*allowed, *(m for m in _ORIGINATION if m not in allowed)]
    out = _tls_issues("spec.trafficPolicy", dig(spec, "trafficPolicy"), allowed, required=not is_patch(resource_type))
    for i, subset in enumerate(as_list(dig(spec, "subsets"))):
        name = dig(subset, "name", default=f"#{i}")
        out += _tls_issues(f'subset "{name}" trafficPolicy', dig(subset, "trafficPolicy"), allowed, required=False)
    return out
