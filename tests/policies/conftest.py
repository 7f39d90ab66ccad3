"""Make the repo root importable (policies.*, components.*) for the policy tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pack_service():  # type: ignore[no-untyped-def]
    """The pack running as the CLI runs it (see analyzer_service.py), shared by the session."""
    from analyzer_service import PackService

    service = PackService()
    try:
        yield service
    finally:
        service.close()
