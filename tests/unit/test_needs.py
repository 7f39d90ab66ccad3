"""components.needs: what a stack needs from the local platform (issue 8: build only that)."""

from __future__ import annotations

import pytest

from components import needs, settings
from tests.unit.conftest import set_obj


def test_local_stack_needs_vault_and_the_redis_it_rotates() -> None:
    raw = needs.load_stack_raw("local")
    assert settings.vault_enabled(raw) is True  # through the hvac provider (issue 12)
    assert needs.platform_parts(raw) == [
        *needs.BASE_PARTS,
        "vault",
        "redis",
        "cnpg",
        "redisop",
        "promop",
        "istiod",
    ]


def test_without_vault_neither_vault_nor_redis() -> None:
    raw = set_obj(needs.load_stack_raw("local"), "vault", "enabled", False)
    assert needs.platform_parts(raw) == [*needs.BASE_PARTS, "cnpg", "redisop", "promop", "istiod"]


def test_vault_defaults_to_enabled_like_the_program() -> None:
    raw = needs.load_stack_raw("prod")
    assert "vault" in needs.platform_parts(raw)


def test_unknown_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert needs.main(["--stack", "nope"]) == 1
    assert "no stack file" in capsys.readouterr().out


def test_cli_prints_one_part_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert needs.main(["--stack", "local"]) == 0
    assert capsys.readouterr().out.split() == [
        *needs.BASE_PARTS,
        "vault",
        "redis",
        "cnpg",
        "redisop",
        "promop",
        "istiod",
    ]


def test_kwok_stacks_run_the_real_operators_existing_clusters_bring_their_own() -> None:
    raw = needs.load_stack_raw("local")
    assert needs.platform_parts(raw)[-4:-1] == ["cnpg", "redisop", "promop"]
    assert "cnpg" not in needs.platform_parts(set_obj(raw, "cluster", "mode", "existing"))
    assert "redisop" not in needs.platform_parts(needs.load_stack_raw("prod"))
    assert "promop" not in needs.platform_parts(needs.load_stack_raw("prod"))


def test_sidecar_injector_only_where_sidecars_are_injected() -> None:
    """istiod injects with the CNI template (mesh.dataplane: cni); ambient injects nothing, and
    an existing cluster brings its own Istio."""
    raw = needs.load_stack_raw("local")
    assert needs.platform_parts(raw)[-1] == "istiod"
    assert "istiod" not in needs.platform_parts(set_obj(raw, "mesh", "dataplane", "ambient"))
    assert "istiod" not in needs.platform_parts(set_obj(raw, "cluster", "mode", "existing"))
