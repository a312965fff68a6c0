"""Initial schema: organisations, applications, API keys, users, enrolments, devices,
challenges and the hash-chained audit log with its head row.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Generated with ``alembic revision --autogenerate`` against an empty database, then
reviewed; tests/storage/test_storage_migrations.py checks it still equals ``Base.metadata``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = bytes(32)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organisations_slug")),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_applications_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("org_id", "business_id", name=op.f("uq_applications_org_id")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["applications.id"], name=op.f("fk_api_keys_app_id_applications")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("preferred_verifier", sa.String(length=32), nullable=True),
        sa.Column("totp_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("frozen_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_users_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("org_id", "login", name=op.f("uq_users_org_id")),
    )
    op.create_table(
        "enrolments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("confirm_code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["applications.id"], name=op.f("fk_enrolments_app_id_applications")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrolments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client_app_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=65), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("unbound_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index("ix_devices_user", "devices", ["user_id"])
    op.create_table(
        "challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=128), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("scene", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=True),
        sa.Column("verifier", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("code_nonce", sa.LargeBinary(length=16), nullable=False),
        sa.Column("code_seq", sa.Integer(), nullable=False),
        sa.Column("code_expires_at", sa.Float(), nullable=False),
        sa.Column("browser_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("requester_ip", sa.String(length=64), nullable=False),
        sa.Column("requester_ua", sa.String(length=300), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("scanned_at", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["applications.id"], name=op.f("fk_challenges_app_id_applications")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_challenges_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_challenges_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
    )
    op.create_index("ix_challenges_app_created", "challenges", ["app_id", "created_at"])
    op.create_index("ix_challenges_user_created", "challenges", ["user_id", "created_at"])
    op.create_index("ix_challenges_device_created", "challenges", ["device_id", "created_at"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("challenge_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_challenge", "audit_log", ["challenge_id", "seq"])
    op.create_index("ix_audit_log_user", "audit_log", ["user_id", "seq"])
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The chain's tip must exist before the first append: appenders lock this row.
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_user", table_name="audit_log")
    op.drop_index("ix_audit_log_challenge", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_challenges_device_created", table_name="challenges")
    op.drop_index("ix_challenges_user_created", table_name="challenges")
    op.drop_index("ix_challenges_app_created", table_name="challenges")
    op.drop_table("challenges")
    op.drop_index("ix_devices_user", table_name="devices")
    op.drop_table("devices")
    op.drop_table("enrolments")
    op.drop_table("users")
    op.drop_table("api_keys")
    op.drop_table("applications")
    op.drop_table("organisations")
