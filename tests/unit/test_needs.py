"""components.needs: the local-platform parts a stack's config needs."""

from __future__ import annotations

from components import needs
from tests.unit.conftest import load_stack_raw, set_obj


def test_local_stack_needs_vault_and_the_redis_it_rotates() -> None:
    parts = needs.platform_parts(load_stack_raw("local"))
    assert parts == [*needs.BASE_PARTS, "vault", "redis"]


def test_without_vault_neither_vault_nor_redis() -> None:
    raw = set_obj(load_stack_raw("local"), "vault", "enabled", False)
    assert needs.platform_parts(raw) == list(needs.BASE_PARTS)
