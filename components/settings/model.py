"""The typed settings model: the frozen dataclasses every component receives, the names of
the config keys and secrets, and the error a user's mistake raises (``SettingsError``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from components import capacity
from rollout import config as rollout_config
from rollout import phases

PROJECT = "claude-enhancer"
SERVICES: tuple[str, ...] = ("api", "workflow-engine", "agent-runtime")
POOLS: tuple[str, ...] = ("system", "app", "data")
STANDARD_AGENTS = 56
SYSTEM_AGENTS = 5
VAULT_TOKEN_KEY = "vault:token"
VAULT_TOKEN_ENV = "VAULT_TOKEN"
PG_PASSWORD_KEY = f"{PROJECT}:postgresAdminPassword"
PG_PASSWORD_ENV = "CE_POSTGRES_ADMIN_PASSWORD"
#: secret config keys -> environment fallbacks (never in plaintext stack files or state).
TLS_CERT_KEY, TLS_CERT_ENV = f"{PROJECT}:tlsCertificate", "CE_TLS_CERTIFICATE"
TLS_KEY_KEY, TLS_KEY_ENV = f"{PROJECT}:tlsPrivateKey", "CE_TLS_PRIVATE_KEY"
BACKUP_ID_KEY, BACKUP_ID_ENV = f"{PROJECT}:backupS3AccessKeyId", "CE_BACKUP_S3_ACCESS_KEY_ID"
BACKUP_SECRET_KEY, BACKUP_SECRET_ENV = (
    f"{PROJECT}:backupS3SecretAccessKey",
    "CE_BACKUP_S3_SECRET_ACCESS_KEY",
)
#: Istio data planes that work under Pod Security "restricted" (no istio-init NET_ADMIN).
DATAPLANES: tuple[str, ...] = ("cni", "ambient")
REDIS_PASSWORD_KEY = f"{PROJECT}:redisAdminPassword"
REDIS_PASSWORD_ENV = "CE_REDIS_ADMIN_PASSWORD"
#: the Redis rotator's CronJob runs every 5 minutes; it decides from its state when to rotate.
ROTATOR_SCHEDULE = "*/5 * * * *"
ROTATOR_INTERVAL_SECONDS = 300

#: top-level project keys this program understands.
KNOWN_KEYS: tuple[str, ...] = (
    "rollout",
    "cluster",
    "app",
    "agents",
    "data",
    "vault",
    "mesh",
    "monitoring",
    "namespaces",
    "passwords",
    "postgresAdminPassword",
    "tlsCertificate",
    "tlsPrivateKey",
    "backupS3AccessKeyId",
    "backupS3SecretAccessKey",
    "redisAdminPassword",
)

#: password generators (``claude-enhancer:passwords.generator``).
GENERATORS: tuple[str, ...] = ("random", "builtin")
#: Vault back-ends (``claude-enhancer:vault.provider``): the pulumi-vault resource plugin, or our
#: dynamic provider on hvac (components/vault_hvac.py) that runs in this venv.
VAULT_PROVIDERS: tuple[str, ...] = ("pulumi-vault", "hvac")


class SettingsError(ValueError):
    """Invalid or missing stack configuration; the message names the key."""


# A user's mistake in the stack config, not our bug: the program reports these as one line
# (pulumi.RunError, which the language host and engine print without a traceback).
USER_ERRORS: tuple[type[Exception], ...] = (
    SettingsError,
    capacity.CapacityError,
    phases.RolloutError,
)


class Secret:
    """A secret string that never shows up in repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext (wrap it in pulumi.Output.secret before use)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class RolloutSettings:
    """``claude-enhancer:rollout`` (parsed by :mod:`rollout.config`) plus the derived transition."""

    config: rollout_config.RolloutConfig
    """The parsed rollout config (phase, weights, bakes, gate)."""
    previous_phase: int | None
    """The stack's last exported ``rolloutPhase`` (None for a new stack)."""
    transition: str
    """initial | noop | advance | rollback."""

    @property
    def phase(self) -> int:
        """Current phase 0..4 (0 = stable only / rollback target)."""
        return self.config.phase

    @property
    def phase_weights(self) -> tuple[int, ...]:
        return self.config.phase_weights

    @property
    def allow_skip(self) -> bool:
        return self.config.allow_skip

    @property
    def bake_minutes(self) -> Mapping[int, float]:
        return self.config.bake_minutes

    @property
    def weights(self) -> phases.Weights:
        """Stable/canary weights for the current phase."""
        return self.config.weights()


@dataclass(frozen=True)
class PoolSettings:
    """One node pool."""

    name: str
    """system | app | data."""
    nodes: int
    """Node count (spread round-robin over the zones)."""
    tainted: bool
    """Whether nodes carry the ``dedicated=<pool>:NoSchedule`` taint."""


@dataclass(frozen=True)
class ClusterSettings:
    """``claude-enhancer:cluster``."""

    mode: str
    """kwok (declare fake Node objects) or existing (real nodes: their node groups set the
    pool labels and taints; the preflight checks them)."""
    zones: tuple[str, ...]
    """Availability zones (topology.kubernetes.io/zone values)."""
    node_cpu: int
    """Cores per node (SPEC: 16)."""
    node_memory_gi: int
    """GiB per node (SPEC: 64)."""
    pools: tuple[PoolSettings, ...]
    """system, app, data."""
    preflight: bool = True
    """Check the target cluster for CRDs and prerequisites before registering anything."""

    def pool(self, name: str) -> PoolSettings:
        """The pool called ``name``."""
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def total_nodes(self) -> int:
        """Nodes over all pools."""
        return sum(p.nodes for p in self.pools)


@dataclass(frozen=True)
class ServiceSettings:
    """One application service (both tracks share the figures)."""

    name: str
    """api | workflow-engine | agent-runtime."""
    replicas: int
    """Full size of one track (stable always, canary from phase 3)."""
    max_replicas: int
    """HPA ceiling for the stable track."""
    port: int = 8080
    """Container/Service port."""
    digests: tuple[tuple[str, str], ...] = ()
    """(version, "sha256:<hex>") of released images: pinned by digest (required in production)."""

    def digest(self, version: str) -> str | None:
        """The image digest of ``version`` of this service, if one is configured."""
        return dict(self.digests).get(version)


@dataclass(frozen=True)
class ResourceSettings:
    """Per-container requests (normal usage) and limits (the budget)."""

    request_cpu_m: int
    request_memory_mi: int
    limit_cpu_m: int
    limit_memory_mi: int


@dataclass(frozen=True)
class Agent:
    """One entry of the 61-agent registry."""

    name: str
    kind: str
    """standard | system."""


@dataclass(frozen=True)
class AppSettings:
    """``claude-enhancer:app`` and ``claude-enhancer:agents``."""

    registry: str
    """Image registry prefix, e.g. registry.local/claude-enhancer."""
    stable_version: str
    """Image tag of the blue (stable) track."""
    canary_version: str
    """Image tag of the green (canary) track."""
    services: tuple[ServiceSettings, ...]
    resources: ResourceSettings
    startup_period_seconds: int
    startup_failure_threshold: int
    agents: tuple[Agent, ...]

    def service(self, name: str) -> ServiceSettings:
        """The service called ``name``."""
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class PostgresSettings:
    """CloudNativePG cluster."""

    instances: int
    image: str
    storage_gi: int
    min_sync_replicas: int
    max_sync_replicas: int
    backup_schedule: str
    backup_destination: str
    backup_retention: str
    resources: ResourceSettings
    """Every instance container (CNPG applies spec.resources to each)."""
    backup_credentials: str = "secret"
    """secret (access key from secret config) | iamRole (inheritFromIAMRole, no Secret)."""
    backup_access_key_id: Secret | None = None
    backup_secret_access_key: Secret | None = None


@dataclass(frozen=True)
class RedisSettings:
    """OT-CONTAINER-KIT RedisCluster."""

    masters: int
    replicas: int
    """Followers in total (SPEC: 3, one per master)."""
    image: str
    storage_gi: int
    resources: ResourceSettings
    """The redis container (the exporter sidecar has its own, components/data.py)."""


@dataclass(frozen=True)
class Peer:
    """A workload outside the program's namespaces that talks to the data tier."""

    namespace: str
    service_account: str

    @property
    def principal(self) -> str:
        """Its Istio (SPIFFE) principal."""
        return f"cluster.local/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class DataClients:
    """``data.clients``: who besides the app reaches the data tier (namespace/serviceAccount)."""

    cnpg_operator: Peer = Peer("cnpg-system", "cnpg-manager")
    """cloudnative-pg's default install (config/default: namespace cnpg-system, SA cnpg-manager)."""
    redis_operator: Peer = Peer("redis-operator-system", "redis-operator")
    """redis-operator's default install (config/default namespace, SA redis-operator)."""
    vault: Peer = Peer("vault", "vault")
    """Vault's database secrets engine (the Helm chart's namespace and SA)."""


@dataclass(frozen=True)
class DataSettings:
    """``claude-enhancer:data``."""

    postgres: PostgresSettings
    redis: RedisSettings
    clients: DataClients = field(default_factory=DataClients)
    storage_class: str | None = None
    """StorageClass of the PostgreSQL and Redis volumes; None: the cluster's default (recent
    EKS clusters have none, so existing clusters name one; the preflight checks it exists)."""


@dataclass(frozen=True)
class VaultSettings:
    """``claude-enhancer:vault`` plus the token."""

    enabled: bool
    """Register the Vault component."""
    address: str
    token: Secret | None
    """None when Vault is disabled (not required then)."""
    kv_path: str
    kubernetes_host: str
    audit_path: str
    token_ttl: int
    token_max_ttl: int
    db_host: str
    db_port: int
    db_name: str
    db_admin_user: str
    db_admin_password: Secret | None
    """None when Vault is disabled (not required then)."""
    db_sslmode: str
    db_static_user: str
    rotation_period: int
    """Seconds between rotations of the PostgreSQL static role."""
    provider: str = "pulumi-vault"
    """pulumi-vault (resource plugin) or hvac (our dynamic provider)."""
    redis_host: str = "claude-enhancer-redis-leader.claude-enhancer-data.svc"
    """The Redis rotator's seed: it finds every node of the cluster from there."""
    redis_port: int = 6379
    redis_tls: bool = False
    redis_admin_user: str = "default"
    redis_admin_password: Secret | None = None
    """Only for running the rotator by hand; the CronJob reads the data tier's own Secret."""
    redis_static_user: str = "ce_app"
    redis_rotation_period: int = 86400
    """Seconds between rotations of the Redis application user (the rotator's CronJob)."""
    redis_rotation_grace: int = 900
    """Seconds old and new Redis passwords both work after the new one is published."""
    agent_render_interval: int = 300
    """Seconds between the Vault agents' re-reads of KV secrets (the Redis credential)."""
    redis_rotator_digest: str | None = None
    """``sha256:<hex>`` of the rotator's image (production pins images by digest)."""


@dataclass(frozen=True)
class PasswordSettings:
    """``claude-enhancer:passwords``."""

    generator: str = "random"
    """random (pulumi_random.RandomPassword) or builtin (our pulumi.dynamic provider)."""


@dataclass(frozen=True)
class MeshSettings:
    """``claude-enhancer:mesh``."""

    host: str
    tls_credential_name: str
    hsts_max_age: int
    root_namespace: str
    manage_root_namespace: bool
    session_cookie: str
    cookie_ttl_seconds: int
    ingress_service_account: str
    dataplane: str = "cni"
    """cni (sidecars, Istio CNI plugin instead of istio-init) | ambient (ztunnel, no sidecars)."""
    tls_source: str = "secret"
    """secret (certificate + key from secret config) | selfSigned (generated, local only)."""
    tls_certificate: Secret | None = None
    tls_private_key: Secret | None = None
    mesh_wide_mtls: bool = False
    """STRICT mTLS for the whole mesh (a PeerAuthentication in the root namespace) instead of
    one per namespace of ours: only for a mesh the stack owns, since on a shared mesh it
    changes every tenant, their webhooks included."""


@dataclass(frozen=True)
class MonitoringSettings:
    """``claude-enhancer:monitoring``.

    Webhook URLs carry their credentials (chat/pager tokens), so they are ``Secret``s: set
    them with ``pulumi config set --secret --path claude-enhancer:monitoring.chatWebhookUrl``.
    An unset URL leaves its receiver without an integration (the local stack has no chat).
    """

    scrape_interval: str
    chat_url: Secret | None = None
    paging_url: Secret | None = None
    escalation_urls: tuple[tuple[int, Secret], ...] = ()
    """Escalation level (2-5) -> webhook; a level without one re-pages ``paging_url``."""
    email_to: str = "platform-team@claude-enhancer.local"
    email_from: str = "alertmanager@claude-enhancer.local"
    smarthost: str = "smtp.claude-enhancer.local:587"


@dataclass(frozen=True)
class Namespaces:
    """Namespace names."""

    app: str = "claude-enhancer"
    data: str = "claude-enhancer-data"
    monitoring: str = "claude-enhancer-monitoring"

    def all(self) -> tuple[str, ...]:
        """All namespaces managed by the program."""
        return (self.app, self.data, self.monitoring)


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated."""

    stack: str
    rollout: RolloutSettings
    cluster: ClusterSettings
    app: AppSettings
    data: DataSettings
    vault: VaultSettings
    mesh: MeshSettings
    monitoring: MonitoringSettings
    passwords: PasswordSettings = field(default_factory=PasswordSettings)
    namespaces: Namespaces = field(default_factory=Namespaces)
    capacity: capacity.CapacityReport | None = None
