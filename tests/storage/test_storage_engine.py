"""Engine settings, SQLite write locking, and after-commit callbacks on real databases."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from qrgate.storage.db import READ_ONLY, after_commit, create_engine_for, default_sqlite_url


def test_default_sqlite_url_is_absolute_file(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve().as_posix()}/qrgate.db"
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            conn.rollback()
    finally:
        engine.dispose()
    assert (tmp_path / "qrgate.db").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://x@y/z"])
def test_rejects_unsuitable_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"in-memory|unsupported"):
        create_engine_for(url)


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == 8
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
            conn.rollback()
        # synchronous: 1 is NORMAL.
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }
    finally:
        engine.dispose()


def test_postgres_pool_settings(pg_admin_url: str) -> None:
    engine = create_engine_for(pg_admin_url)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == 10
        assert engine.pool._pre_ping
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'lock.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
        with engine.connect() as holder:
            holder.execute(text("SELECT count(*) FROM t")).scalar_one()
            # A mere SELECT in a default transaction already holds the writer lock...
            probe = engine.raw_connection()
            try:
                cursor = probe.cursor()
                cursor.execute("PRAGMA busy_timeout = 0")
                with pytest.raises(sqlite3.OperationalError, match="locked") as caught:
                    cursor.execute("BEGIN IMMEDIATE")
                assert caught.value.sqlite_errorname == "SQLITE_BUSY"
                cursor.close()
            finally:
                probe.close()
            holder.rollback()
        # ...while a READ_ONLY one does not.
        with engine.connect() as reader:
            reader.execution_options(**{READ_ONLY: True})
            reader.execute(text("SELECT count(*) FROM t")).scalar_one()
            with engine.begin() as writer:
                writer.execute(text("INSERT INTO t VALUES (1)"))
            reader.rollback()
    finally:
        engine.dispose()


def test_concurrent_read_modify_write_never_sees_locked(engine: Engine) -> None:
    """Deferred transactions fail lock upgrades with "database is locked"; ours queue."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        try:
            for _ in range(25):
                with engine.begin() as conn:
                    conn.execute(text("SELECT n FROM counter")).scalar_one()
                    conn.execute(text("UPDATE counter SET n = n + 1"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 200
        conn.rollback()


def _counting() -> tuple[list[str], Callable[[str], Callable[[], None]]]:
    seen: list[str] = []

    def callback(name: str) -> Callable[[], None]:
        return lambda: seen.append(name)

    return seen, callback


def test_after_commit_runs_after_commit_only(engine: Engine) -> None:
    seen, callback = _counting()
    with engine.connect() as conn:
        conn.begin()
        after_commit(conn, callback("committed"))
        assert seen == []
        conn.commit()
        assert seen == ["committed"]

        conn.begin()
        after_commit(conn, callback("rolled back"))
        conn.rollback()
        # The dropped callback must not leak into the next transaction either.
        conn.begin()
        conn.commit()
    assert seen == ["committed"]


def test_after_commit_sees_committed_data_from_another_connection(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE marks (n INTEGER)"))
    observed: list[int] = []

    def look() -> None:
        with engine.connect() as other:
            observed.append(other.execute(text("SELECT count(*) FROM marks")).scalar_one())
            other.rollback()

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO marks VALUES (1)"))
        after_commit(conn, look)
    assert observed == [1]


def test_after_commit_respects_savepoints(engine: Engine) -> None:
    seen, callback = _counting()
    with engine.begin() as conn:
        after_commit(conn, callback("outer"))
        with conn.begin_nested() as nested:
            after_commit(conn, callback("rolled-back savepoint"))
            nested.rollback()
        with conn.begin_nested():
            after_commit(conn, callback("released savepoint"))
    assert seen == ["outer", "released savepoint"]


def test_after_commit_failure_does_not_fail_the_commit(engine: Engine) -> None:
    seen, callback = _counting()

    def boom() -> None:
        raise RuntimeError("hint delivery failed")

    with engine.begin() as conn:
        after_commit(conn, boom)
        after_commit(conn, callback("still runs"))
    assert seen == ["still runs"]


def test_after_commit_needs_a_transaction(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(RuntimeError):
        after_commit(conn, lambda: None)
