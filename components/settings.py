"""Typed stack settings: read and validate ALL config before any resource exists.

``load_settings`` is pure: it takes the raw config (full key -> raw string, as
the Pulumi engine hands it to the program), the environment and the previous
rollout phase, and returns frozen dataclasses or raises ``SettingsError``
whose message starts with the offending config key, e.g.
``claude-enhancer:rollout.phase: ...``. ``from_pulumi`` wires it to the
running program.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components import alerting, capacity
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
#: Pulumi resource plugin name -> Python SDK package that pins its version.
PLUGIN_SDKS: dict[str, str] = {"vault": "pulumi_vault", "random": "pulumi_random"}

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DURATION_RE = re.compile(r"^[0-9]+(ms|s|m|h)$")


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


# --------------------------------------------------------------------------- readers


_MISSING = object()


class _Obj:
    """A JSON object read from config with key-path aware accessors."""

    def __init__(self, key: str, data: Mapping[str, Any]) -> None:
        self.key = key
        self.data = data
        self.used: set[str] = set()

    def _k(self, name: str) -> str:
        return f"{self.key}.{name}"

    def _get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise SettingsError(f"{self._k(name)}: required value is missing")
        return default

    def get_int(
        self, name: str, default: Any = _MISSING, lo: int | None = None, hi: int | None = None
    ) -> int:
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v.strip()):
                v = int(v)
            else:
                raise SettingsError(f"{self._k(name)}: must be an integer, got {v!r}")
        if lo is not None and v < lo:
            raise SettingsError(f"{self._k(name)}: must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise SettingsError(f"{self._k(name)}: must be <= {hi}, got {v}")
        return int(v)

    def get_str(
        self, name: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None
    ) -> str:
        v = self._get(name, default)
        if not isinstance(v, str) or not v:
            raise SettingsError(f"{self._k(name)}: must be a non-empty string, got {v!r}")
        if pattern is not None and not pattern.fullmatch(v):
            raise SettingsError(f"{self._k(name)}: malformed value {v!r}")
        return v

    def get_bool(self, name: str, default: Any = _MISSING) -> bool:
        v = self._get(name, default)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if not isinstance(v, bool):
            raise SettingsError(f"{self._k(name)}: must be true or false, got {v!r}")
        return v

    def get_obj(self, name: str, default: Any = _MISSING) -> _Obj:
        v = self._get(name, default)
        if not isinstance(v, Mapping):
            raise SettingsError(f"{self._k(name)}: must be an object, got {v!r}")
        return _Obj(self._k(name), v)

    def get_list(self, name: str, default: Any = _MISSING) -> list[Any]:
        v = self._get(name, default)
        if not isinstance(v, list):
            raise SettingsError(f"{self._k(name)}: must be a list, got {v!r}")
        return v

    def done(self) -> None:
        """Reject keys nobody read (typos)."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise SettingsError(
                f"{self._k(unknown[0])}: unknown setting (known: {', '.join(sorted(self.used))})"
            )


def _parse_raw(key: str, raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _top(raw: Mapping[str, Any], name: str, required: bool = True) -> _Obj:
    key = f"{PROJECT}:{name}"
    if key not in raw or raw[key] is None:
        if required:
            raise SettingsError(f"{key}: required value is missing")
        return _Obj(key, {})
    value = _parse_raw(key, raw[key])
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key}: must be an object, got {value!r}")
    return _Obj(key, value)


# --------------------------------------------------------------------------- sections


def _rollout(raw: Mapping[str, Any], previous: int | None) -> RolloutSettings:
    key = f"{PROJECT}:rollout"
    if key not in raw or raw[key] is None:
        raise SettingsError(f"{key}: required value is missing")
    try:
        cfg = rollout_config.parse(_parse_raw(key, raw[key]))
    except phases.RolloutError as e:
        raise SettingsError(str(e)) from None
    if previous is not None and not 0 <= previous <= phases.MAX_PHASE:
        raise SettingsError(
            f"{key}.phase: the stack's previous rolloutPhase output {previous!r} is not a phase"
        )
    try:
        transition = phases.check_transition(previous, cfg.phase, cfg.allow_skip)
    except phases.RolloutError as e:
        raise SettingsError(f"{key}.phase: {e}") from None
    return RolloutSettings(cfg, previous, transition)


_DEFAULT_POOLS = {"system": 3, "app": 9, "data": 3}
#: roles CloudNativePG reserves for itself: it refuses to manage them and, with superuser access
#: off (its default), ``postgres`` has no password (docs/src/declarative_role_management.md).
PG_RESERVED_ROLES = ("postgres", "streaming_replica", "cnpg_pooler_pgbouncer")
#: registries only the local platform serves (platform/local.sh).
LOCAL_REGISTRIES = ("registry.local",)


def _cluster(raw: Mapping[str, Any]) -> ClusterSettings:
    o = _top(raw, "cluster")
    mode = o.get_str("mode")
    if mode not in ("kwok", "existing"):
        raise SettingsError(f"{o._k('mode')}: must be 'kwok' or 'existing', got {mode!r}")
    zones_raw = o.get_list("zones", ["zone-a", "zone-b", "zone-c"])
    if not zones_raw or not all(isinstance(z, str) and z for z in zones_raw):
        raise SettingsError(f"{o._k('zones')}: must be a non-empty list of zone names")
    if len(set(zones_raw)) != len(zones_raw):
        raise SettingsError(f"{o._k('zones')}: zone names must be unique")
    node_cpu = o.get_int("nodeCpu", 16, lo=1)
    node_mem = o.get_int("nodeMemoryGi", 64, lo=1)
    pools_o = o.get_obj("pools", dict(_DEFAULT_POOLS))
    if "existingNodes" in o.data:
        raise SettingsError(
            f"{o._k('existingNodes')}: no longer used: on an existing cluster the node groups own "
            "the nodes' pool labels and taints, which the preflight checks (docs/real-cluster.md, "
            "'Node groups'); remove it"
        )
    pools: list[PoolSettings] = []
    for name in POOLS:
        n = pools_o.get_int(name, _DEFAULT_POOLS[name], lo=0)
        pools.append(PoolSettings(name, n, tainted=(name == "data")))
    pools_o.done()
    preflight = o.get_bool("preflight", True)
    o.done()
    if pools[1].nodes < 1:
        raise SettingsError(f"{pools_o._k('app')}: the app pool needs at least one node")
    return ClusterSettings(mode, tuple(zones_raw), node_cpu, node_mem, tuple(pools), preflight)


#: SPEC per-instance budget: < 2 cores, < 4 GB (4e9 bytes = 3814 MiB).
APP_BUDGET_CPU_M = 2000
APP_BUDGET_MEMORY_MI = 3814
#: defaults: requests = SPEC normal usage (1.8 cores, 2.8 GB = 2670 MiB), limits = the budget.
APP_RESOURCES = ResourceSettings(1800, 2670, 1950, 3814)
PG_RESOURCES = ResourceSettings(2000, 8192, 4000, 12288)
REDIS_RESOURCES = ResourceSettings(500, 2048, 1000, 4096)


def _resources(
    r: _Obj,
    d: ResourceSettings,
    max_cpu_m: int | None = None,
    max_memory_mi: int | None = None,
) -> ResourceSettings:
    res = ResourceSettings(
        request_cpu_m=r.get_int("requestCpuMilli", d.request_cpu_m, lo=1),
        request_memory_mi=r.get_int("requestMemoryMi", d.request_memory_mi, lo=1),
        limit_cpu_m=r.get_int("limitCpuMilli", d.limit_cpu_m, lo=1, hi=max_cpu_m),
        limit_memory_mi=r.get_int("limitMemoryMi", d.limit_memory_mi, lo=1, hi=max_memory_mi),
    )
    if res.request_cpu_m > res.limit_cpu_m:
        raise SettingsError(f"{r._k('requestCpuMilli')}: must be <= limitCpuMilli")
    if res.request_memory_mi > res.limit_memory_mi:
        raise SettingsError(f"{r._k('requestMemoryMi')}: must be <= limitMemoryMi")
    r.done()
    return res


_DEFAULT_SERVICES = {
    "api": {"replicas": 3, "maxReplicas": 9},
    "workflow-engine": {"replicas": 3, "maxReplicas": 6},
    "agent-runtime": {"replicas": 3, "maxReplicas": 9},
}


def _agents(raw: Mapping[str, Any]) -> tuple[Agent, ...]:
    key = f"{PROJECT}:agents"
    if key not in raw or raw[key] is None:
        raise SettingsError(f"{key}: required value is missing (the 61-agent registry)")
    value = _parse_raw(key, raw[key])
    if not isinstance(value, list):
        raise SettingsError(f"{key}: must be a list of {{name, kind}} objects")
    agents: list[Agent] = []
    for i, item in enumerate(value):
        o = _Obj(f"{key}[{i}]", item) if isinstance(item, Mapping) else None
        if o is None:
            raise SettingsError(f"{key}[{i}]: must be an object with name and kind, got {item!r}")
        name = o.get_str("name", pattern=_NAME_RE)
        kind = o.get_str("kind")
        if kind not in ("standard", "system"):
            raise SettingsError(f"{o._k('kind')}: must be 'standard' or 'system', got {kind!r}")
        o.done()
        agents.append(Agent(name, kind))
    names = [a.name for a in agents]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SettingsError(f"{key}: duplicate agent names {dup}")
    std = sum(1 for a in agents if a.kind == "standard")
    sys_ = len(agents) - std
    if std != STANDARD_AGENTS or sys_ != SYSTEM_AGENTS:
        raise SettingsError(
            f"{key}: must list {STANDARD_AGENTS} standard + {SYSTEM_AGENTS} system agents, got {std} + {sys_}"
        )
    return tuple(agents)


def _app(raw: Mapping[str, Any]) -> AppSettings:
    o = _top(raw, "app")
    registry = o.get_str("registry", "registry.local/claude-enhancer")
    stable = o.get_str("stableVersion", "5.0.3", pattern=_VERSION_RE)
    canary = o.get_str("canaryVersion", pattern=_VERSION_RE)
    svc_o = o.get_obj("services", {})
    services: list[ServiceSettings] = []
    for name in SERVICES:
        s = svc_o.get_obj(name, _DEFAULT_SERVICES[name])
        replicas = s.get_int("replicas", _DEFAULT_SERVICES[name]["replicas"], lo=1)
        max_r = s.get_int(
            "maxReplicas", max(replicas, _DEFAULT_SERVICES[name]["maxReplicas"]), lo=1
        )
        if max_r < max(replicas, 1):
            raise SettingsError(
                f"{s._k('maxReplicas')}: must be >= replicas ({replicas}), got {max_r}"
            )
        dg = s.get_obj("digests", {})
        digests = []
        for version in sorted(dg.data):
            if not _VERSION_RE.fullmatch(str(version)):
                raise SettingsError(f"{dg._k(str(version))}: not an image version")
            digests.append((str(version), dg.get_str(str(version), pattern=_DIGEST_RE)))
        dg.done()
        s.done()
        services.append(ServiceSettings(name, replicas, max_r, digests=tuple(digests)))
    svc_o.done()
    # SPEC per instance: normal usage 1.8 cores / 2.8 GB -> requests (what the scheduler
    # reserves and the HPA targets against); budget < 2 cores / < 4 GB -> limits.
    res = _resources(
        o.get_obj("resources", {}),
        APP_RESOURCES,
        max_cpu_m=APP_BUDGET_CPU_M - 1,
        max_memory_mi=APP_BUDGET_MEMORY_MI,
    )
    period = o.get_int("startupPeriodSeconds", 2, lo=1)
    threshold = o.get_int("startupFailureThreshold", 14, lo=1)
    if period * threshold >= 30:
        raise SettingsError(
            f"{o._k('startupFailureThreshold')}: startup budget {period}s x {threshold} must stay below 30 s"
        )
    o.done()
    return AppSettings(
        registry, stable, canary, tuple(services), res, period, threshold, _agents(raw)
    )


def _data(raw: Mapping[str, Any], env: Mapping[str, str]) -> DataSettings:
    o = _top(raw, "data", required=False)
    p = o.get_obj("postgres", {})
    instances = p.get_int("instances", 3, lo=1)
    min_sync = p.get_int("minSyncReplicas", 1, lo=0)
    max_sync = p.get_int("maxSyncReplicas", 1, lo=0)
    if max_sync < min_sync:
        raise SettingsError(f"{p._k('maxSyncReplicas')}: must be >= minSyncReplicas")
    if max_sync > instances - 1:
        raise SettingsError(
            f"{p._k('maxSyncReplicas')}: must be <= instances - 1 ({instances - 1}), got {max_sync}"
        )
    creds = p.get_str("backupCredentials", "secret")
    if creds not in ("secret", "iamRole"):
        raise SettingsError(
            f"{p._k('backupCredentials')}: must be 'secret' or 'iamRole', got {creds!r}"
        )
    pg = PostgresSettings(
        instances=instances,
        image=p.get_str("image", "ghcr.io/cloudnative-pg/postgresql:15.8"),
        storage_gi=p.get_int("storageGi", 100, lo=1),
        min_sync_replicas=min_sync,
        max_sync_replicas=max_sync,
        backup_schedule=p.get_str("backupSchedule", "0 0 2 * * *"),
        backup_destination=p.get_str("backupDestination", "s3://claude-enhancer-backups/pg"),
        backup_retention=p.get_str("backupRetention", "30d"),
        resources=_resources(p.get_obj("resources", {}), PG_RESOURCES),
        backup_credentials=creds,
    )
    if not pg.image.split(":")[-1].startswith("15"):
        raise SettingsError(f"{p._k('image')}: must be a PostgreSQL 15 image, got {pg.image!r}")
    p.done()
    r = o.get_obj("redis", {})
    rd = RedisSettings(
        masters=r.get_int("masters", 3, lo=3),
        replicas=r.get_int("replicas", 3, lo=0),
        image=r.get_str("image", "quay.io/opstree/redis:v7.0.15"),
        storage_gi=r.get_int("storageGi", 10, lo=1),
        resources=_resources(r.get_obj("resources", {}), REDIS_RESOURCES),
    )
    r.done()
    c = o.get_obj("clients", {})
    d = DataClients()
    clients = DataClients(
        cnpg_operator=_peer(c, "cnpgOperator", d.cnpg_operator),
        redis_operator=_peer(c, "redisOperator", d.redis_operator),
        vault=_peer(c, "vault", d.vault),
    )
    c.done()
    storage_class = (
        o.get_str("storageClass", pattern=_NAME_RE) if "storageClass" in o.data else None
    )
    o.done()
    if creds == "secret":
        what = f"S3 credentials for {p._k('backupDestination')}"
        pg = PostgresSettings(
            **{
                **pg.__dict__,
                "backup_access_key_id": _secret(raw, env, BACKUP_ID_KEY, BACKUP_ID_ENV, what),
                "backup_secret_access_key": _secret(
                    raw, env, BACKUP_SECRET_KEY, BACKUP_SECRET_ENV, what
                ),
            }
        )
    return DataSettings(pg, rd, clients, storage_class)


def _peer(o: _Obj, name: str, default: Peer) -> Peer:
    v = o.get_str(name, f"{default.namespace}/{default.service_account}")
    ns, _, sa = v.partition("/")
    if not (_NAME_RE.fullmatch(ns) and _NAME_RE.fullmatch(sa)):
        raise SettingsError(f"{o._k(name)}: must be <namespace>/<serviceAccount>, got {v!r}")
    return Peer(ns, sa)


def _secret(
    raw: Mapping[str, Any], env: Mapping[str, str], key: str, env_name: str, what: str
) -> Secret:
    v = raw.get(key)
    if isinstance(v, str) and v:
        return Secret(v)
    e = env.get(env_name)
    if e:
        return Secret(e)
    raise SettingsError(
        f"{key}: missing {what}; set it with `pulumi config set --secret {key} ...` or export {env_name}"
    )


def _optional_secret(
    raw: Mapping[str, Any], env: Mapping[str, str], key: str, env_name: str
) -> Secret | None:
    try:
        return _secret(raw, env, key, env_name, "")
    except SettingsError:
        return None


def _vault_enabled(o: _Obj) -> bool:
    return o.get_bool("enabled", True)


def pods_view(raw: Mapping[str, Any]) -> tuple[AppSettings, Namespaces]:
    """The app's and the namespaces' settings alone (what the pods are labelled from), read
    without the stack's secrets: for the synthetic exporter, which shapes telemetry like theirs."""
    return _app(raw), _namespaces(raw)


def rollout_view(raw: Mapping[str, Any]) -> rollout_config.RolloutConfig:
    """``rollout`` alone (phase, weights), read without the stack's secrets: for the synthetic
    exporter's traffic split while no VirtualService is applied."""
    return _rollout(raw, None).config


def cluster_mode(raw: Mapping[str, Any]) -> str:
    """``cluster.mode`` (kwok | existing), read without validating the rest of the stack."""
    return _top(raw, "cluster").get_str("mode")


def mesh_dataplane(raw: Mapping[str, Any]) -> str:
    """``mesh.dataplane`` (cni | ambient), read without validating the rest of the stack."""
    return _top(raw, "mesh", required=False).get_str("dataplane", "cni")


def vault_enabled(raw: Mapping[str, Any]) -> bool:
    """Whether the stack registers the Vault component (read without needing its secrets)."""
    return _vault_enabled(_top(raw, "vault"))


def _vault(raw: Mapping[str, Any], env: Mapping[str, str]) -> VaultSettings:
    o = _top(raw, "vault")
    address = o.get_str("address")
    if not re.match(r"^https?://", address):
        raise SettingsError(f"{o._k('address')}: must be an http(s) URL, got {address!r}")
    ttl = o.get_int("tokenTtlSeconds", 900, lo=60)
    max_ttl = o.get_int("tokenMaxTtlSeconds", 3600, lo=60)
    if max_ttl < ttl:
        raise SettingsError(f"{o._k('tokenMaxTtlSeconds')}: must be >= tokenTtlSeconds")
    db = o.get_obj("postgres")
    rd = o.get_obj("redis", {})
    enabled = _vault_enabled(o)
    provider = o.get_str("provider", "pulumi-vault")
    if provider not in VAULT_PROVIDERS:
        raise SettingsError(
            f"{o._k('provider')}: must be one of {', '.join(VAULT_PROVIDERS)}, got {provider!r}"
        )
    vs = VaultSettings(
        enabled=enabled,
        address=address,
        token=None,
        kv_path=o.get_str("kvPath", "claude-enhancer", pattern=_NAME_RE),
        kubernetes_host=o.get_str("kubernetesHost", "https://kubernetes.default.svc"),
        audit_path=o.get_str("auditPath", "stdout"),
        token_ttl=ttl,
        token_max_ttl=max_ttl,
        db_host=db.get_str("host"),
        db_port=db.get_int("port", 5432, lo=1, hi=65535),
        db_name=db.get_str("database", "claude_enhancer"),
        db_admin_user=db.get_str("adminUser", "vault"),
        db_admin_password=None,
        db_sslmode=db.get_str("sslmode", "disable"),
        db_static_user=db.get_str("staticUser", "ce_app"),
        rotation_period=db.get_int("rotationPeriodSeconds", 86400, lo=300),
        provider=provider,
        redis_host=rd.get_str("host", VaultSettings.redis_host),
        redis_port=rd.get_int("port", 6379, lo=1, hi=65535),
        redis_tls=rd.get_bool("tls", False),
        redis_admin_user=rd.get_str("adminUser", "default"),
        redis_static_user=rd.get_str("staticUser", "ce_app"),
        redis_rotation_period=rd.get_int("rotationPeriodSeconds", 86400, lo=300),
        redis_rotation_grace=rd.get_int("rotationGraceSeconds", 900, lo=30),
        agent_render_interval=o.get_int("agentRenderIntervalSeconds", 300, lo=10),
        redis_rotator_digest=(
            rd.get_str("rotatorImageDigest", pattern=_DIGEST_RE)
            if "rotatorImageDigest" in rd.data
            else None
        ),
    )
    # clients re-read the published password within one render interval: the old one must
    # outlive that; and a rotation must end (the CronJob's next run) before the next is due
    if vs.redis_rotation_grace < vs.agent_render_interval + 30:
        raise SettingsError(
            f"{rd._k('rotationGraceSeconds')}: must be >= agentRenderIntervalSeconds + 30 "
            f"({vs.agent_render_interval + 30}): clients may hold the old password that long"
        )
    if vs.redis_rotation_period < vs.redis_rotation_grace + ROTATOR_INTERVAL_SECONDS:
        raise SettingsError(
            f"{rd._k('rotationPeriodSeconds')}: must be >= rotationGraceSeconds + "
            f"{ROTATOR_INTERVAL_SECONDS} (the rotator's schedule)"
        )
    if vs.db_admin_user in PG_RESERVED_ROLES:
        raise SettingsError(
            f"{db._k('adminUser')}: {vs.db_admin_user!r} is reserved by CloudNativePG (no "
            "password by default, never a managed role); use a role of its own, e.g. 'vault'"
        )
    db.done()
    rd.done()
    o.done()
    if not enabled:
        return vs
    token = _secret(raw, env, VAULT_TOKEN_KEY, VAULT_TOKEN_ENV, "Vault token")
    pw = _secret(raw, env, PG_PASSWORD_KEY, PG_PASSWORD_ENV, "PostgreSQL admin password")
    redis_pw = _optional_secret(raw, env, REDIS_PASSWORD_KEY, REDIS_PASSWORD_ENV)
    return VaultSettings(
        **{
            **vs.__dict__,
            "token": token,
            "db_admin_password": pw,
            "redis_admin_password": redis_pw,
        }
    )


def _passwords(raw: Mapping[str, Any]) -> PasswordSettings:
    o = _top(raw, "passwords", required=False)
    generator = o.get_str("generator", "random")
    if generator not in GENERATORS:
        raise SettingsError(
            f"{o._k('generator')}: must be 'random' or 'builtin', got {generator!r}"
        )
    o.done()
    return PasswordSettings(generator)


def _mesh(raw: Mapping[str, Any], env: Mapping[str, str]) -> MeshSettings:
    o = _top(raw, "mesh", required=False)
    dataplane = o.get_str("dataplane", "cni")
    if dataplane not in DATAPLANES:
        raise SettingsError(
            f"{o._k('dataplane')}: must be 'cni' (sidecars with the Istio CNI plugin) or "
            f"'ambient', got {dataplane!r}; classic istio-init injection needs NET_ADMIN, "
            "which Pod Security 'restricted' forbids"
        )
    tls_source = o.get_str("tlsSource", "secret")
    if tls_source not in ("secret", "selfSigned"):
        raise SettingsError(
            f"{o._k('tlsSource')}: must be 'secret' or 'selfSigned', got {tls_source!r}"
        )
    m = MeshSettings(
        host=o.get_str("host", "claude-enhancer.local"),
        tls_credential_name=o.get_str("tlsCredentialName", "claude-enhancer-tls"),
        hsts_max_age=o.get_int("hstsMaxAgeSeconds", 31536000, lo=86400),
        root_namespace=o.get_str("rootNamespace", "istio-system", pattern=_NAME_RE),
        manage_root_namespace=o.get_bool("manageRootNamespace", False),
        session_cookie=o.get_str("sessionCookie", "ce-track", pattern=_NAME_RE),
        cookie_ttl_seconds=o.get_int("cookieTtlSeconds", 3600, lo=60),
        ingress_service_account=o.get_str(
            "ingressServiceAccount", "istio-ingressgateway-service-account", pattern=_NAME_RE
        ),
        dataplane=dataplane,
        tls_source=tls_source,
        mesh_wide_mtls=o.get_bool("meshWideMtls", False),
    )
    o.done()
    if tls_source == "secret":
        what = f"edge TLS for {o._k('host')} (PEM)"
        m = MeshSettings(
            **{
                **m.__dict__,
                "tls_certificate": _secret(raw, env, TLS_CERT_KEY, TLS_CERT_ENV, what),
                "tls_private_key": _secret(raw, env, TLS_KEY_KEY, TLS_KEY_ENV, what),
            }
        )
    return m


_WEBHOOK_RE = re.compile(r"^https?://[^\s]+$")
#: escalation levels that have their own receiver (level 1 is the severity route).
ESCALATION_LEVELS: tuple[int, ...] = tuple(lv.level for lv in alerting.ESCALATION[1:])


def _webhook(o: _Obj, name: str, value: Any) -> Secret:
    # the message never echoes the value: it is a secret
    if not isinstance(value, str) or not _WEBHOOK_RE.fullmatch(value):
        raise SettingsError(f"{o._k(name)}: must be an http(s) URL (value hidden)")
    return Secret(value)


def _monitoring(raw: Mapping[str, Any]) -> MonitoringSettings:
    o = _top(raw, "monitoring", required=False)
    d = MonitoringSettings(scrape_interval="15s")
    urls: dict[str, Secret | None] = {}
    for key in ("chatWebhookUrl", "pagingWebhookUrl"):
        v = o._get(key, None)
        urls[key] = None if v is None else _webhook(o, key, v)
    raw_esc = o._get("escalationWebhookUrls", {})
    if not isinstance(raw_esc, Mapping):
        raise SettingsError(f"{o._k('escalationWebhookUrls')}: must be an object (value hidden)")
    esc = _Obj(o._k("escalationWebhookUrls"), raw_esc)
    levels: list[tuple[int, Secret]] = []
    for level_key in sorted(esc.data):
        esc.used.add(level_key)
        if level_key not in {str(lv) for lv in ESCALATION_LEVELS}:
            raise SettingsError(
                f"{esc._k(level_key)}: escalation level must be one of {list(ESCALATION_LEVELS)}"
            )
        levels.append((int(level_key), _webhook(esc, level_key, esc.data[level_key])))
    esc.done()
    m = MonitoringSettings(
        scrape_interval=o.get_str("scrapeInterval", "15s", pattern=_DURATION_RE),
        chat_url=urls["chatWebhookUrl"],
        paging_url=urls["pagingWebhookUrl"],
        escalation_urls=tuple(levels),
        email_to=o.get_str("emailTo", d.email_to),
        email_from=o.get_str("emailFrom", d.email_from),
        smarthost=o.get_str("smarthost", d.smarthost),
    )
    o.done()
    return m


def _namespaces(raw: Mapping[str, Any]) -> Namespaces:
    o = _top(raw, "namespaces", required=False)
    d = Namespaces()
    ns = Namespaces(
        app=o.get_str("app", d.app, pattern=_NAME_RE),
        data=o.get_str("data", d.data, pattern=_NAME_RE),
        monitoring=o.get_str("monitoring", d.monitoring, pattern=_NAME_RE),
    )
    o.done()
    if len(set(ns.all())) != 3:
        raise SettingsError(f"{o.key}: app, data and monitoring namespaces must differ")
    return ns


def _check_capacity(cl: ClusterSettings, app: AppSettings) -> capacity.CapacityReport:
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
    ro = _rollout(raw, previous_phase)
    cl = _cluster(raw)
    app = _app(raw)
    s = Settings(
        stack=stack,
        rollout=ro,
        cluster=cl,
        app=app,
        data=_data(raw, env),
        vault=_vault(raw, env),
        mesh=_mesh(raw, env),
        monitoring=_monitoring(raw),
        passwords=_passwords(raw),
        namespaces=_namespaces(raw),
    )
    if cl.mode == "existing" and app.registry.split("/", 1)[0] in LOCAL_REGISTRIES:
        raise SettingsError(
            f"{PROJECT}:app.registry: {app.registry!r} is the local platform's registry, which "
            "a real cluster's nodes cannot pull from; set the release registry (images pinned "
            f"by digest: {PROJECT}:app.services.<service>.digests.<version>)"
        )
    report = _check_capacity(cl, app)
    return Settings(**{**s.__dict__, "capacity": report})


# --------------------------------------------------------------------------- plugin preflight


@dataclass(frozen=True)
class PluginNeed:
    """A resource plugin the stack's settings require (outside the toolchain)."""

    setting: str
    """The setting that requires it, e.g. ``claude-enhancer:vault.enabled=true``."""
    plugin: str
    """Plugin name (vault | random)."""
    fix: str
    """The setting that avoids it."""


def required_plugins(s: Settings) -> list[PluginNeed]:
    """Pure: resource plugins these settings need besides kubernetes / pulumi-python."""
    needs: list[PluginNeed] = []
    if s.vault.enabled and s.vault.provider == "pulumi-vault":
        needs.append(
            PluginNeed(
                f"{PROJECT}:vault.enabled=true",
                "vault",
                f"{PROJECT}:vault.provider=hvac (or {PROJECT}:vault.enabled=false)",
            )
        )
    if s.passwords.generator == "random":
        needs.append(
            PluginNeed(
                f"{PROJECT}:passwords.generator=random",
                "random",
                f"{PROJECT}:passwords.generator=builtin",
            )
        )
    return needs


def sdk_plugin_version(plugin: str) -> str:
    """The plugin version the installed Python SDK pins (its ``pulumi-plugin.json``)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(PLUGIN_SDKS[plugin])  # does not import the (huge) SDK
    if spec is None or not spec.submodule_search_locations:
        raise SettingsError(f"{PROJECT}: the Python SDK {PLUGIN_SDKS[plugin]} is not installed")
    meta = Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json"
    return str(json.loads(meta.read_text())["version"])


def check_plugins(
    s: Settings, pulumi_home: str | None, versions: Mapping[str, str] | None = None
) -> None:
    """Raise ``SettingsError`` when a needed resource plugin is not in ``$PULUMI_HOME/plugins``.

    Nothing is checked without ``pulumi_home`` (the engine's own lookup applies then).
    ``versions`` maps plugin name -> version (default: read from the installed SDKs).
    """
    if not pulumi_home:
        return
    from pathlib import Path

    problems: list[str] = []
    for need in required_plugins(s):
        version = versions[need.plugin] if versions is not None else sdk_plugin_version(need.plugin)
        d = Path(pulumi_home) / "plugins" / f"resource-{need.plugin}-v{version}"
        if not d.is_dir() or d.with_name(d.name + ".partial").exists():
            problems.append(
                f"{need.setting} needs the Pulumi resource plugin {need.plugin} v{version}, "
                f"which is not installed (no {d}; see docs/toolchain-notes.md: not buildable here); "
                f"set {need.fix} for this stack"
            )
    if problems:
        raise SettingsError("\n".join(problems))


def raw_from_pulumi(keys: tuple[str, ...] = KNOWN_KEYS) -> dict[str, Any]:
    """Collect the raw config values the engine passed to this program."""
    from pulumi.runtime.config import get_config

    raw: dict[str, Any] = {}
    for k in keys:
        v = get_config(f"{PROJECT}:{k}")
        if v is not None:
            raw[f"{PROJECT}:{k}"] = v
    tok = get_config(VAULT_TOKEN_KEY)
    if tok is not None:
        raw[VAULT_TOKEN_KEY] = tok
    # unknown project keys are an error too: look at everything we were given
    from pulumi.runtime.config import CONFIG, get_config_env

    for k in {**get_config_env(), **CONFIG.get()}:
        if k.startswith(f"{PROJECT}:") and k not in raw:
            raw[k] = get_config(k)
    return raw


def from_pulumi(
    env: Mapping[str, str] | None = None,
    previous_phase_reader: Callable[[], int | None] | None = None,
) -> Settings:
    """Read the running stack's config and validate it."""
    import os

    import pulumi

    from components import state

    reader = previous_phase_reader or state.previous_phase
    raw = raw_from_pulumi()
    try:
        previous = reader()
    except state.StateError as e:
        raise SettingsError(f"{PROJECT}:rollout.phase: {e}") from None
    env = dict(os.environ) if env is None else env
    s = load_settings(raw, env, previous, stack=pulumi.get_stack())
    # With automatic plugin acquisition on (a user-installed CLI), Pulumi fetches what is missing.
    if (
        not state._under_mocks()
        and env.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION") == "true"
    ):
        check_plugins(s, env.get("PULUMI_HOME"))
    if not state._under_mocks() and s.cluster.preflight:
        cluster_preflight(s, env)
    return s


def cluster_preflight(s: Settings, env: Mapping[str, str]) -> None:
    """The target cluster has every CRD and prerequisite the stack needs (components.preflight)."""
    from pulumi.runtime.config import get_config

    from components import preflight

    kubeconfig = preflight.load_kubeconfig(get_config("kubernetes:kubeconfig"), env)
    api = preflight.KubeApi(kubeconfig, get_config("kubernetes:context"))
    try:
        preflight.check(s, api)
    except OSError as e:  # requests' errors derive from OSError
        raise SettingsError(
            f"{PROJECT}:cluster: cannot read the target cluster at {api.server} for the "
            f"preflight: {e}"
        ) from None
