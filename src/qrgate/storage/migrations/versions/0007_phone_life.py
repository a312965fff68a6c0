"""Real life with the phone app: temporary access passes, offline approval secrets, app
lock, and "this wasn't me" reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Written by hand after the models and reviewed; tests/storage/test_storage_migrations.py
checks it still equals Base.metadata. Existing devices get no offline secret (they enrolled
before there was one: offline approval needs a new enrolment) and no app lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("blocked_until", sa.Float(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("offline_secret_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("lock_pin_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("lock_pin_failures", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("webauthn_credential_id", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("webauthn_public_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("webauthn_sign_count", sa.BigInteger(), nullable=True))
    op.create_table(
        "access_passes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pass_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("issued_by", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("revoke_devices", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"],
                                name=op.f("fk_access_passes_app_id_applications")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_access_passes_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_passes")),
        sa.UniqueConstraint("pass_hash", name=op.f("uq_access_passes_pass_hash")),
    )
    op.create_index("ix_access_passes_user", "access_passes", ["user_id"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=True),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_reports_org_id_organisations")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_reports_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_user_created", "reports", ["user_id", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_reports_user_created", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_access_passes_user", table_name="access_passes")
    op.drop_table("access_passes")
    with op.batch_alter_table("devices") as batch:
        for column in ("webauthn_sign_count", "webauthn_public_key", "webauthn_credential_id",
                       "lock_pin_failures", "lock_pin_enc", "offline_secret_enc"):
            batch.drop_column(column)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("blocked_until")
