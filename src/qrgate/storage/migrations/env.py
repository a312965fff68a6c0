"""Alembic environment for qrgate.

At run time ``qrgate.storage.schema.upgrade`` hands in an open connection (inside its
transaction and, on PostgreSQL, under an advisory lock) via ``config.attributes``.
Developers may also run the ``alembic`` command with ``alembic.ini`` from this folder and
``-x url=...`` (or ``sqlalchemy.url``) to autogenerate a new revision.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from qrgate.storage.db import create_engine_for
from qrgate.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("pass -x url=DATABASE_URL or set sqlalchemy.url")
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(_url())
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
