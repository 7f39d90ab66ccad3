"""A credential is generated with RandomPassword, never RandomString (stack: judged by resource name)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.lib.rule import Rule, StackResource
from policies.rules.no_plaintext_secrets import RULE as SECRETS_RULE

RANDOM_STRING = "random:index/randomString:RandomString"

RULE = Rule(
    name="random-string-not-secret",
    description="random.RandomString results are plain outputs (state, logs, stack outputs): a RandomString "
    "named like a credential (password, token, secret, key...) must be a random.RandomPassword.",
    severity="high",
    scope="stack",
    frameworks={
        "SOC2": ["CC6.1"],
        "ISO27001": ["A.5.17", "A.8.24"],
        "OWASP": ["A02:2021", "A07:2021"],
    },
    remediation="Use random.RandomPassword (its result is a Pulumi secret) with length >= 24, or wrap the "
    "value with pulumi.Output.secret and add it to additional_secret_outputs.",
    resource_types=(RANDOM_STRING,),
    tags=("secrets",),
)


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    # the same name rule as no-plaintext-secrets: the name's last word says what the value is
    key_re = re.compile(str(SECRETS_RULE.defaults()["secretKeyPattern"]))
    return sorted(
        f'RandomString "{r.name}" is named like a credential but its result is not a secret; use RandomPassword'
        for r in resources
        if r.type == RANDOM_STRING and key_re.search(r.name)
    )
