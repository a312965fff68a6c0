"""Bring a database to the current schema, safely from several processes at once.

All migration DDL runs in one transaction. On PostgreSQL that transaction first takes a
transaction-scoped advisory lock, so nodes starting together queue up: the first migrates,
the rest then find the schema at head and do nothing. The lock is released by COMMIT or
ROLLBACK, so a crashed migrator cannot leave it held. On SQLite the write lock taken at
BEGIN IMMEDIATE serialises migrators the same way.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qrgate.core.digests import SecretDigests
from qrgate.storage.db import READ_ONLY

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Any constant works as long as nothing else in the database uses it; this is the first
# 8 bytes of SHA-256("qrgate.schema") as a signed bigint.
_ADVISORY_LOCK_KEY = -4_698_618_449_143_023_004
_in_process_lock = threading.Lock()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, *, digests: SecretDigests | None = None) -> None:
    """Migrate ``engine``'s database to the newest revision (a no-op when already there).
    ``digests`` (keyed from the KEK) lets a migration rekey stored digests; a database
    that holds none needs it not."""
    config = _alembic_config()
    config.attributes["digests"] = digests
    # Alembic keeps the running migration context in a module global, so two threads of
    # one process must not migrate at once, even different databases.
    with _in_process_lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return revision


def head_revision() -> str | None:
    """The newest revision shipped with this version of qrgate."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
