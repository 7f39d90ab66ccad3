from __future__ import annotations

import pytest
from policy_fixtures import (
    DEPLOYMENT,
    UNKNOWN_OBJECT,
    UNKNOWN_STRING,
    container,
    pod_spec,
    wrap_workload,
)

from policies.lib.props import parse_quantity, plain
from policies.rules import resource_budget as rule


def run(resources: object, config: dict | None = None) -> list[str]:
    props = plain(
        wrap_workload("Deployment", pod_spec(containers=[container(resources=resources)]))
    )
    return rule.check(DEPLOYMENT, props, config or {})


def test_compliant() -> None:
    assert (
        run(
            {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": 1.8, "memory": "2.8Gi"},
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            {"requests": {"cpu": "1", "memory": "1Gi"}},
            [
                'container "app": resources.limits.cpu must be set',
                'container "app": resources.limits.memory must be set',
            ],
        ),
        (
            {"limits": {"cpu": "1", "memory": "1Gi"}},
            [
                'container "app": resources.requests.cpu must be set',
                'container "app": resources.requests.memory must be set',
            ],
        ),
        (
            {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
            ['container "app": resources.limits.cpu 2 must be below 2'],
        ),
        (
            {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}},
            ['container "app": resources.limits.memory 4Gi must be below 4Gi'],
        ),
        (
            {"requests": {"cpu": "1", "memory": "5000M"}, "limits": {"cpu": "1", "memory": "3Gi"}},
            [
                'container "app": resources.requests.memory 5000M must be below 4Gi',
                'container "app": resources.requests.memory must not exceed resources.limits.memory',
            ],
        ),
        (
            {"requests": {"cpu": "lots", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            ['container "app": resources.requests.cpu "lots" is not a valid quantity'],
        ),
        (
            None,
            [
                'container "app": resources.requests.cpu must be set',
                'container "app": resources.requests.memory must be set',
                'container "app": resources.limits.cpu must be set',
                'container "app": resources.limits.memory must be set',
            ],
        ),
    ],
)
def test_violations(resources: object, expected: list[str]) -> None:
    assert run(resources) == expected


def test_configurable_budget() -> None:
    res = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert run(res, {"maxCpu": "500m"}) == [
        'container "app": resources.requests.cpu 1 must be below 500m',
        'container "app": resources.limits.cpu 1 must be below 500m',
    ]


def test_quantities() -> None:
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2.8Gi") == pytest.approx(2.8 * 2**30)
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("x") is None
    assert parse_quantity(UNKNOWN_STRING) is None


def test_unknown_and_missing() -> None:
    assert run(UNKNOWN_OBJECT) == []
    assert (
        run({"requests": UNKNOWN_OBJECT, "limits": {"cpu": UNKNOWN_STRING, "memory": "1Gi"}}) == []
    )
    assert rule.check(DEPLOYMENT, {}, {}) == []
