"""shared storage: each asset's BM25 index kept in the database under a version, so that every
replica searches the index the last ingest built, wherever it ran; uploaded files kept in the
database, so that a worker on another machine than the receiving replica can ingest them; and
the files a replica writes for others to read (report PDFs, credential documents)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lexical_snapshot",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("collection", name=op.f("pk_lexical_snapshot")),
    )
    op.create_table(
        "upload_file",
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_upload_file_source_id_source")
        ),
        sa.PrimaryKeyConstraint("source_id", "name", name=op.f("pk_upload_file")),
    )
    op.create_table(
        "stored_file",
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_stored_file")),
    )


def downgrade() -> None:
    op.drop_table("stored_file")
    op.drop_table("upload_file")
    op.drop_table("lexical_snapshot")
