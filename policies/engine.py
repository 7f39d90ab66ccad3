"""Run the rules over plain resources without the Pulumi engine (tests, report, tools).

A "resource" here is a dict ``{"type": ..., "name": ..., "urn": ..., "props": {...}}``.
``config`` maps rule name -> rule config (as in a policy-pack config file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.lib.props import plain
from policies.lib.rule import StackResource
from policies.rules import ALL


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    urn: str = ""
    resource_type: str = ""
    resource_name: str = ""
    #: "mandatory" blocks a deployment, "advisory" is only reported
    level: str = "mandatory"


def evaluate(
    resources: Iterable[Mapping[str, Any]],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    stack: bool = True,
) -> list[Violation]:
    """Every violation of every rule over ``resources`` (stack rules too when ``stack``)."""
    config = config or {}
    items = [
        StackResource(str(r.get("type", "")), str(r.get("name", "")), plain(r.get("props", {})), str(r.get("urn", "")))
        for r in resources
    ]
    out: list[Violation] = []
    for module in ALL:
        rule = module.RULE
        cfg = config.get(rule.name, {})
        if isinstance(cfg, str):  # an enforcement level only
            cfg = {"enforcementLevel": cfg}
        level = str(cfg.get("enforcementLevel") or rule.default_level)
        if level == "disabled":
            continue
        if rule.scope == "resource":
            for item in items:
                for msg in module.check(item.type, item.props, cfg):
                    out.append(Violation(rule.name, msg, item.urn, item.type, item.name, level))
        elif stack:
            for msg in module.check(items, cfg):
                out.append(Violation(rule.name, msg, level=level))
    return out
