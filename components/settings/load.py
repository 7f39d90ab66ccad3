"""``load_settings``: every section parsed, and the checks that span sections (unknown
top-level keys, the local registry on a real cluster, blue+green capacity of the app pool)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components import capacity
from components.settings.app import parse_app
from components.settings.cluster import parse_cluster
from components.settings.data import parse_data
from components.settings.mesh import parse_mesh
from components.settings.model import (
    KNOWN_KEYS,
    PROJECT,
    AppSettings,
    ClusterSettings,
    Settings,
    SettingsError,
)
from components.settings.monitoring import parse_monitoring
from components.settings.namespaces import parse_namespaces
from components.settings.passwords import parse_passwords
from components.settings.rollout import parse_rollout
from components.settings.vault import parse_vault

#: registries only the local platform serves (platform/local.sh).
LOCAL_REGISTRIES = ("registry.local",)


def check_capacity(cl: ClusterSettings, app: AppSettings) -> capacity.CapacityReport:
    pool = capacity.PoolCapacity(cl.pool("app").nodes, cl.node_cpu, cl.node_memory_gi)
    workloads = capacity.blue_green_workloads(
        [(s.name, s.replicas) for s in app.services],
        app.resources.request_cpu_m,
        app.resources.request_memory_mi,
    )
    try:
        return capacity.check_capacity(pool, workloads)
    except capacity.CapacityError as e:
        raise SettingsError(
            f"{PROJECT}:app.services: blue+green at full size (phase 3) do not fit: {e}"
        ) from None


def load_settings(
    raw: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    previous_phase: int | None = None,
    stack: str = "dev",
) -> Settings:
    """Validate the raw config into ``Settings`` or raise ``SettingsError``."""
    env = env or {}
    for key in raw:
        if key.startswith(f"{PROJECT}:") and key.split(":", 1)[1] not in KNOWN_KEYS:
            raise SettingsError(f"{key}: unknown setting (known: {', '.join(KNOWN_KEYS)})")
    ro = parse_rollout(raw, previous_phase)
    cl = parse_cluster(raw)
    app = parse_app(raw)
    s = Settings(
        stack=stack,
        rollout=ro,
        cluster=cl,
        app=app,
        data=parse_data(raw, env),
        vault=parse_vault(raw, env),
        mesh=parse_mesh(raw, env),
        monitoring=parse_monitoring(raw),
        passwords=parse_passwords(raw),
        namespaces=parse_namespaces(raw),
    )
    if cl.mode == "existing" and app.registry.split("/", 1)[0] in LOCAL_REGISTRIES:
        raise SettingsError(
            f"{PROJECT}:app.registry: {app.registry!r} is the local platform's registry, which "
            "a real cluster's nodes cannot pull from; set the release registry (images pinned "
            f"by digest: {PROJECT}:app.services.<service>.digests.<version>)"
        )
    report = check_capacity(cl, app)
    return Settings(**{**s.__dict__, "capacity": report})
