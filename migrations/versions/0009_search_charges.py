"""search charges: a plan's price per search of the asset's passages by a client (null: not
sold, the corpus stays private; 0: free), and the charge of each priced search, paid from the
client's credits at once and keyed by the client's Idempotency-Key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("per_search", sa.BigInteger(), nullable=True))
    op.create_table(
        "search_charge",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=40), nullable=False),
        sa.Column("expert_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_search_charge_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["asset.id"], name=op.f("fk_search_charge_asset_id_asset")
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["account.id"], name=op.f("fk_search_charge_expert_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_charge")),
        sa.UniqueConstraint(
            "account_id", "idempotency_key", name=op.f("uq_search_charge_account_id")
        ),
    )
    with op.batch_alter_table("search_charge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_search_charge_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_search_charge_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_charge_expert_id"), ["expert_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_charge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_charge_expert_id"))
        batch_op.drop_index(batch_op.f("ix_search_charge_asset_id"))
        batch_op.drop_index(batch_op.f("ix_search_charge_account_id"))
    op.drop_table("search_charge")
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_column("per_search")
