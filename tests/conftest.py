"""Shared fixtures: real databases, no mocks.

Configuration
    ``QRGATE_TEST_DATABASE_URL`` (or ``--qrgate-test-database-url``): a PostgreSQL URL such
    as ``postgresql+psycopg://postgres@127.0.0.1:5432/test``. Without it the PostgreSQL
    variants are skipped with reason "QRGATE_TEST_DATABASE_URL not set".

Fixtures
    ``database_url``
        Parametrized ``sqlite`` / ``postgresql`` (the latter marked ``postgres``). SQLite:
        a fresh database file under ``tmp_path``. PostgreSQL: a fresh schema ``t_<random>``
        made the connection's ``search_path`` through the URL's ``options`` parameter and
        dropped (cascade) after the test, so tests are independent and run in any order.
        Every engine, event bus or psycopg connection made from this URL sees that schema.
        Not migrated.
    ``engine``
        ``create_engine_for(database_url)`` migrated to head with ``schema.upgrade``;
        disposed after the test.
    ``make_engine``
        Factory for more engines on the same database (e.g. a second node); each is
        disposed after the test.
    ``pg_admin_url``
        The configured PostgreSQL URL itself (default schema), or skip when unset.
    ``anyio_backend``
        ``"asyncio"``, for ``@pytest.mark.anyio`` tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from qrgate.storage.db import create_engine_for
from qrgate.storage.schema import upgrade

ENV_VAR = "QRGATE_TEST_DATABASE_URL"
SKIP_REASON = f"{ENV_VAR} not set"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--qrgate-test-database-url",
        default=os.environ.get(ENV_VAR) or None,
        help=f"PostgreSQL URL for the postgres-marked tests (default: ${ENV_VAR})",
    )


def _configured_pg_url(config: pytest.Config) -> str | None:
    value = config.getoption("--qrgate-test-database-url")
    return str(value) if value else None


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_admin_url(pytestconfig: pytest.Config) -> str:
    url = _configured_pg_url(pytestconfig)
    if url is None:
        pytest.skip(SKIP_REASON)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pytestconfig: pytest.Config
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'qrgate-test.db').as_posix()}"
        return
    admin_url = _configured_pg_url(pytestconfig)
    if admin_url is None:
        pytest.skip(SKIP_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield (
            make_url(admin_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def make_engine(database_url: str) -> Iterator[Callable[[], Engine]]:
    made: list[Engine] = []

    def make() -> Engine:
        engine = create_engine_for(database_url)
        made.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in made:
            engine.dispose()


@pytest.fixture
def engine(make_engine: Callable[[], Engine]) -> Engine:
    migrated = make_engine()
    upgrade(migrated)
    return migrated


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Say plainly, as the very last lines of a run without PostgreSQL, what it did not test.
    SQLite queues writers one at a time, so only the PostgreSQL variants can catch a lost
    race between two nodes; a run that skipped them must not look like a full one."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None or hasattr(config, "workerinput"):
        return
    skipped = [report for report in terminalreporter.stats.get("skipped", [])
               if SKIP_REASON in str(getattr(report, "longrepr", ""))]
    if skipped:
        terminalreporter.write_sep("=", "PostgreSQL tests not run", yellow=True, bold=True)
        terminalreporter.write_line(
            f"{len(skipped)} tests need PostgreSQL and did not run: races between nodes on "
            "separate connections, LISTEN/NOTIFY, outages, and every database test's "
            "PostgreSQL variant.")
        terminalreporter.write_line(
            f"Run them with {ENV_VAR}=postgresql+psycopg://postgres@127.0.0.1:5432/test "
            "(a database the tests may create schemas in).")
