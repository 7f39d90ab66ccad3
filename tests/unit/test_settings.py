"""Settings: every stack loads; every kind of bad input names its key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components import settings as S
from tests.unit.conftest import PG_PW, TOKEN, load_stack_raw, set_obj, with_secrets


def load(
    raw: dict[str, Any], env: dict[str, str] | None = None, previous: int | None = None
) -> S.Settings:
    return S.load_settings(raw, env or {}, previous, stack="t")


def err(raw: dict[str, Any], env: dict[str, str] | None = None, previous: int | None = None) -> str:
    with pytest.raises(S.SettingsError) as e:
        load(raw, env, previous)
    return str(e.value)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_stack_loads(stack: str) -> None:
    s = load(with_secrets(load_stack_raw(stack)))
    assert s.rollout.phase == 0
    assert len(s.app.agents) == 61
    assert sum(a.kind == "system" for a in s.app.agents) == 5
    assert s.cluster.total_nodes == 15
    assert s.capacity is not None and s.capacity.fits
    if stack == "prod":
        assert all(svc.replicas >= 2 for svc in s.app.services)
        assert s.rollout.bake_minutes == {1: 30, 2: 45, 3: 30, 4: 15}
        assert s.cluster.mode == "existing"
    if stack == "local":
        assert s.cluster.mode == "kwok"
        assert s.vault.address == "http://127.0.0.1:8200"
        assert s.vault.db_host == "127.0.0.1" and s.vault.db_port == 55432
        assert all(v <= 5 for v in s.rollout.bake_minutes.values())


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_stack_files_hold_no_plaintext_secrets(stack: str) -> None:
    raw = load_stack_raw(stack)
    assert S.VAULT_TOKEN_KEY not in raw and S.PG_PASSWORD_KEY not in raw
    text = json.dumps(raw).lower()
    for word in ('password":', 'token":', "hvs.", 'secret":'):
        assert word not in text


def test_secrets_never_print(vault_raw: dict[str, Any]) -> None:
    s = load(vault_raw)
    assert TOKEN not in repr(s) and PG_PW not in repr(s)
    assert s.vault.token is not None and s.vault.token.reveal() == TOKEN


def test_secrets_from_environment(vault_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in vault_raw.items() if k not in (S.VAULT_TOKEN_KEY, S.PG_PASSWORD_KEY)}
    s = load(raw, {"VAULT_TOKEN": "env-tok", "CE_POSTGRES_ADMIN_PASSWORD": "env-pw"})
    assert s.vault.token is not None and s.vault.token.reveal() == "env-tok"
    assert s.vault.db_admin_password is not None
    assert s.vault.db_admin_password.reveal() == "env-pw"


# ---------------------------------------------------------------- rollout


def test_phase_weights_must_end_at_100(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phaseWeights", [0, 5, 20, 50, 90]))
    assert msg.startswith("claude-enhancer:rollout.phaseWeights:")
    assert "end at 100" in msg


def test_phase_weights_must_increase(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phaseWeights", [0, 20, 5, 50, 100]))
    assert msg.startswith("claude-enhancer:rollout.phaseWeights:")
    assert "strictly increase" in msg


def test_phase_weights_wrong_length(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phaseWeights", [0, 50, 100]))
    assert msg.startswith("claude-enhancer:rollout.phaseWeights:")


def test_phase_weights_wrong_type(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phaseWeights", [0, "5", 20, 50, 100]))
    assert msg.startswith("claude-enhancer:rollout.phaseWeights: must be a list of integers")


@pytest.mark.parametrize("phase", [5, -1, 42])
def test_unknown_phase(local_raw: dict[str, Any], phase: int) -> None:
    msg = err(set_obj(local_raw, "rollout", "phase", phase))
    assert msg == f"claude-enhancer:rollout.phase: unknown phase {phase} (phases are 0..4)"


@pytest.mark.parametrize("phase", ["two", 1.5, True, None])
def test_phase_wrong_type(local_raw: dict[str, Any], phase: Any) -> None:
    msg = err(set_obj(local_raw, "rollout", "phase", phase))
    assert msg.startswith("claude-enhancer:rollout.phase: must be an integer 0..4")


def test_missing_phase_is_phase_0(local_raw: dict[str, Any]) -> None:
    # stack files carry only what differs from the defaults; phase 0 is the default
    raw = dict(local_raw)
    raw["claude-enhancer:rollout"] = json.dumps({"allowSkip": False})
    assert load(raw).rollout.phase == 0


def test_skipped_phase(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phase", 3), previous=1)
    assert msg.startswith("claude-enhancer:rollout.phase: rollout.phase jumps from 1 to 3")
    assert "next allowed is 2" in msg


def test_skip_allowed_when_overridden(local_raw: dict[str, Any]) -> None:
    raw = set_obj(set_obj(local_raw, "rollout", "phase", 3), "rollout", "allowSkip", True)
    assert load(raw, previous=1).rollout.transition == "advance"


@pytest.mark.parametrize(
    ("previous", "phase", "transition"),
    [
        (None, 0, "initial"),
        (0, 1, "advance"),
        (1, 2, "advance"),
        (3, 4, "advance"),
        (4, 0, "rollback"),
        (2, 2, "noop"),
        (2, 0, "rollback"),
    ],
)
def test_transitions(
    local_raw: dict[str, Any], previous: int | None, phase: int, transition: str
) -> None:
    s = load(set_obj(local_raw, "rollout", "phase", phase), previous=previous)
    assert s.rollout.transition == transition
    assert s.rollout.weights.canary + s.rollout.weights.stable == 100


def test_bad_previous_phase_output(local_raw: dict[str, Any]) -> None:
    msg = err(local_raw, previous=9)
    assert msg.startswith(
        "claude-enhancer:rollout.phase: the stack's previous rolloutPhase output 9"
    )


def test_bake_minutes_negative(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "bakeMinutes.2", -5))
    assert msg == "claude-enhancer:rollout.bakeMinutes.2: must be >= 0, got -5"


def test_rollout_typo_is_rejected(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "phse", 1))
    assert msg.startswith("claude-enhancer:rollout.phse: unknown setting")


def test_rollout_not_an_object(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    raw["claude-enhancer:rollout"] = "phase=2"
    assert err(raw) == "claude-enhancer:rollout: must be an object, got 'phase=2'"


def test_unknown_top_level_key(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    raw["claude-enhancer:rolout"] = "{}"
    assert err(raw).startswith("claude-enhancer:rolout: unknown setting")


# ---------------------------------------------------------------- replicas / capacity


def test_negative_replicas(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "services.api.replicas", -1))
    assert msg == "claude-enhancer:app.services.api.replicas: must be >= 1, got -1"


def test_replicas_wrong_type(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "services.agent-runtime.replicas", "three"))
    assert (
        msg
        == "claude-enhancer:app.services.agent-runtime.replicas: must be an integer, got 'three'"
    )


def test_max_replicas_below_replicas(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "app", "services.api.replicas", 4)
    msg = err(set_obj(raw, "app", "services.api.maxReplicas", 2))
    assert msg.startswith("claude-enhancer:app.services.api.maxReplicas: must be >= replicas (4)")


def test_capacity_exceeded(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "app", "services.agent-runtime.replicas", 60)
    raw = set_obj(raw, "app", "services.agent-runtime.maxReplicas", 60)
    msg = err(raw)
    assert msg.startswith(
        "claude-enhancer:app.services: blue+green at full size (phase 3) do not fit"
    )
    assert "app pool" in msg


def test_capacity_exceeded_by_small_pool(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "cluster", "pools.app", 1)
    raw = set_obj(raw, "app", "services.api.replicas", 8)
    raw = set_obj(raw, "app", "services.api.maxReplicas", 8)
    assert err(raw).startswith("claude-enhancer:app.services: blue+green at full size")


def test_limits_over_spec_budget(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "resources.limitCpuMilli", 2000))
    assert msg == "claude-enhancer:app.resources.limitCpuMilli: must be <= 1999, got 2000"
    msg = err(set_obj(local_raw, "app", "resources.limitMemoryMi", 3815))  # 4 GB = 3814.7 MiB
    assert msg == "claude-enhancer:app.resources.limitMemoryMi: must be <= 3814, got 3815"


def test_startup_budget_over_30s(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "startupFailureThreshold", 15))
    assert msg.startswith("claude-enhancer:app.startupFailureThreshold: startup budget 2s x 15")


# ---------------------------------------------------------------- secrets


def test_missing_vault_token(vault_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in vault_raw.items() if k != S.VAULT_TOKEN_KEY}
    msg = err(raw)
    assert msg.startswith("vault:token: missing Vault token")
    assert "VAULT_TOKEN" in msg and "--secret vault:token" in msg


def test_missing_postgres_password(vault_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in vault_raw.items() if k != S.PG_PASSWORD_KEY}
    msg = err(raw)
    assert msg.startswith(
        "claude-enhancer:postgresAdminPassword: missing PostgreSQL admin password"
    )
    assert "CE_POSTGRES_ADMIN_PASSWORD" in msg


# ---------------------------------------------------------------- malformed values


def test_cluster_mode_unknown(local_raw: dict[str, Any]) -> None:
    assert err(set_obj(local_raw, "cluster", "mode", "gke")) == (
        "claude-enhancer:cluster.mode: must be 'kwok' or 'existing', got 'gke'"
    )


def test_existing_mode_needs_node_names(local_raw: dict[str, Any]) -> None:
    # issue 23 defect 4: node names are no longer configured (the node groups own the nodes);
    # the old key is refused with the way out (was: "existingNodes.system: lists 0 nodes ...")
    raw = set_obj(local_raw, "cluster", "existingNodes", {"system": ["n1"]})
    assert err(raw).startswith("claude-enhancer:cluster.existingNodes: no longer used")


def test_version_must_be_string(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "canaryVersion", 5.1))
    assert msg == "claude-enhancer:app.canaryVersion: must be a non-empty string, got 5.1"


def test_version_malformed(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "app", "canaryVersion", "5.1 latest"))
    assert msg == "claude-enhancer:app.canaryVersion: malformed value '5.1 latest'"


def test_vault_address_malformed(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "address", "127.0.0.1:8200"))
    assert msg == "claude-enhancer:vault.address: must be an http(s) URL, got '127.0.0.1:8200'"


def test_vault_port_out_of_range(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "postgres.port", 70000))
    assert msg == "claude-enhancer:vault.postgres.port: must be <= 65535, got 70000"


def test_vault_ttl_order(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "tokenMaxTtlSeconds", 600))
    assert msg == "claude-enhancer:vault.tokenMaxTtlSeconds: must be >= tokenTtlSeconds"


def test_postgres_must_be_15(local_raw: dict[str, Any]) -> None:
    msg = err(
        set_obj(local_raw, "data", "postgres.image", "ghcr.io/cloudnative-pg/postgresql:16.2")
    )
    assert msg.startswith("claude-enhancer:data.postgres.image: must be a PostgreSQL 15 image")


def test_redis_needs_three_masters(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "data", "redis.masters", 1))
    assert msg == "claude-enhancer:data.redis.masters: must be >= 3, got 1"


def test_sync_replicas_bounded(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "data", "postgres.maxSyncReplicas", 3))
    assert (
        msg == "claude-enhancer:data.postgres.maxSyncReplicas: must be <= instances - 1 (2), got 3"
    )


def test_scrape_interval_malformed(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "monitoring", "scrapeInterval", "fifteen"))
    assert msg == "claude-enhancer:monitoring.scrapeInterval: malformed value 'fifteen'"


def test_bool_wrong_type(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "rollout", "allowSkip", "yes"))
    assert msg == "claude-enhancer:rollout.allowSkip: must be true or false, got 'yes'"


def test_agents_count(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    agents = json.loads(raw["claude-enhancer:agents"])[:-1]
    raw["claude-enhancer:agents"] = json.dumps(agents)
    assert err(raw) == "claude-enhancer:agents: must list 56 standard + 5 system agents, got 56 + 4"


def test_agents_duplicate(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    agents = json.loads(raw["claude-enhancer:agents"])
    agents[1]["name"] = agents[0]["name"]
    raw["claude-enhancer:agents"] = json.dumps(agents)
    assert err(raw).startswith("claude-enhancer:agents: duplicate agent names")


def test_agent_kind_unknown(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    agents = json.loads(raw["claude-enhancer:agents"])
    agents[3]["kind"] = "robot"
    raw["claude-enhancer:agents"] = json.dumps(agents)
    assert err(raw) == "claude-enhancer:agents[3].kind: must be 'standard' or 'system', got 'robot'"


def test_agents_missing(local_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in local_raw.items() if k != "claude-enhancer:agents"}
    assert err(raw).startswith("claude-enhancer:agents: required value is missing")


# ---------------------------------------------------------------- vault.enabled / passwords


def test_stack_switches() -> None:
    local = load(with_secrets(load_stack_raw("local")))
    assert local.vault.enabled is True and local.vault.provider == "hvac"
    assert local.passwords.generator == "builtin"
    assert S.required_plugins(local) == []  # nothing this machine cannot build
    for stack in ("staging", "prod"):
        s = load(with_secrets(load_stack_raw(stack)))
        assert s.vault.enabled is True and s.passwords.generator == "random"
        assert s.vault.provider == "pulumi-vault"


def test_vault_disabled_needs_no_secrets(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "enabled", False)
    raw = {k: v for k, v in raw.items() if k not in (S.VAULT_TOKEN_KEY, S.PG_PASSWORD_KEY)}
    s = load(raw)
    assert s.vault.token is None and s.vault.db_admin_password is None


def test_vault_provider_unknown(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "provider", "vault-cli"))
    assert msg == (
        "claude-enhancer:vault.provider: must be one of pulumi-vault, hvac, got 'vault-cli'"
    )


def test_vault_rotation_periods_from_config(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "postgres.rotationPeriodSeconds", 600)
    raw = set_obj(raw, "vault", "redis.rotationPeriodSeconds", 900)
    v = load(raw).vault
    assert (v.rotation_period, v.redis_rotation_period) == (600, 900)
    msg = err(set_obj(local_raw, "vault", "redis.rotationPeriodSeconds", 60))
    assert msg == "claude-enhancer:vault.redis.rotationPeriodSeconds: must be >= 300, got 60"


def test_redis_admin_password_from_env_or_generated(local_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in local_raw.items() if k != S.REDIS_PASSWORD_KEY}
    assert load(raw).vault.redis_admin_password is None  # the generated one is used then
    got = load(raw, {S.REDIS_PASSWORD_ENV: "r-pw"}).vault.redis_admin_password
    assert got is not None and got.reveal() == "r-pw"
    assert "r-pw" not in repr(load(raw, {S.REDIS_PASSWORD_ENV: "r-pw"}).vault)


def test_defaults_are_vault_and_random(vault_raw: dict[str, Any]) -> None:
    raw = {k: v for k, v in vault_raw.items() if k != "claude-enhancer:passwords"}
    vault = json.loads(raw["claude-enhancer:vault"])
    del vault["enabled"]
    raw["claude-enhancer:vault"] = json.dumps(vault)
    s = load(raw)
    assert s.vault.enabled is True and s.passwords.generator == "random"


def test_vault_disabled_ignores_env_secrets_and_needs_none(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "enabled", False)
    raw = {k: v for k, v in raw.items() if k not in (S.VAULT_TOKEN_KEY, S.PG_PASSWORD_KEY)}
    assert load(raw).vault.token is None
    assert load(raw, {"VAULT_TOKEN": "t"}).vault.token is None


def test_vault_enabled_wrong_type(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "enabled", "sometimes"))
    assert msg == "claude-enhancer:vault.enabled: must be true or false, got 'sometimes'"


def test_vault_enabled_number(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "vault", "enabled", 1))
    assert msg == "claude-enhancer:vault.enabled: must be true or false, got 1"


def test_vault_enabled_string_true_requires_token(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "enabled", "true")
    raw = {k: v for k, v in raw.items() if k != S.VAULT_TOKEN_KEY}
    assert err(raw).startswith("vault:token: missing Vault token")


def test_generator_unknown(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "passwords", "generator", "dice"))
    assert msg == "claude-enhancer:passwords.generator: must be 'random' or 'builtin', got 'dice'"


def test_generator_wrong_type(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "passwords", "generator", 7))
    assert msg == "claude-enhancer:passwords.generator: must be a non-empty string, got 7"


def test_passwords_typo(local_raw: dict[str, Any]) -> None:
    msg = err(set_obj(local_raw, "passwords", "generatr", "random"))
    assert msg == "claude-enhancer:passwords.generatr: unknown setting (known: generator)"


def test_passwords_not_an_object(local_raw: dict[str, Any]) -> None:
    raw = dict(local_raw)
    raw["claude-enhancer:passwords"] = "builtin"
    assert err(raw) == "claude-enhancer:passwords: must be an object, got 'builtin'"


# ---------------------------------------------------------------- plugin preflight

VERSIONS = {"vault": "7.14.0", "random": "4.21.4"}
VAULT_MSG = (
    "claude-enhancer:vault.enabled=true needs the Pulumi resource plugin vault v7.14.0, "
    "which is not installed (no {home}/plugins/resource-vault-v7.14.0; "
    "see docs/toolchain-notes.md: not buildable here); "
    "set claude-enhancer:vault.provider=hvac (or claude-enhancer:vault.enabled=false) for this stack"
)
RANDOM_MSG = (
    "claude-enhancer:passwords.generator=random needs the Pulumi resource plugin random v4.21.4, "
    "which is not installed (no {home}/plugins/resource-random-v4.21.4; "
    "see docs/toolchain-notes.md: not buildable here); "
    "set claude-enhancer:passwords.generator=builtin for this stack"
)


def _with(vault_raw: dict[str, Any], generator: str) -> S.Settings:
    return load(set_obj(vault_raw, "passwords", "generator", generator))


def test_sdk_plugin_versions() -> None:
    assert S.sdk_plugin_version("vault") == "7.14.0"
    assert S.sdk_plugin_version("random") == "4.21.4"


def test_required_plugins(vault_raw: dict[str, Any], local_raw: dict[str, Any]) -> None:
    assert [n.plugin for n in S.required_plugins(_with(vault_raw, "random"))] == [
        "vault",
        "random",
    ]
    assert [n.plugin for n in S.required_plugins(_with(vault_raw, "builtin"))] == ["vault"]
    assert S.required_plugins(load(local_raw)) == []


def test_preflight_without_pulumi_home_checks_nothing(vault_raw: dict[str, Any]) -> None:
    S.check_plugins(_with(vault_raw, "random"), None, VERSIONS)
    S.check_plugins(_with(vault_raw, "random"), "", VERSIONS)


def test_preflight_vault_missing(vault_raw: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "plugins" / "resource-kubernetes-v4.25.0").mkdir(parents=True)
    with pytest.raises(S.SettingsError) as e:
        S.check_plugins(_with(vault_raw, "builtin"), str(tmp_path), VERSIONS)
    assert str(e.value) == VAULT_MSG.format(home=tmp_path)


def test_preflight_random_missing(vault_raw: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "plugins" / "resource-vault-v7.14.0").mkdir(parents=True)
    with pytest.raises(S.SettingsError) as e:
        S.check_plugins(_with(vault_raw, "random"), str(tmp_path), VERSIONS)
    assert str(e.value) == RANDOM_MSG.format(home=tmp_path)


def test_preflight_both_missing(vault_raw: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(S.SettingsError) as e:
        S.check_plugins(_with(vault_raw, "random"), str(tmp_path), VERSIONS)
    assert str(e.value) == VAULT_MSG.format(home=tmp_path) + "\n" + RANDOM_MSG.format(home=tmp_path)


def test_preflight_wrong_version_or_partial_install(
    vault_raw: dict[str, Any], tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "resource-vault-v7.13.0").mkdir(parents=True)  # other version
    (plugins / "resource-random-v4.21.4").mkdir()
    (plugins / "resource-random-v4.21.4.partial").touch()  # interrupted install
    with pytest.raises(S.SettingsError) as e:
        S.check_plugins(_with(vault_raw, "random"), str(tmp_path), VERSIONS)
    assert str(e.value).startswith("claude-enhancer:vault.enabled=true needs")
    assert "resource-random-v4.21.4;" in str(e.value)


def test_preflight_passes_when_installed(vault_raw: dict[str, Any], tmp_path: Path) -> None:
    for d in ("resource-vault-v7.14.0", "resource-random-v4.21.4"):
        (tmp_path / "plugins" / d).mkdir(parents=True)
    S.check_plugins(_with(vault_raw, "random"), str(tmp_path), VERSIONS)
    # versions default to the installed SDKs' pulumi-plugin.json
    S.check_plugins(_with(vault_raw, "random"), str(tmp_path))


def test_preflight_local_stack_needs_no_extra_plugin(
    local_raw: dict[str, Any], tmp_path: Path
) -> None:
    S.check_plugins(load(local_raw), str(tmp_path), VERSIONS)  # empty PULUMI_HOME is fine


def test_from_pulumi_runs_preflight(
    monkeypatch: pytest.MonkeyPatch, vault_raw: dict[str, Any], tmp_path: Path
) -> None:
    from components import state
    from components.settings import source

    # from_pulumi reads the engine's config through its own module (components/settings/source.py)
    monkeypatch.setattr(source, "raw_from_pulumi", lambda: vault_raw)
    monkeypatch.setattr(state, "_under_mocks", lambda: False)
    # the cluster preflight is not part of from_pulumi (components/preflight.py, its own tests)
    offline = {"PULUMI_HOME": str(tmp_path), "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
    with pytest.raises(S.SettingsError, match=r"^claude-enhancer:vault\.enabled=true needs"):
        S.from_pulumi(offline, lambda: None)
    # a CLI that may download plugins (a user-installed Pulumi) fetches the missing one itself
    assert S.from_pulumi({"PULUMI_HOME": str(tmp_path)}, lambda: None).vault.enabled
    monkeypatch.setattr(state, "_under_mocks", lambda: True)
    assert S.from_pulumi(offline, lambda: None).vault.enabled
