"""Webhooks: each application's destination and signing key, and the outbox of events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Written by hand after the models and reviewed; tests/storage/test_storage_migrations.py
checks it still equals Base.metadata. Both tables start empty: no application has a
webhook yet, and events are recorded only for applications that have one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("app_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("previous_expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"],
                                name=op.f("fk_webhooks_app_id_applications")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_webhooks_org_id_organisations")),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_org", "webhooks", ["org_id"], unique=False)
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_attempt_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("lease_owner", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')",
                           name=op.f("ck_webhook_events_state")),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"],
                                name=op.f("fk_webhook_events_app_id_applications")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_webhook_events_org_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    # The workers' claim looks for pending rows by due time; the API lists an application's
    # deliveries newest first.
    op.create_index("ix_webhook_events_due", "webhook_events", ["state", "next_attempt_at"],
                    unique=False)
    op.create_index("ix_webhook_events_app_created", "webhook_events",
                    ["app_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_events_app_created", table_name="webhook_events")
    op.drop_index("ix_webhook_events_due", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_webhooks_org", table_name="webhooks")
    op.drop_table("webhooks")
