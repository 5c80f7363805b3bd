"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models
import assets.models
import billing.models
import evals.models
import ingestion.models
from app.runtime import Runtime
from migrations import downgrade, upgrade

pytestmark = pytest.mark.both_databases

MODELS = (app.models, assets.models, billing.models, evals.models, ingestion.models)


def test_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_downgrade_to_base_and_back(runtime: Runtime) -> None:
    downgrade(runtime.engine, "base")
    assert set(inspect(runtime.engine).get_table_names()) <= {"alembic_version"}
    upgrade(runtime.engine)
    assert {"account", "asset", "consultation", "usage_event", "eval_run"} <= set(
        inspect(runtime.engine).get_table_names()
    )
