"""Both Vault back-ends register the same objects with the same inputs (issue 12).

The local stack writes Vault through the hvac dynamic provider, staging/prod through
pulumi-vault; this keeps the two in step: same kinds, names and inputs (the hvac resources add
only their connection), and the policy pack maps every dynamic type back to its pulumi-vault kind.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import vault_hvac
from components import vault_spec as spec
from policies.lib.vault import canonical_type
from tests.unit.conftest import Capture, program_capture


def vault_objects(cap: Capture) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in cap.resources.values():
        kind = canonical_type(r.typ)
        if kind.startswith("vault:"):
            inputs = {
                k: v for k, v in r.inputs.items() if k not in (*vault_hvac.CONNECTION, "__provider")
            }
            out[(kind, r.name)] = inputs
    return out


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_both_paths_register_the_same_vault_objects(stack: str) -> None:
    sdk = vault_objects(
        program_capture(stack, 0, vault=True, generator="builtin", vault_provider="pulumi-vault")
    )
    dyn = vault_objects(
        program_capture(stack, 0, vault=True, generator="builtin", vault_provider="hvac")
    )
    assert sorted(sdk) == sorted(dyn)
    assert {k for k, _ in sdk} == set(spec.KINDS)
    for key in sdk:
        assert sdk[key] == dyn[key], key


def test_every_kind_has_a_dynamic_type_the_policies_map_back() -> None:
    for kind in spec.KINDS:
        assert canonical_type(vault_hvac.dynamic_type(kind)) == kind
        assert vault_hvac.RESOURCE_CLASSES[kind]._resource_type_name == vault_hvac.dynamic_type(
            kind
        ).removeprefix("pulumi-python:")
    assert set(vault_hvac.HANDLERS) == set(spec.KINDS)
    assert canonical_type("kubernetes:core/v1:Secret") == "kubernetes:core/v1:Secret"
    assert canonical_type("pulumi-python:dynamic/passwords:GeneratedPassword") == (
        "pulumi-python:dynamic/passwords:GeneratedPassword"
    )
