"""Scheme A: printed grid cards and their cells.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Written by hand after the models and reviewed; tests/storage/test_storage_migrations.py
checks it still equals Base.metadata. Cells are stored as keyed digests only; the card key
is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gridcards",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.CheckConstraint("status IN ('active', 'revoked')",
                           name=op.f("ck_gridcards_status")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_gridcards_org_id_organisations")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_gridcards_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gridcards")),
        sa.UniqueConstraint("serial", name=op.f("uq_gridcards_serial")),
    )
    op.create_index("ix_gridcards_user", "gridcards", ["user_id"], unique=False)
    op.create_table(
        "gridcard_cells",
        sa.Column("card_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.String(length=4), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["gridcards.id"],
                                name=op.f("fk_gridcard_cells_card_id_gridcards")),
        sa.PrimaryKeyConstraint("card_id", "position", name=op.f("pk_gridcard_cells")),
    )


def downgrade() -> None:
    op.drop_table("gridcard_cells")
    op.drop_index("ix_gridcards_user", table_name="gridcards")
    op.drop_table("gridcards")
