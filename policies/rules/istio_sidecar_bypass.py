"""Pods stay inside the mesh: no sidecar opt-out or traffic-capture exclusions beyond the reviewed list.

Istio's pod annotations can take traffic out of the sidecar's capture (Istio docs, "Resource
Annotations": traffic.sidecar.istio.io/*). Traffic that skips the sidecar skips mTLS and every
AuthorizationPolicy, so each exclusion is a hole in the default deny. The program needs a few
(Redis's cluster bus, CNPG's status port): those are admitted, per owner kind, port and
direction, by ``policies/exceptions.yaml`` (``sidecarPortExclusions``), each with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool
from policies.lib.reviewed import section
from policies.lib.rule import Rule, k8s_type

RULE = Rule(
    name="istio-sidecar-bypass",
    description="Pods must not opt out of the Istio sidecar (sidecar.istio.io/inject false, interceptionMode "
    "NONE) or exclude ports, address ranges or interfaces from its capture, except the reviewed "
    "sidecarPortExclusions in policies/exceptions.yaml.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.7"],
        "ISO27001": ["A.8.20", "A.8.22"],
        "CIS": ["Istio: mTLS STRICT"],
        "OWASP": ["A01:2021", "A02:2021"],
        "GDPR": ["Art.32"],
    },
    remediation="Remove the annotation; if a port really cannot go through the sidecar, add it to "
    "sidecarPortExclusions in policies/exceptions.yaml (owner kind, port, direction, reason) in a reviewed "
    "commit and close it with a NetworkPolicy.",
    resource_types=("kubernetes:*",),
    tags=("istio", "mtls"),
)

PREFIX = "traffic.sidecar.istio.io/"
_PORT_KEYS = {"excludeInboundPorts": "inbound", "excludeOutboundPorts": "outbound"}
_ALWAYS_BAD = ("excludeOutboundIPRanges", "excludeInterfaces")
_CAPTURE_ALL = {"includeInboundPorts": "*", "includeOutboundIPRanges": "*"}


def _annotation_maps(obj: Any, top: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every annotations/labels map in the object (pod templates, operators' pod metadata), not its own."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if top and key == "metadata":
                continue
            if isinstance(value, dict) and key.lower().endswith(("annotations", "labels")):
                yield key, value
            else:
                yield from _annotation_maps(value, False)
    elif isinstance(obj, list):
        for value in obj:
            yield from _annotation_maps(value, False)


def _ports(value: str) -> set[int]:
    return {int(p) for p in value.replace(" ", "").split(",") if p.isdigit()}


def _admitted(owner: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {"inbound": set(), "outbound": set()}
    for entry in section("sidecarPortExclusions"):
        if str(entry.get("owner")) == owner:
            for direction in entry.get("directions") or ():
                out.setdefault(str(direction), set()).update(int(p) for p in entry.get("ports") or ())
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    parsed = k8s_type(resource_type)
    if parsed is None:
        return []
    owner = f"{parsed[0]}/{parsed[2]}"
    admitted = _admitted(owner)
    out: list[str] = []
    for key, entries in _annotation_maps(props):
        for name, value in sorted(entries.items()):
            if value is UNKNOWN or not isinstance(value, str):
                continue
            if name == "sidecar.istio.io/inject" and as_bool(value) is False:
                out.append(f'{key} {name}: "{value}" takes the pod out of the mesh (no mTLS, no authorization)')
                continue
            if name == "sidecar.istio.io/interceptionMode" and value.upper() == "NONE":
                out.append(f'{key} {name}: "{value}" turns off traffic capture')
                continue
            if not name.startswith(PREFIX):
                continue
            short = name[len(PREFIX) :]
            if short in _PORT_KEYS:
                extra = sorted(_ports(value) - admitted.get(_PORT_KEYS[short], set()))
                if extra or (value.strip() and not _ports(value)):
                    shown = ", ".join(map(str, extra)) or value
                    out.append(
                        f"{key} {name} takes port(s) {shown} around the sidecar (no mTLS, no authorization); "
                        f"not in policies/exceptions.yaml for {owner}"
                    )
            elif short in _ALWAYS_BAD and value.strip():
                out.append(f'{key} {name}: "{value}" sends traffic around the sidecar')
            elif short in _CAPTURE_ALL and value.strip() != _CAPTURE_ALL[short]:
                out.append(f'{key} {name}: "{value}" leaves everything else uncaptured; keep "*"')
    return out
