"""trust: verified e-mail, proved ORCID iD and suspension on accounts; commit signing keys;
golden sets an admin approves, and the scope of an eval run (private, platform, approved)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("orcid", sa.String(length=19), nullable=True))
        batch_op.add_column(sa.Column("suspended_at", UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_account_orcid"), ["orcid"])
    # Accounts made before sign-up existed were created by an admin, who vouched for them.
    op.execute("UPDATE account SET email_verified_at = created_at")

    op.create_table(
        "signing_key",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_signing_key_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_key")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_signing_key_fingerprint")),
    )
    op.create_index(op.f("ix_signing_key_account_id"), "signing_key", ["account_id"])

    op.create_table(
        "golden_set",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("submitted_by", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["asset.id"], name=op.f("fk_golden_set_asset_id_asset")
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by"], ["account.id"], name=op.f("fk_golden_set_submitted_by_account")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["account.id"], name=op.f("fk_golden_set_decided_by_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_golden_set")),
    )
    op.create_index(op.f("ix_golden_set_asset_id"), "golden_set", ["asset_id"])
    op.create_index(op.f("ix_golden_set_status"), "golden_set", ["status"])

    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=16), nullable=False, server_default="private")
        )
        batch_op.add_column(sa.Column("golden_set_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_eval_run_golden_set_id_golden_set"),
            "golden_set",
            ["golden_set_id"],
            ["id"],
        )

    with op.batch_alter_table("ingestion_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("documents_as_text", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("ingestion_job", schema=None) as batch_op:
        batch_op.drop_column("documents_as_text")
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_eval_run_golden_set_id_golden_set"), type_="foreignkey"
        )
        batch_op.drop_column("golden_set_id")
        batch_op.drop_column("scope")
    op.drop_index(op.f("ix_golden_set_status"), table_name="golden_set")
    op.drop_index(op.f("ix_golden_set_asset_id"), table_name="golden_set")
    op.drop_table("golden_set")
    op.drop_index(op.f("ix_signing_key_account_id"), table_name="signing_key")
    op.drop_table("signing_key")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_account_orcid"), type_="unique")
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("orcid")
        batch_op.drop_column("email_verified_at")
