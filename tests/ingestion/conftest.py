"""Fixtures of the ingestion tests: an empty asset and a copy of the handbook corpus."""

import shutil
from pathlib import Path

import pytest

from app.runtime import Runtime
from assets.models import Asset
from tests.factories import HANDBOOK, Actor, create_test_asset


@pytest.fixture
def asset(runtime: Runtime, expert: Actor) -> Asset:
    return create_test_asset(runtime, owner=expert.account, slug="garden")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the handbook the test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(HANDBOOK, target)
    return target
