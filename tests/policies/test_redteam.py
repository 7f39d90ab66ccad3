"""The red-team corpus (redteam.py): every case gets its verdict, in process."""

from __future__ import annotations

import pytest
from redteam import CASES, Case, mandatory


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_red_team_case(case: Case) -> None:
    found = mandatory(case)
    if case.verdict == "block":
        assert found, f"let through: {case.why}"
    else:
        assert found == [], f"blocked a compliant setup: {case.why}"


def test_corpus_has_both_sides() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.verdict == "allow" for c in CASES) >= len(CASES) // 3
