"""Fixtures shared by the app tests."""

from pathlib import Path

import pytest

from tests.app.shell import Shell


@pytest.fixture
def shell(tmp_path: Path, database_url: str | None) -> Shell:
    """`vouch` on a data dir of the test's own (and its database, on PostgreSQL)."""
    return Shell(tmp_path / "data", database_url)
