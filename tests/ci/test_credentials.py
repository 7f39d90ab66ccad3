"""ci.credentials: absent secrets are named plainly in the summary; values never reach the output."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ci import credentials
from ci.stacks import STACKS

TOKEN = "pul-0123456789abcdef"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://prod.example:6443
  name: prod
users:
- name: ci
  user:
    client-certificate-data: Q0xJRU5ULUNFUlQ=
    client-key-data: "S0VZLURBVEE="
    token: sa-token-abcdef
"""


def _outputs(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        key, delim = lines[i].split("<<", 1)
        end = lines.index(delim, i + 1)
        out[key] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return out


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        **values,
    }


def test_absent_secrets_are_named_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(tmp_path, PULUMI_ACCESS_TOKEN=TOKEN)
    assert credentials.main(["check", "--stack", "staging"], env=env) == 0
    summary = (tmp_path / "summary").read_text()
    assert "`staging`: NOT previewed in this run" in summary
    assert "`STAGING_KUBECONFIG`" in summary and "`STAGING_VAULT_TOKEN`" in summary
    assert "STAGING_PULUMI_ACCESS_TOKEN" not in summary  # that one is set
    outputs = _outputs(tmp_path / "out")
    assert outputs["configured"] == "false"
    assert outputs["summary"].strip() == summary.strip()
    printed = capsys.readouterr().out
    assert printed.startswith("::warning title=staging not previewed::")
    assert TOKEN not in summary + printed + str(outputs)


def test_all_secrets_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(
        tmp_path, PULUMI_ACCESS_TOKEN=TOKEN, KUBECONFIG_DATA=KUBECONFIG, VAULT_TOKEN="hvs.secret"
    )
    credentials.main(["check", "--stack", "prod"], env=env)
    assert _outputs(tmp_path / "out")["configured"] == "true"
    summary = (tmp_path / "summary").read_text()
    assert "previewed against its real backend" in summary
    everything = summary + capsys.readouterr().out
    for value in (TOKEN, "hvs.secret", "sa-token-abcdef"):
        assert value not in everything


def test_whitespace_is_not_a_secret(tmp_path: Path) -> None:
    env = _env(tmp_path, PULUMI_ACCESS_TOKEN=" ", KUBECONFIG_DATA=KUBECONFIG, VAULT_TOKEN="x")
    credentials.main(["check", "--stack", "prod"], env=env)
    assert _outputs(tmp_path / "out")["configured"] == "false"


def test_local_needs_no_secret(tmp_path: Path) -> None:
    credentials.main(["check", "--stack", "local"], env=_env(tmp_path))
    assert _outputs(tmp_path / "out")["configured"] == "true"
    assert "local platform" in (tmp_path / "summary").read_text()


def test_every_remote_stack_needs_a_backend_a_cluster_and_vault() -> None:
    for name in ("staging", "prod"):
        assert {s.env for s in STACKS[name].secrets} == {
            "PULUMI_ACCESS_TOKEN",
            "KUBECONFIG_DATA",
            "VAULT_TOKEN",
        }
        assert all(s.repo_secret.startswith(name.upper() + "_") for s in STACKS[name].secrets)


def test_kubeconfig_written_private_and_its_credentials_masked_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"GITHUB_ENV": str(tmp_path / "env"), "KUBECONFIG_DATA": KUBECONFIG}
    assert credentials.main(["kubeconfig", "--dest", str(tmp_path / "kube")], env=env) == 0
    path = tmp_path / "kube" / "kubeconfig"
    assert path.read_text() == KUBECONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        "KUBECONFIG<<" in (tmp_path / "env").read_text()
        and str(path) in (tmp_path / "env").read_text()
    )
    lines = capsys.readouterr().out.splitlines()
    masks = {line.removeprefix("::add-mask::") for line in lines if line.startswith("::add-mask::")}
    assert masks == {"Q0xJRU5ULUNFUlQ=", "S0VZLURBVEE=", "sa-token-abcdef"}
    # the masks come before anything else is printed
    assert all(line.startswith("::add-mask::") for line in lines[: len(masks)])


def test_empty_kubeconfig_is_an_error(tmp_path: Path) -> None:
    assert (
        credentials.main(["kubeconfig", "--dest", str(tmp_path)], env={"KUBECONFIG_DATA": ""}) == 2
    )
