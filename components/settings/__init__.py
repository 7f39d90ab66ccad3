"""Typed stack settings: read and validate ALL config before any resource exists.

``load_settings`` is pure: it takes the raw config (full key -> raw string, as the Pulumi
engine hands it to the program), the environment and the previous rollout phase, and returns
frozen dataclasses or raises ``SettingsError`` whose message starts with the offending config
key, e.g. ``claude-enhancer:rollout.phase: ...``. ``from_pulumi`` wires it to the running
program.

One concern per module:

- :mod:`.model`       the typed model (frozen dataclasses), key and secret names, ``SettingsError``
  and ``USER_ERRORS``;
- :mod:`.read`        what the section parsers share: a top-level object through the one config
  reader (:mod:`contract.configreader`), secrets with env fallbacks, resource blocks, patterns;
- one module per config section, each with its parser (and, where the exporter or ``./ce``
  needs one, its secret-free view):
  :mod:`.rollout` (``rollout_view``), :mod:`.cluster` (``cluster_mode``),
  :mod:`.app` (with ``agents``; ``pods_view``), :mod:`.data`, :mod:`.vault` (``vault_enabled``),
  :mod:`.mesh` (``mesh_dataplane``), :mod:`.monitoring`, :mod:`.passwords`, :mod:`.namespaces`;
- :mod:`.load`        ``load_settings``: the sections together and the checks that span them
  (unknown top-level keys, the local registry on a real cluster, the capacity cross-check);
- :mod:`.plugins`     the plugin preflight (importlib, filesystem);
- :mod:`.source`      the Pulumi runtime source: raw config from the engine, ``from_pulumi``.

The live-cluster preflight is :mod:`components.preflight` (it imports this package, never the
other way round). The names below are re-exported so ``from components.settings import X`` keeps
working.
"""

from components.settings.app import (
    APP_BUDGET_CPU_M,
    APP_BUDGET_MEMORY_MI,
    APP_RESOURCES,
    pods_view,
)
from components.settings.cluster import cluster_mode
from components.settings.data import PG_RESOURCES, REDIS_RESOURCES
from components.settings.load import LOCAL_REGISTRIES, load_settings
from components.settings.mesh import mesh_dataplane
from components.settings.model import (
    BACKUP_ID_ENV,
    BACKUP_ID_KEY,
    BACKUP_SECRET_ENV,
    BACKUP_SECRET_KEY,
    DATAPLANES,
    GENERATORS,
    KNOWN_KEYS,
    PG_PASSWORD_ENV,
    PG_PASSWORD_KEY,
    POOLS,
    PROJECT,
    REDIS_PASSWORD_ENV,
    REDIS_PASSWORD_KEY,
    ROTATOR_INTERVAL_SECONDS,
    ROTATOR_SCHEDULE,
    SERVICES,
    STANDARD_AGENTS,
    SYSTEM_AGENTS,
    TLS_CERT_ENV,
    TLS_CERT_KEY,
    TLS_KEY_ENV,
    TLS_KEY_KEY,
    USER_ERRORS,
    VAULT_PROVIDERS,
    VAULT_TOKEN_ENV,
    VAULT_TOKEN_KEY,
    Agent,
    AppSettings,
    ClusterSettings,
    DataClients,
    DataSettings,
    MeshSettings,
    MonitoringSettings,
    Namespaces,
    PasswordSettings,
    Peer,
    PoolSettings,
    PostgresSettings,
    RedisSettings,
    ResourceSettings,
    RolloutSettings,
    Secret,
    ServiceSettings,
    Settings,
    SettingsError,
    VaultSettings,
)
from components.settings.monitoring import ESCALATION_LEVELS
from components.settings.plugins import (
    PLUGIN_SDKS,
    PluginNeed,
    check_plugins,
    required_plugins,
    sdk_plugin_version,
)
from components.settings.rollout import rollout_view
from components.settings.source import from_pulumi, raw_from_pulumi
from components.settings.vault import PG_RESERVED_ROLES, vault_enabled

__all__ = [
    "APP_BUDGET_CPU_M",
    "APP_BUDGET_MEMORY_MI",
    "APP_RESOURCES",
    "BACKUP_ID_ENV",
    "BACKUP_ID_KEY",
    "BACKUP_SECRET_ENV",
    "BACKUP_SECRET_KEY",
    "DATAPLANES",
    "ESCALATION_LEVELS",
    "GENERATORS",
    "KNOWN_KEYS",
    "LOCAL_REGISTRIES",
    "PG_PASSWORD_ENV",
    "PG_PASSWORD_KEY",
    "PG_RESERVED_ROLES",
    "PG_RESOURCES",
    "PLUGIN_SDKS",
    "POOLS",
    "PROJECT",
    "REDIS_PASSWORD_ENV",
    "REDIS_PASSWORD_KEY",
    "REDIS_RESOURCES",
    "ROTATOR_INTERVAL_SECONDS",
    "ROTATOR_SCHEDULE",
    "SERVICES",
    "STANDARD_AGENTS",
    "SYSTEM_AGENTS",
    "TLS_CERT_ENV",
    "TLS_CERT_KEY",
    "TLS_KEY_ENV",
    "TLS_KEY_KEY",
    "USER_ERRORS",
    "VAULT_PROVIDERS",
    "VAULT_TOKEN_ENV",
    "VAULT_TOKEN_KEY",
    "Agent",
    "AppSettings",
    "ClusterSettings",
    "DataClients",
    "DataSettings",
    "MeshSettings",
    "MonitoringSettings",
    "Namespaces",
    "PasswordSettings",
    "Peer",
    "PluginNeed",
    "PoolSettings",
    "PostgresSettings",
    "RedisSettings",
    "ResourceSettings",
    "RolloutSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "VaultSettings",
    "check_plugins",
    "cluster_mode",
    "from_pulumi",
    "load_settings",
    "mesh_dataplane",
    "pods_view",
    "raw_from_pulumi",
    "required_plugins",
    "rollout_view",
    "sdk_plugin_version",
    "vault_enabled",
]
