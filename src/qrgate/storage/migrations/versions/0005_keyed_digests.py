"""Keyed digests: API keys are rekeyed in place; tokens remember who activated them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

API keys were stored as SHA-256(secret); they are now HMAC(key from the KEK, purpose ||
SHA-256(secret)) (qrgate.core.digests), so each stored digest is brought under the key
without knowing any secret. That needs the KEK: qrgate.storage.schema.upgrade passes the
runtime's SecretDigests in ``config.attributes["digests"]``. Pending enrolments and open
challenges (minutes long) are not converted: they fail and are started again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_API_KEYS = sa.table("api_keys", sa.column("id", sa.Integer),
                     sa.column("secret_hash", sa.LargeBinary))


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activation_client", sa.LargeBinary(length=32),
                                      nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_API_KEYS.c.id, _API_KEYS.c.secret_hash)).all()
    if not rows:
        return
    digests = context.config.attributes.get("digests")
    if digests is None:
        raise RuntimeError("API keys must be rekeyed with the KEK: run the migration by "
                           "starting qrgate (qrgate.storage.schema.upgrade), not alembic")
    for row in rows:
        conn.execute(sa.update(_API_KEYS).where(_API_KEYS.c.id == row.id).values(
            secret_hash=digests.rekey(bytes(row.secret_hash), purpose="api_key")))


def downgrade() -> None:
    # Keyed digests cannot be turned back into plain ones: API keys must be reissued.
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("activation_client")
