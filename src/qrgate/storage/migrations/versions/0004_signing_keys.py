"""Code-signing keys in the database, shared by every node.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Written after alembic revision --autogenerate (which leaves out the partial index's WHERE
clause and the check constraint's text) and reviewed; tests/storage/test_storage_migrations.py
checks it still equals Base.metadata. The table starts empty: the first node to start
imports the key files of earlier versions or makes a fresh key (qrgate.keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONLY_ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.LargeBinary(length=8), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("retired_at", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "state IN ('active', 'verify', 'retired')", name=op.f("ck_signing_keys_state")
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    # At most one active key: a partial unique index, which SQLite and PostgreSQL both have.
    op.create_index(
        "uq_signing_keys_active",
        "signing_keys",
        ["state"],
        unique=True,
        sqlite_where=_ONLY_ACTIVE,
        postgresql_where=_ONLY_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_signing_keys_active", table_name="signing_keys")
    op.drop_table("signing_keys")
