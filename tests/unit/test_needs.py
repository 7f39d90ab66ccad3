"""Which platform parts a stack needs (components/needs.py)."""

from __future__ import annotations

from components import needs
from tests.unit.conftest import load_stack_raw, set_obj


def test_local_stack_runs_the_cnpg_operator_on_the_platform() -> None:
    parts = needs.platform_parts(load_stack_raw("local"))
    assert parts[: len(needs.BASE_PARTS)] == list(needs.BASE_PARTS)
    assert "cnpg" in parts and "redisop" in parts
    assert "vault" not in parts  # local: vault.enabled false


def test_existing_cluster_stacks_need_no_local_operator() -> None:
    raw = load_stack_raw("local")
    assert "cnpg" not in needs.platform_parts(set_obj(raw, "cluster", "mode", "existing"))
