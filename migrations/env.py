# Every package's tables must be imported so that autogenerate sees them.
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import app.models  # noqa: F401
import assets.models  # noqa: F401
import billing.models  # noqa: F401
import core.files  # noqa: F401
import evals.models  # noqa: F401
import ingestion.models  # noqa: F401
import marketplace.models  # noqa: F401
from core.config import Settings
from core.db import make_engine

target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    # Plain SQLAlchemy types in migration files, so they never depend on sqlmodel internals.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with make_engine(Settings().sqlalchemy_url).begin() as conn:
        run(conn)
