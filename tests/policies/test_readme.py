"""policies/README.md stays true about the rules and the exceptions file."""

from __future__ import annotations

from pathlib import Path

from policies.lib.reviewed import reviewed
from policies.rules import ALL

README = (Path(__file__).resolve().parents[2] / "policies" / "README.md").read_text(
    encoding="utf-8"
)


def test_every_rule_is_in_the_rules_table_with_its_level() -> None:
    for module in ALL:
        rule = module.RULE
        row = next(
            (line for line in README.splitlines() if line.startswith(f"| `{rule.name}` |")), ""
        )
        assert row, rule.name
        assert f"| {rule.scope} | {rule.default_level} | {rule.severity} |" in row, rule.name


def test_the_readme_names_every_reviewed_exception_section() -> None:
    for section in reviewed():
        assert section in README or section == "checkov", section
