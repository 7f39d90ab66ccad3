"""Previous-phase lookup and 'validate before any resource' behaviour."""

from __future__ import annotations

import json
import runpy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import settings as S
from components import state
from tests.unit.conftest import ROOT, Capture, load_stack_raw, run_mocked, set_obj, with_secrets


def test_env_override_wins() -> None:
    def boom(cmd: Sequence[str]) -> tuple[int, str, str]:
        raise AssertionError("must not run")

    assert state.previous_phase({"CE_PREVIOUS_PHASE": "2"}, runner=boom, stack="s") == 2
    assert state.previous_phase({"CE_PREVIOUS_PHASE": "none"}, runner=boom, stack="s") is None
    assert state.previous_phase({"CE_PREVIOUS_PHASE": ""}, runner=boom, stack="s") is None


def test_env_override_malformed() -> None:
    with pytest.raises(state.StateError, match="CE_PREVIOUS_PHASE"):
        state.previous_phase({"CE_PREVIOUS_PHASE": "two"}, stack="s")


def test_reads_stack_output() -> None:
    seen: list[list[str]] = []

    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(cmd))
        return 0, json.dumps({"rolloutPhase": 3, "canaryWeight": 50}), ""

    assert state.previous_phase({}, runner=runner, stack="prod") == 3
    assert seen == [["pulumi", "stack", "output", "--json", "--stack", "prod"]]


def test_fresh_stack_has_no_previous_phase() -> None:
    assert state.previous_phase({}, runner=lambda c: (0, "{}\n", ""), stack="s") is None
    assert state.previous_phase({}, runner=lambda c: (0, "", ""), stack="s") is None


def test_missing_stack_is_none_other_errors_raise() -> None:
    assert (
        state.previous_phase(
            {}, runner=lambda c: (255, "", "error: no stack named 'x' found"), stack="x"
        )
        is None
    )
    with pytest.raises(state.StateError, match="exited 1"):
        state.previous_phase(
            {}, runner=lambda c: (1, "", "error: passphrase must be set"), stack="x"
        )


def test_missing_cli_is_a_clear_error() -> None:
    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        raise FileNotFoundError(2, "No such file or directory", "pulumi")

    with pytest.raises(state.StateError, match="set CE_PREVIOUS_PHASE to override"):
        state.previous_phase({}, runner=runner, stack="x")


def test_under_mocks_no_subprocess() -> None:
    assert state.previous_phase({}, stack="s", under_mocks=lambda: True) is None


def test_mock_detection() -> None:
    pulumi.runtime.set_mocks(Capture(), preview=False)
    assert state._under_mocks() is True


def _run_main(raw: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Capture:
    for k in ("VAULT_TOKEN", "CE_POSTGRES_ADMIN_PASSWORD", "CE_PREVIOUS_PHASE", "PULUMI_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    pulumi.runtime.set_all_config(raw, [S.VAULT_TOKEN_KEY, S.PG_PASSWORD_KEY])
    try:
        return run_mocked(lambda: runpy.run_path(str(ROOT / "__main__.py")))
    finally:
        pulumi.runtime.set_all_config({})


def test_main_runs_with_valid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    cap = _run_main(with_secrets(load_stack_raw("local")), {}, monkeypatch)
    assert any(
        r.typ == "kubernetes:networking.istio.io/v1beta1:VirtualService"
        for r in cap.resources.values()
    )


def test_main_bad_config_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = set_obj(with_secrets(load_stack_raw("local")), "rollout", "phase", 7)
    cap = Capture()
    with pytest.raises(pulumi.RunError, match=r"^claude-enhancer:rollout\.phase: unknown phase 7"):
        cap = _run_main(raw, {}, monkeypatch)
    assert cap.resources == {}


def test_main_skipped_phase_uses_previous_output(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = set_obj(with_secrets(load_stack_raw("local")), "rollout", "phase", 2)
    with pytest.raises(pulumi.RunError, match="jumps from 0 to 2"):
        _run_main(raw, {"CE_PREVIOUS_PHASE": "0"}, monkeypatch)


def test_main_unknown_key_from_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = with_secrets(load_stack_raw("local"))
    raw["claude-enhancer:rolloutt"] = "{}"
    with pytest.raises(pulumi.RunError, match=r"^claude-enhancer:rolloutt: unknown setting"):
        _run_main(raw, {}, monkeypatch)


def test_main_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = set_obj(with_secrets(load_stack_raw("local")), "vault", "enabled", True)
    raw = {k: v for k, v in raw.items() if k != S.VAULT_TOKEN_KEY}
    with pytest.raises(pulumi.RunError, match=r"^vault:token: missing"):
        _run_main(raw, {}, monkeypatch)
    cap = _run_main(raw, {"VAULT_TOKEN": "t"}, monkeypatch)
    assert cap.resources


def test_main_without_vault_needs_no_vault_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = set_obj(load_stack_raw("local"), "vault", "enabled", False)  # no token / password
    cap = _run_main(raw, {}, monkeypatch)
    assert cap.resources
    assert not [
        r
        for r in cap.resources.values()
        if r.typ.startswith(("vault:", "pulumi:providers:vault", "pulumi-python:dynamic/vault"))
    ]


def test_main_preflight_skipped_under_mocks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # PULUMI_HOME without any plugin: the real engine would be refused, mocks need none
    raw = set_obj(with_secrets(load_stack_raw("local")), "vault", "provider", "pulumi-vault")
    cap = _run_main(raw, {"PULUMI_HOME": str(tmp_path)}, monkeypatch)
    assert cap.of_type("pulumi:providers:vault")


def test_state_error_becomes_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = with_secrets(load_stack_raw("local"))
    with pytest.raises(
        pulumi.RunError, match=r"^claude-enhancer:rollout\.phase: CE_PREVIOUS_PHASE"
    ):
        _run_main(raw, {"CE_PREVIOUS_PHASE": "two"}, monkeypatch)


def _checkpoint(phase: object) -> dict[str, Any]:
    outputs = {} if phase is None else {"rolloutPhase": phase}
    return {
        "version": 3,
        "checkpoint": {
            "stack": "organization/claude-enhancer/s",
            "latest": {"resources": [{"type": "pulumi:pulumi:Stack", "outputs": outputs}]},
        },
    }


@pytest.mark.parametrize("layout", ["project", "legacy", "gzip"])
def test_file_backend_checkpoint_read_without_a_cli(tmp_path: Path, layout: str) -> None:
    """A file backend's checkpoint answers directly: no second `pulumi` inside every `up`."""
    import gzip

    base = tmp_path / ".pulumi" / "stacks"
    d = base / "claude-enhancer" if layout != "legacy" else base
    d.mkdir(parents=True)
    body = json.dumps(_checkpoint(2)).encode()
    if layout == "gzip":
        (d / "s.json.gz").write_bytes(gzip.compress(body))
    else:
        (d / "s.json").write_bytes(body)

    def boom(cmd: Sequence[str]) -> tuple[int, str, str]:
        raise AssertionError(f"must not run {cmd}")

    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}"}
    got = state.previous_phase(env, runner=boom, stack="s", project="claude-enhancer")
    assert got == 2


def test_file_backend_checkpoint_edge_cases(tmp_path: Path) -> None:
    d = tmp_path / ".pulumi" / "stacks" / "p"
    d.mkdir(parents=True)
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}"}
    seen: list[list[str]] = []

    def runner(cmd: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(cmd))
        return 0, json.dumps({"rolloutPhase": 1}), ""

    # no checkpoint yet (another backend layout, or a stack never updated): the CLI answers
    assert state.previous_phase(env, runner=runner, stack="s", project="p") == 1
    assert seen and seen[0][:3] == ["pulumi", "stack", "output"]
    (d / "s.json").write_text(json.dumps(_checkpoint(None)))
    assert state.previous_phase(env, runner=runner, stack="s", project="p") is None
    (d / "s.json").write_text(json.dumps(_checkpoint("x")))
    with pytest.raises(state.StateError, match="not an integer"):
        state.previous_phase(env, runner=runner, stack="s", project="p")
    (d / "s.json").write_text("{not json")
    with pytest.raises(state.StateError, match="invalid checkpoint JSON"):
        state.previous_phase(env, runner=runner, stack="s", project="p")
    assert len(seen) == 1
