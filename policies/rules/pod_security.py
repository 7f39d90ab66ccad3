"""Pod Security Standards "restricted" profile for every workload kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_bool, as_dict, as_int, as_list, dig
from policies.lib.rule import WORKLOAD_TYPES, PodTemplate, Rule, containers_of, pod_templates

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
        "hostIPC, hostPort and volumes other than configMap/csi/downwardAPI/emptyDir/ephemeral/"
        "persistentVolumeClaim/projected/secret; use only safe sysctls, no SELinux user/role or custom type, "
        "procMount Default and AppArmor runtime/default."
    ),
    resource_types=tuple(WORKLOAD_TYPES),  # + their *Patch types and older API groups
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
_APPARMOR_OK = ("RuntimeDefault", "Localhost")
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

#: PSS baseline "Sysctls": the safe set (Kubernetes 1.29+); anything else is forbidden.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
#: PSS baseline "SELinux": these types only; user and role must stay unset.
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
#: PSS restricted "Volume Types": every other volume source is forbidden (hostPath, nfs, iscsi, ...).
VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)


def _selinux(where: str, sc: Any) -> list[str]:
    opts = dig(sc, "seLinuxOptions")
    if not isinstance(opts, dict):
        return []
    out: list[str] = []
    t = dig(opts, "type")
    if isinstance(t, str) and t not in SELINUX_TYPES:
        out.append(f"{where}seLinuxOptions.type {t} is not allowed ({', '.join(sorted(SELINUX_TYPES - {''}))})")
    for key in ("user", "role"):
        v = dig(opts, key)
        if isinstance(v, str) and v:
            out.append(f"{where}seLinuxOptions.{key} must not be set")
    return out


def _common(where: str, sc: Any) -> list[str]:
    """Checks that apply to the pod and to each container securityContext alike."""
    out = _selinux(where, sc)
    if as_bool(dig(sc, "windowsOptions", "hostProcess")) is True:
        out.append(f"{where}windowsOptions.hostProcess must not be true")
    apparmor = dig(sc, "appArmorProfile", "type")
    if isinstance(apparmor, str) and apparmor not in _APPARMOR_OK:
        out.append(f"{where}appArmorProfile.type must be RuntimeDefault or Localhost")
    return out


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    allowed_caps = {str(c) for c in as_list(cfg.get("allowedCapabilities"))}
    return [f"{t.where}{m}" for t in pod_templates(resource_type, props) for m in _check_template(t, allowed_caps)]


def _check_template(template: PodTemplate, allowed_caps: set[str]) -> list[str]:
    # A *Patch changes only the fields it names: judge what it sets, not what it leaves out.
    judge_missing = not template.partial
    spec = template.spec
    out: list[str] = []

    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if as_bool(dig(spec, host)) is True:
            out.append(f"pod spec.{host} must not be true")
    for vol in as_list(dig(spec, "volumes")):
        if not isinstance(vol, dict):
            continue
        name = dig(vol, "name", default="?")
        sources = sorted(k for k in vol if k != "name" and vol[k] is not None)
        if dig(vol, "hostPath") is not None:
            out.append(f'volume "{name}" must not use hostPath')
        elif any(src not in VOLUME_TYPES for src in sources):
            bad = ", ".join(src for src in sources if src not in VOLUME_TYPES)
            out.append(f'volume "{name}" uses {bad}; restricted allows only {", ".join(sorted(VOLUME_TYPES))}')

    meta = template.metadata
    for key, value in sorted(as_dict(dig(meta, "annotations")).items()):
        if key.startswith(_APPARMOR_ANNOTATION) and isinstance(value, str):
            if value != "runtime/default" and not value.startswith("localhost/"):
                out.append(f"annotation {key} is {value}; must be runtime/default or localhost/*")

    pod_sc = as_dict(dig(spec, "securityContext"))
    pod_non_root = dig(pod_sc, "runAsNonRoot")
    pod_seccomp = dig(pod_sc, "seccompProfile", "type")
    if as_int(dig(pod_sc, "runAsUser")) == 0:
        out.append("pod securityContext.runAsUser must not be 0")
    if pod_seccomp is not None and pod_seccomp is not UNKNOWN and pod_seccomp not in _SECCOMP_OK:
        out.append("pod securityContext.seccompProfile.type must be RuntimeDefault or Localhost")
    out += _common("pod securityContext.", pod_sc)
    for sysctl in as_list(dig(pod_sc, "sysctls")):
        name = dig(sysctl, "name")
        if isinstance(name, str) and name not in SAFE_SYSCTLS:
            out.append(f"pod securityContext.sysctls {name} is not a safe sysctl")

    for fieldname, name, c in containers_of(spec):
        where = f'{fieldname[:-1]} "{name}"'
        sc = dig(c, "securityContext")
        if sc is UNKNOWN:
            continue
        sc = as_dict(sc)

        non_root = dig(sc, "runAsNonRoot")
        if non_root is None:
            non_root = pod_non_root
        if non_root is not UNKNOWN and as_bool(non_root) is not True and (judge_missing or non_root is not None):
            out.append(f"{where}: runAsNonRoot must be true (pod or container securityContext)")
        if as_int(dig(sc, "runAsUser")) == 0:
            out.append(f"{where}: securityContext.runAsUser must not be 0")

        seccomp = dig(sc, "seccompProfile", "type")
        if seccomp is None:
            seccomp = pod_seccomp
        if seccomp is not UNKNOWN and seccomp not in _SECCOMP_OK and (judge_missing or seccomp is not None):
            out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost")

        if as_bool(dig(sc, "privileged")) is True:
            out.append(f"{where}: securityContext.privileged must not be true")
        ape = dig(sc, "allowPrivilegeEscalation")
        if ape is not UNKNOWN and as_bool(ape) is not False and (judge_missing or ape is not None):
            out.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        rofs = dig(sc, "readOnlyRootFilesystem")
        if rofs is not UNKNOWN and as_bool(rofs) is not True and (judge_missing or rofs is not None):
            out.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
        proc_mount = dig(sc, "procMount")
        if isinstance(proc_mount, str) and proc_mount != "Default":
            out.append(f"{where}: securityContext.procMount must be Default")
        out += [f"{where}: {m}" for m in _common("securityContext.", sc)]

        drop = dig(sc, "capabilities", "drop")
        if drop is not UNKNOWN and (judge_missing or drop is not None):
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
