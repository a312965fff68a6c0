"""One qrgate deployment shared by the tests of a module: a database and a data directory
(the KEK) that outlive single tests, a first node provisioned as ``stack_factory``'s is, and
more nodes started on demand with settings, a clock or a data directory of their own.

``stack_factory`` gives every test a deployment of its own, which most tests want. A module
whose tests each make their own users, phones and tokens (``support.fresh``) can share one
and save a server start per test; pytest-xdist then builds one per worker.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from support.stack import Clock, Stack, serve_stack

# The wording tests/conftest.py skips PostgreSQL variants with, so a run reports them alike.
POSTGRESQL_NOT_SET = "QRGATE_TEST_DATABASE_URL not set"


@contextlib.contextmanager
def fresh_database(kind: str, directory: Path, postgresql_url: str | None) -> Iterator[str]:
    """A database nobody else uses: a SQLite file in ``directory``, or a PostgreSQL schema
    of its own (made the connections' ``search_path``), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{(directory / 'qrgate.db').as_posix()}"
        return
    assert postgresql_url is not None, POSTGRESQL_NOT_SET
    admin = make_url(postgresql_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield (make_url(postgresql_url)
               .update_query_dict({"options": f"-csearch_path={schema}"})
               .render_as_string(hide_password=False))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class Deployment:
    """The first node serves until :meth:`close`; :meth:`node` serves for a ``with`` block."""

    def __init__(self, *, directory: Path, database_url: str, clock: Clock) -> None:
        self.directory = directory
        self.database_url = database_url
        self.clock = clock
        self._closers: list[Callable[[], None]] = []
        self.first = self._serve(home=directory, database_url=database_url, clock=clock,
                                 join=None, closers=self._closers)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()

    @contextlib.contextmanager
    def node(self, *, clock: Clock | None = None, home: Path | None = None,
             via: str | None = None, **settings: Any) -> Iterator[Stack]:
        """Another node of this deployment. ``home``: a data directory of its own (so its
        own KEK, unless ``settings`` names one); ``via``: the database at another URL
        (e.g. through a proxy); ``clock``: a clock of its own."""
        closers: list[Callable[[], None]] = []
        try:
            yield self._serve(home=home or self.directory, database_url=via or self.database_url,
                              clock=clock or self.clock, join=self.first, closers=closers,
                              **settings)
        finally:
            for closer in reversed(closers):
                closer()

    def _serve(self, *, home: Path, database_url: str, clock: Clock, join: Stack | None,
               closers: list[Callable[[], None]], **settings: Any) -> Stack:
        stack, close = serve_stack(home=home, database_url=database_url, clock=clock,
                                   join=join, **settings)
        closers.append(close)
        return stack

