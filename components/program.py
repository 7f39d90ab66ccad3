"""The whole stack, wired from validated Settings (called by __main__.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.app import (
    TRAFFIC_SPLIT_SERVICE,
    App,
    AppArgs,
    traffic_targets,
    workload_name,
)
from components.approvals import ApprovalsArgs, RolloutApprovals
from components.cluster import Cluster, ClusterArgs
from components.data import PG_PODS, Data, DataArgs, vault_targets_cluster
from components.mesh import (
    VIRTUAL_SERVICE_NAME,
    Mesh,
    MeshArgs,
    virtual_service_manifest,
)
from components.monitoring import Monitoring, MonitoringArgs
from components.passwords import PASSWORDS, AppSecrets, AppSecretsArgs, Passwords, PasswordsArgs
from components.redis_rotation import RedisRotation, RedisRotationArgs, rotator_image
from components.settings import SERVICES, RolloutSettings, Settings
from components.vault import Vault, VaultArgs
from components.vault_spec import injector_annotations
from rollout import phases


@dataclass
class Stack:
    """Handles to the top-level components (for tests)."""

    cluster: Cluster
    passwords: Passwords
    vault: Vault | None
    """None when ``claude-enhancer:vault.enabled`` is false."""
    app_secrets: AppSecrets | None
    """Kubernetes Secrets holding the app passwords when Vault is disabled."""
    data: Data
    redis_rotation: RedisRotation | None
    """The Redis rotator (stacks with Vault)."""
    mesh: Mesh
    app: App
    monitoring: Monitoring
    approvals: RolloutApprovals


def traffic_moves_first(r: RolloutSettings) -> bool:
    """Pure: whether this ``up`` lowers the canary's weight from the stack's last phase, so
    the VirtualService must change before the green api's replicas (see ``run``)."""
    if r.previous_phase is None:
        return False
    before = phases.weights_for(r.previous_phase, r.phase_weights).canary
    return r.weights.canary < before


def run(s: Settings) -> Stack:
    """Register every component and export the contract outputs."""
    ns = s.namespaces
    weights = s.rollout.weights
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster=s.cluster,
            namespaces=ns,
            app=s.app,
            data=s.data,
            dataplane=s.mesh.dataplane,
            mesh_root_namespace=s.mesh.root_namespace,
        ),
    )
    namespaces = list(cluster.namespaces.values())
    passwords = Passwords(
        "passwords",
        PasswordsArgs(
            generator=s.passwords.generator,
            lengths={name: length for name, (_path, _key, length) in PASSWORDS.items()},
        ),
    )
    vault_in_cluster = s.vault.enabled and vault_targets_cluster(s.vault, ns.data)
    data = Data(
        "data",
        DataArgs(
            data=s.data,
            namespace=ns.data,
            redis_password=passwords.passwords["redis-password"],
            database=s.vault.db_name,
            owner=s.vault.db_static_user,
            redis_app_user=s.vault.redis_static_user if s.vault.enabled else None,
            # Vault logs in to the Cluster as a CNPG managed role (CNPG 1.27 leaves postgres
            # without a password), and its database mount waits for the Cluster to be Ready
            vault_user=s.vault.db_admin_user if vault_in_cluster else None,
            vault_password=(
                s.vault.db_admin_password.reveal()
                if vault_in_cluster and s.vault.db_admin_password
                else None
            ),
            wait_ready=vault_in_cluster,
            depends_on=[cluster.namespaces[ns.data], *cluster.priority_classes, *cluster.nodes],
        ),
    )
    vault: Vault | None = None
    app_secrets: AppSecrets | None = None
    if s.vault.enabled:
        vault = Vault(
            "vault",
            VaultArgs(
                vault=s.vault,
                app_namespace=ns.app,
                data_namespace=ns.data,
                passwords=passwords.passwords,
                depends_on=[cluster.namespaces[ns.app]],
                # the connection is verified on create: the Cluster must exist (and be Ready)
                database_depends_on=[data.postgres],
            ),
        )
    else:
        app_secrets = AppSecrets(
            "app-secrets",
            AppSecretsArgs(
                passwords=passwords.passwords,
                namespace=ns.app,
                depends_on=[cluster.namespaces[ns.app]],
            ),
        )
    rotation: RedisRotation | None = None
    if vault is not None:
        # with Vault, the Redis application password is rotated by the rotator, not Vault
        rotation = RedisRotation(
            "redis-rotation",
            RedisRotationArgs(
                vault=s.vault,
                data=s.data,
                namespace=ns.data,
                image=rotator_image(s.app.registry, s.vault.redis_rotator_digest),
                # not on the Vault objects: its first run comes minutes later, and a Vault-only
                # destroy or replace must not take the CronJob with it
                depends_on=[data],
            ),
        )
    app_args = AppArgs(
        app=s.app,
        phase=s.rollout.phase,
        phase_weights=s.rollout.phase_weights,
        namespace=ns.app,
        data_namespace=ns.data,
        vault_address=s.vault.address,
        # with Vault, pods get their secrets from the Vault Agent, never from a Secret
        pod_annotations=(
            {svc: injector_annotations(s.vault, svc) for svc in SERVICES}
            if s.vault.enabled
            else None
        ),
        depends_on=[
            cluster.namespaces[ns.app],
            *cluster.quotas,
            *cluster.priority_classes,
            *cluster.nodes,  # every zone registered before pods are spread over them
        ],
    )
    mesh_args = MeshArgs(
        mesh=s.mesh,
        namespaces=ns,
        weights=weights,
        clients=s.data.clients,
        depends_on=namespaces,
    )
    green_api = workload_name(TRAFFIC_SPLIT_SERVICE, "canary")
    # The engine applies an update only after the updates it depends on (and, for a
    # Deployment, after it is Ready), so the direction of this one dependency orders a step:
    if traffic_moves_first(s.rollout):
        # the canary's weight goes down (a rollback by plain `up`): the VirtualService moves
        # first, then green shrinks; the other way round green's pods would be gone while
        # the live VirtualService still sends them their share (503s)
        mesh = Mesh("mesh", mesh_args)
        app_args.scale_depends_on = [mesh.virtual_service]
        app = App("app", app_args)
    else:
        # the weight goes up (or stays): green is Ready at its new size before it gets it
        app = App("app", app_args)
        mesh_args.traffic_depends_on = [app.deployments[green_api]]
        mesh = Mesh("mesh", mesh_args)
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            monitoring=s.monitoring,
            app_namespace=ns.app,
            namespace=ns.monitoring,
            data_namespace=ns.data,
            pg_pods=PG_PODS,
            vault_address=s.vault.address if s.vault.enabled else None,
            mesh_root_namespace=s.mesh.root_namespace,
            depends_on=namespaces,
        ),
    )
    # who may approve which gate, checked by the API server (rollout/approvals.py)
    approvals = RolloutApprovals(
        "rollout-approvals",
        ApprovalsArgs(namespace=ns.app, depends_on=[cluster.namespaces[ns.app]]),
    )
    pulumi.export("rolloutPhase", s.rollout.phase)
    pulumi.export("canaryWeight", weights.canary)
    pulumi.export("stableWeight", weights.stable)
    pulumi.export("namespace", ns.app)
    pulumi.export("virtualServiceName", VIRTUAL_SERVICE_NAME)
    # the Istio labels of each track, so the rollout gate selects what the mesh reports
    pulumi.export("trafficTargets", traffic_targets(s.app, ns.app))
    # what phase 0 applies, so the controller can switch traffic before `up` converges
    pulumi.export(
        "trafficRollback",
        virtual_service_manifest(phases.weights_for(0, s.rollout.phase_weights), s.mesh, ns.app),
    )
    pulumi.export("rolloutTransition", s.rollout.transition)
    pulumi.export("bakeMinutes", {str(k): v for k, v in s.rollout.bake_minutes.items()})
    pulumi.export("vaultEnabled", s.vault.enabled)
    pulumi.export("passwordGenerator", s.passwords.generator)
    return Stack(
        cluster, passwords, vault, app_secrets, data, rotation, mesh, app, monitoring, approvals
    )
