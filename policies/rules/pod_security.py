"""Pod Security Standards "restricted" profile for every workload kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool, as_dict, as_int, as_list, dig
from policies.lib.rule import WORKLOAD_TYPES, Rule, containers_of, workload_pod_spec

RULE = Rule(
    name="pod-security-restricted",
    description="Workloads must meet the Kubernetes Pod Security Standards 'restricted' profile.",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.8"],
        "ISO27001": ["A.8.9", "A.8.2"],
        "CIS": [
            "K8s 5.2.1",
            "K8s 5.2.2",
            "K8s 5.2.3",
            "K8s 5.2.4",
            "K8s 5.2.5",
            "K8s 5.2.6",
            "K8s 5.2.7",
            "K8s 5.2.8",
            "K8s 5.2.9",
            "K8s 5.7.2",
        ],
        "OWASP": ["K8s Top 10 K01"],
    },
    remediation=(
        "In the pod template set securityContext.runAsNonRoot=true and "
        "seccompProfile.type=RuntimeDefault; in every container set "
        "allowPrivilegeEscalation=false, readOnlyRootFilesystem=true, "
        "capabilities.drop=[ALL] and never privileged; remove hostNetwork/hostPID/"
        "hostIPC, hostPath volumes and hostPort."
    ),
    resource_types=tuple(WORKLOAD_TYPES),
    config_schema={
        "allowedCapabilities": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["NET_BIND_SERVICE"],
            "description": "Capabilities a container may add back (PSS restricted allows NET_BIND_SERVICE).",
        },
    },
    tags=("kubernetes", "pod-security"),
)

_SECCOMP_OK = ("RuntimeDefault", "Localhost")


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    if resource_type not in WORKLOAD_TYPES:
        return []
    cfg = RULE.resolve_config(config)
    allowed_caps = {str(c) for c in as_list(cfg.get("allowedCapabilities"))}
    spec = workload_pod_spec(resource_type, props)
    if not isinstance(spec, dict):  # missing or unknown pod spec: nothing to judge
        return []
    out: list[str] = []

    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if as_bool(dig(spec, host)) is True:
            out.append(f"pod spec.{host} must not be true")
    for vol in as_list(dig(spec, "volumes")):
        if dig(vol, "hostPath") is not None:
            out.append(f'volume "{dig(vol, "name", default="?")}" must not use hostPath')

    pod_sc = as_dict(dig(spec, "securityContext"))
    pod_non_root = dig(pod_sc, "runAsNonRoot")
    pod_seccomp = dig(pod_sc, "seccompProfile", "type")
    if as_int(dig(pod_sc, "runAsUser")) == 0:
        out.append("pod securityContext.runAsUser must not be 0")
    if pod_seccomp is not None and pod_seccomp is not UNKNOWN and pod_seccomp not in _SECCOMP_OK:
        out.append("pod securityContext.seccompProfile.type must be RuntimeDefault or Localhost")

    for fieldname, name, c in containers_of(spec):
        where = f'{fieldname[:-1]} "{name}"'
        sc = dig(c, "securityContext")
        if sc is UNKNOWN:
            continue
        sc = as_dict(sc)

        non_root = dig(sc, "runAsNonRoot")
        if non_root is None:
            non_root = pod_non_root
        if non_root is not UNKNOWN and as_bool(non_root) is not True:
            out.append(f"{where}: runAsNonRoot must be true (pod or container securityContext)")
        if as_int(dig(sc, "runAsUser")) == 0:
            out.append(f"{where}: securityContext.runAsUser must not be 0")

        seccomp = dig(sc, "seccompProfile", "type")
        if seccomp is None:
            seccomp = pod_seccomp
        if seccomp is not UNKNOWN and seccomp not in _SECCOMP_OK:
            out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost")

        if as_bool(dig(sc, "privileged")) is True:
            out.append(f"{where}: securityContext.privileged must not be true")
        ape = dig(sc, "allowPrivilegeEscalation")
        if ape is not UNKNOWN and as_bool(ape) is not False:
            out.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        rofs = dig(sc, "readOnlyRootFilesystem")
        if rofs is not UNKNOWN and as_bool(rofs) is not True:
            out.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")

        drop = dig(sc, "capabilities", "drop")
        if drop is not UNKNOWN:
            if "ALL" not in {str(d).upper() for d in as_list(drop)}:
                out.append(f"{where}: securityContext.capabilities.drop must include ALL")
        add = dig(sc, "capabilities", "add")
        if add is not UNKNOWN:
            extra = sorted({str(a) for a in as_list(add)} - allowed_caps)
            if extra:
                out.append(f"{where}: securityContext.capabilities.add must not include {', '.join(extra)}")

        for port in as_list(dig(c, "ports")):
            hp = as_int(dig(port, "hostPort"))
            if hp:
                out.append(f"{where}: hostPort {hp} is not allowed")
    return out
