from __future__ import annotations

from policy_fixtures import UNKNOWN_NUMBER

from policies.lib.props import plain
from policies.rules import random_password_strength as rule

T = "random:index/randomPassword:RandomPassword"


def test_random_password() -> None:
    assert rule.check(T, plain({"length": 32, "special": True}), {}) == []
    assert rule.check(T, plain({"length": 16}), {}) == ["length is 16; must be at least 24"]
    assert rule.check(T, plain({"length": 32}), {"minLength": 40}) == [
        "length is 32; must be at least 40"
    ]
    assert rule.check(T, plain({"length": UNKNOWN_NUMBER}), {}) == []
    assert rule.check(T, {}, {}) == ["length is unset; must be at least 24"]
    assert rule.check("random:index/randomString:RandomString", plain({"length": 4}), {}) == []
