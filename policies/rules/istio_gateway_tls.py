"""Istio Gateway: TLS servers require TLS 1.3; plain HTTP servers must redirect to HTTPS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool, as_list, dig
from policies.lib.rule import Rule, crd_kind, is_patch

RULE = Rule(
    name="istio-gateway-tls",
    description="Istio and Gateway API gateways must terminate TLS (HTTPS/TLS with minProtocolVersion TLSV1_3, or "
    "passthrough); HTTP servers may only redirect to HTTPS; no plaintext GRPC/TCP/other protocols at the edge.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.7"],
        "ISO27001": ["A.8.24", "A.8.20"],
        "CIS": ["TLS 1.3 at the edge"],
        "OWASP": ["A02:2021", "ASVS V9.1"],
        "GDPR": ["Art.32"],
    },
    remediation="For HTTPS/TLS servers set tls.minProtocolVersion: TLSV1_3 (tls.mode SIMPLE or MUTUAL with a "
    "credentialName); for HTTP servers set tls.httpsRedirect: true; expose gRPC as HTTPS and raw TCP as TLS.",
    resource_types=tuple(f"kubernetes:networking.istio.io/{v}:Gateway" for v in ("v1", "v1beta1", "v1alpha3")),
    config_schema={
        "minProtocolVersion": {
            "type": "string",
            "default": "TLSV1_3",
            "enum": ["TLSV1_2", "TLSV1_3"],
            "description": "Lowest TLS version edge servers may accept.",
        },
    },
    tags=("istio", "tls", "edge"),
)

_ORDER = {"TLS_AUTO": 0, "TLSV1_0": 1, "TLSV1_1": 2, "TLSV1_2": 3, "TLSV1_3": 4}


def _gateway_api(props: Any) -> list[str]:
    """Kubernetes Gateway API listeners: HTTPS/TLS terminate with a certificate or pass through; nothing else."""
    out: list[str] = []
    for i, listener in enumerate(as_list(dig(props, "spec", "listeners"))):
        protocol, tls = dig(listener, "protocol"), dig(listener, "tls")
        if UNKNOWN in (listener, protocol, tls):
            continue
        where = f'listener[{i}] ("{dig(listener, "name", default=i)}")'
        proto = str(protocol or "").upper()
        if proto in ("HTTPS", "TLS"):
            mode = dig(tls, "mode") or "Terminate"
            if mode == "Terminate" and not as_list(dig(tls, "certificateRefs")):
                out.append(f"{where}: {proto} listener terminates TLS without tls.certificateRefs")
        else:
            # an HTTP listener's redirect lives in an HTTPRoute; the listener itself accepts plaintext
            out.append(f"{where}: {proto or 'unset'} listener accepts plaintext at the edge; use HTTPS or TLS")
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if crd_kind(resource_type, "gateway.networking.k8s.io", ["Gateway"]) is not None:
        return _gateway_api(props)
    if crd_kind(resource_type, "networking.istio.io", ["Gateway"]) is None:
        return []
    want = str(RULE.resolve_config(config).get("minProtocolVersion", "TLSV1_3"))
    out: list[str] = []
    for i, server in enumerate(as_list(dig(props, "spec", "servers"))):
        port = dig(server, "port")
        if port is UNKNOWN:
            continue
        protocol = dig(port, "protocol")
        pname = dig(port, "name", default=str(dig(port, "number", default=i)))
        where = f'server[{i}] ("{pname}")'
        if protocol is UNKNOWN:
            continue
        proto = str(protocol or "").upper()
        tls = dig(server, "tls")
        if tls is UNKNOWN:
            continue
        if proto in ("HTTPS", "TLS"):
            if dig(tls, "mode") == "PASSTHROUGH" or dig(tls, "mode") == "AUTO_PASSTHROUGH":
                continue  # the backend terminates TLS
            version = dig(tls, "minProtocolVersion")
            if version is UNKNOWN or (version is None and is_patch(resource_type)):
                continue
            if _ORDER.get(str(version), 0) < _ORDER.get(want, 4):
                out.append(f"{where}: tls.minProtocolVersion is {version or 'unset'}; must be {want}")
        elif proto in ("HTTP", "HTTP2"):
            redirect = dig(tls, "httpsRedirect")
            if redirect is not UNKNOWN and as_bool(redirect) is not True:
                out.append(f"{where}: HTTP server must set tls.httpsRedirect true")
        else:
            # Istio applies server tls settings only to HTTPS/TLS ports: anything else is plaintext.
            out.append(f"{where}: {proto or 'unset'} server accepts plaintext at the edge; use HTTPS or TLS")
    return out
