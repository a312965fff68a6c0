"""Scheme A: authentications with a grid card (the position asked and its window).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

Written by hand after the models and reviewed; tests/storage/test_storage_migrations.py
checks it still equals Base.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gridcard_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.String(length=32), nullable=False),
        sa.Column("login", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("risk", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("position", sa.String(length=4), nullable=False),
        sa.Column("position_seq", sa.Integer(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("position_issued_at", sa.Float(), nullable=False),
        sa.Column("position_expires_at", sa.Float(), nullable=False),
        sa.Column("reissues", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requester_ip", sa.String(length=64), nullable=False),
        sa.Column("requester_ua", sa.String(length=300), nullable=False),
        sa.Column("answer_seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'authenticated', 'failed', 'expired')",
                           name=op.f("ck_gridcard_attempts_state")),
        sa.CheckConstraint("risk IN ('low', 'normal', 'high')",
                           name=op.f("ck_gridcard_attempts_risk")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_gridcard_attempts_org_id_organisations")),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"],
                                name=op.f("fk_gridcard_attempts_app_id_applications")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_gridcard_attempts_user_id_users")),
        sa.ForeignKeyConstraint(["card_id"], ["gridcards.id"],
                                name=op.f("fk_gridcard_attempts_card_id_gridcards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gridcard_attempts")),
    )
    op.create_index("ix_gridcard_attempts_user_state", "gridcard_attempts",
                    ["user_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gridcard_attempts_user_state", table_name="gridcard_attempts")
    op.drop_table("gridcard_attempts")
