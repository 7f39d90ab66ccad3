"""The stacks CI previews and what each one needs: the one table the workflows and scripts share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    """A repository secret, and the environment variable the workflow hands it to the job as."""

    env: str
    repo_secret: str
    purpose: str


@dataclass(frozen=True)
class StackCi:
    name: str
    # Policy-pack config `environment` (prod-min-replicas enforces only on production names).
    environment: str
    # "local": the loopback platform started in the job; "remote": the stack's real backend + cluster.
    platform: str
    secrets: tuple[Secret, ...] = ()


def _remote(name: str) -> StackCi:
    prefix = name.upper()
    return StackCi(
        name=name,
        environment=name,
        platform="remote",
        secrets=(
            Secret(
                "PULUMI_ACCESS_TOKEN",
                f"{prefix}_PULUMI_ACCESS_TOKEN",
                "state backend (Pulumi Cloud)",
            ),
            Secret(
                "KUBECONFIG_DATA",
                f"{prefix}_KUBECONFIG",
                "kubeconfig of the cluster (file contents)",
            ),
            Secret("VAULT_TOKEN", f"{prefix}_VAULT_TOKEN", "Vault token for pulumi-vault"),
        ),
    )


STACKS: dict[str, StackCi] = {
    "local": StackCi(name="local", environment="local", platform="local"),
    "staging": _remote("staging"),
    "prod": _remote("prod"),
}


def get(name: str) -> StackCi:
    try:
        return STACKS[name]
    except KeyError:
        raise SystemExit(f"unknown stack {name!r}; CI knows {', '.join(STACKS)}") from None
