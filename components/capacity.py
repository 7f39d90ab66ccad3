"""Pure capacity model for the node pools (no Pulumi imports).

The SPEC cluster is 15 nodes of 16 cores / 64 GiB (240 cores, 960 GiB),
split into the pools ``system``, ``app`` and ``data`` over three zones.
Phase 3 (blue/green prep) runs the blue (stable) and the green (canary)
tracks at full size at the same time, so both must fit into the app pool.
"""

from __future__ import annotations

from dataclasses import dataclass

#: per-node reservation for kubelet, OS and DaemonSets.
NODE_RESERVED_CPU_M: int = 1000
NODE_RESERVED_MEMORY_MI: int = 4096
#: Istio sidecar requests added to every application pod.
SIDECAR_CPU_M: int = 100
SIDECAR_MEMORY_MI: int = 128
#: Istio's default istio-proxy limits (global.proxy.resources): a LimitRange must admit them.
SIDECAR_LIMIT_CPU_M: int = 2000
SIDECAR_LIMIT_MEMORY_MI: int = 1024


class CapacityError(ValueError):
    """The workloads do not fit into the pool."""


@dataclass(frozen=True)
class Workload:
    """Requests of one Deployment at a given replica count."""

    name: str
    replicas: int
    cpu_m: int
    memory_mi: int


@dataclass(frozen=True)
class PoolCapacity:
    """Allocatable resources of a node pool."""

    nodes: int
    node_cpu: int
    node_memory_gi: int

    @property
    def cpu_m(self) -> int:
        """Allocatable millicores over all nodes (after reservations)."""
        return self.nodes * (self.node_cpu * 1000 - NODE_RESERVED_CPU_M)

    @property
    def memory_mi(self) -> int:
        """Allocatable MiB over all nodes (after reservations)."""
        return self.nodes * (self.node_memory_gi * 1024 - NODE_RESERVED_MEMORY_MI)


@dataclass(frozen=True)
class CapacityReport:
    """What the workloads request against what the pool offers."""

    requested_cpu_m: int
    requested_memory_mi: int
    allocatable_cpu_m: int
    allocatable_memory_mi: int

    @property
    def fits(self) -> bool:
        """True when both CPU and memory fit."""
        return (
            self.requested_cpu_m <= self.allocatable_cpu_m
            and self.requested_memory_mi <= self.allocatable_memory_mi
        )


def requested(workloads: list[Workload], with_sidecar: bool = True) -> tuple[int, int]:
    """Total (millicores, MiB) requested by ``workloads``."""
    cpu = mem = 0
    for w in workloads:
        if w.replicas < 0:
            raise CapacityError(f"{w.name}: replicas must be >= 0, got {w.replicas}")
        per_cpu = w.cpu_m + (SIDECAR_CPU_M if with_sidecar else 0)
        per_mem = w.memory_mi + (SIDECAR_MEMORY_MI if with_sidecar else 0)
        cpu += w.replicas * per_cpu
        mem += w.replicas * per_mem
    return cpu, mem


def check_capacity(pool: PoolCapacity, workloads: list[Workload]) -> CapacityReport:
    """Return the report, raising CapacityError when the workloads don't fit."""
    cpu, mem = requested(workloads)
    report = CapacityReport(cpu, mem, pool.cpu_m, pool.memory_mi)
    if not report.fits:
        raise CapacityError(
            f"requests {cpu}m CPU / {mem}Mi memory exceed the app pool's allocatable "
            f"{pool.cpu_m}m CPU / {pool.memory_mi}Mi ({pool.nodes} nodes x "
            f"{pool.node_cpu} cores / {pool.node_memory_gi} GiB)"
        )
    return report


def blue_green_workloads(
    services: list[tuple[str, int]], cpu_m: int, memory_mi: int
) -> list[Workload]:
    """Both tracks at full size (phase 3+): two Workloads per (name, replicas)."""
    out: list[Workload] = []
    for name, replicas in services:
        out.append(Workload(f"{name}-blue", replicas, cpu_m, memory_mi))
        out.append(Workload(f"{name}-green", replicas, cpu_m, memory_mi))
    return out
