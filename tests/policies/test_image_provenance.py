from __future__ import annotations

import pytest
from policy_fixtures import DEPLOYMENT, UNKNOWN_STRING, container, pod_spec, wrap_workload

from policies.lib.props import plain
from policies.rules import image_provenance as rule

DIGEST = "sha256:" + "a" * 64


def run(image: object, config: dict | None = None) -> list[str]:
    props = plain(wrap_workload("Deployment", pod_spec(containers=[container(image=image)])))
    return rule.check(DEPLOYMENT, props, config or {})


@pytest.mark.parametrize(
    "image",
    [
        "registry.claude-enhancer.internal/claude-enhancer/app:5.1.0",
        f"registry.claude-enhancer.internal/claude-enhancer/app@{DIGEST}",
        f"registry.claude-enhancer.internal/claude-enhancer/app:5.1.0@{DIGEST}",
        "quay.io/opstree/redis:v7.0.15",
        "ghcr.io/cloudnative-pg/postgresql:15.6",
    ],
)
def test_compliant(image: str) -> None:
    assert run(image) == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "registry.claude-enhancer.internal/app",
            [
                'container "app": image "registry.claude-enhancer.internal/app" must be pinned by tag or digest'
            ],
        ),
        (
            "quay.io/opstree/redis",
            ['container "app": image "quay.io/opstree/redis" must be pinned by tag or digest'],
        ),
        (
            "quay.io/opstree/redis:latest",
            ['container "app": image "quay.io/opstree/redis:latest" must not use the latest tag'],
        ),
        # whole public registries are no provenance: Docker Hub's official images, any ghcr.io user
        (
            "postgres:15.6",
            [
                'container "app": image "postgres:15.6" is not from an allowed registry (docker.io/library/postgres)'
            ],
        ),
        (
            "ghcr.io/someone/miner:1.0",
            [
                'container "app": image "ghcr.io/someone/miner:1.0" is not from an allowed registry (ghcr.io/someone/miner)'
            ],
        ),
        (
            "evil.example.com/app:1.0",
            [
                'container "app": image "evil.example.com/app:1.0" is not from an allowed '
                "registry (evil.example.com/app)"
            ],
        ),
        (
            "someuser/app:1.0",
            [
                'container "app": image "someuser/app:1.0" is not from an allowed registry (docker.io/someuser/app)'
            ],
        ),
        (
            "quay.io/opstree/app@sha256:abc",
            [
                'container "app": image "quay.io/opstree/app@sha256:abc" has a malformed digest '
                "(want @sha256:<64 hex>)"
            ],
        ),
        ("", ['container "app": image must be set']),
        (None, ['container "app": image must be set']),
    ],
)
def test_violations(image: object, expected: list[str]) -> None:
    assert run(image) == expected


def test_registry_with_port() -> None:
    assert run("localhost:5000/app:1", {"allowedRegistries": ["localhost:5000"]}) == []
    assert rule.parse_image("localhost:5000/app:1") == ("localhost:5000", "app", "1", None)


def test_require_digest() -> None:
    assert run("quay.io/opstree/redis:v7.0.15", {"requireDigest": True}) == [
        'container "app": image "quay.io/opstree/redis:v7.0.15" must be pinned by digest'
    ]


def test_a_bare_public_registry_in_config_admits_nothing() -> None:
    assert (
        run("quay.io/anyone/app:1.0", {"allowedRegistries": ["quay.io", "docker.io/library"]}) != []
    )


def test_allowed_registries_config() -> None:
    assert run("postgres:15.6", {"allowedRegistries": ["registry.claude-enhancer.internal"]}) == [
        'container "app": image "postgres:15.6" is not from an allowed registry (docker.io/library/postgres)'
    ]


def test_unknown_and_missing() -> None:
    assert run(UNKNOWN_STRING) == []
    assert rule.check(DEPLOYMENT, {}, {}) == []
    assert (
        rule.check(
            DEPLOYMENT, plain({"spec": {"template": {"spec": {"containers": UNKNOWN_STRING}}}}), {}
        )
        == []
    )
