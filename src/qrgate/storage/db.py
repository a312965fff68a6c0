"""Engines for SQLite (one node) and PostgreSQL (many nodes), and after-commit callbacks.

SQLite settings and why:

* WAL lets readers run while one writer commits; ``synchronous=NORMAL`` is durable across
  process crashes in WAL mode and much faster than FULL.
* Every transaction starts with ``BEGIN IMMEDIATE`` so it takes the write lock up front.
  A deferred transaction that reads, then writes, must upgrade its lock and fails at once
  with "database is locked" if another writer got in between (the busy handler cannot
  help there); taking the lock at BEGIN makes writers queue on ``busy_timeout`` instead.
  Long read-only work can opt out per connection with ``conn.execution_options(**{READ_ONLY:
  True})``: it then begins a deferred (snapshot) transaction that does not block writers.
* ``foreign_keys`` is off by default in SQLite; PostgreSQL always enforces them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext, make_url
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

READ_ONLY = "qrgate_read_only"
CONNECT_TIMEOUT_SECONDS = 5
"""Execution option: on SQLite, begin a deferred transaction (no write lock) instead."""

SQLITE_BUSY_TIMEOUT_MS = 5000
_WAL_RETRY_PAUSE = 0.01
_WAL_RETRIES = int(SQLITE_BUSY_TIMEOUT_MS / 1000 / _WAL_RETRY_PAUSE)

_AFTER_COMMIT = "qrgate.after_commit"
_WRITER_LOCK = "qrgate.sqlite_writer_lock"
_SAVEPOINT_MARKS = "qrgate.after_commit.savepoints"
_HOOKS_FLAG = "_qrgate_after_commit_hooks"
_hooks_lock = threading.Lock()
_log = logging.getLogger(__name__)


# Everything the database layer raises, for ``except`` clauses that then ask
# :func:`is_unavailable` whether to retry or to fail.
DATABASE_ERRORS = (sa.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error)


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be reached or is busy beyond its
    timeout (connection refused or dropped, pool exhausted, SQLite locked or unreadable):
    a condition a client may retry, as opposed to a fault in a statement."""
    if isinstance(error, sa.exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, sa.exc.OperationalError | sa.exc.InterfaceError)
    return isinstance(error, sa.exc.TimeoutError | sa.exc.DisconnectionError
                      | psycopg.OperationalError | sqlite3.OperationalError)


def default_sqlite_url(data_dir: Path) -> str:
    """URL of the SQLite database kept in ``data_dir`` (which the caller creates)."""
    return "sqlite:///" + (data_dir / "qrgate.db").resolve().as_posix()


def create_engine_for(url: str) -> Engine:
    """An engine for a SQLite file or a PostgreSQL (psycopg 3) URL, tuned for qrgate."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or "mode=memory" in url:
            # Every pooled connection would see its own empty database.
            raise ValueError("qrgate needs a SQLite database file, not an in-memory one")
        _keep_private(Path(str(parsed.database)))
        engine = _sqlite_engine(url)
    elif backend == "postgresql":
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise ValueError("PostgreSQL URLs must use the psycopg 3 driver (postgresql+psycopg)")
        engine = sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_size=10,
            max_overflow=10,
            # A node outlives database restarts and failovers; test before handing out.
            pool_pre_ping=True,
            # A host that vanished (no refusal, no answer) must not hold a request, the
            # key refresher or a shutdown for the operating system's minutes-long timeout.
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            # Statement errors would otherwise carry their parameters (a password hash, a
            # code nonce) into every log line that prints them.
            hide_parameters=True,
        )
    else:
        raise ValueError(f"unsupported database backend: {backend}")
    event.listen(engine, "handle_error", _without_row_values)
    install_after_commit_hooks(engine)
    return engine


def _without_row_values(context: ExceptionContext) -> None:
    """Drop the detail from PostgreSQL's error messages before anything can print them:
    it quotes row values ("Failing row contains (..., <password hash>, <nonce>, ...)").
    The primary message, the SQLSTATE and the statement (without its parameters, see
    ``hide_parameters``) are left to diagnose with."""
    original = context.original_exception
    if not isinstance(original, psycopg.Error) or not original.diag.message_detail:
        return
    primary = original.diag.message_primary or type(original).__name__
    original.args = (primary,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        # SQLAlchemy formatted its message from the driver's when it wrapped the error.
        wrapped.args = (f"({type(original).__module__}.{type(original).__name__}) {primary}",)


def _keep_private(database: Path) -> None:
    """The database file and its WAL and shared-memory files are readable by their owner
    only: they hold password hashes and sealed secrets. SQLite gives the WAL and SHM files
    the database file's own mode, so creating that one 0600 covers the others; files made
    by an older version are tightened."""
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists() and path.stat().st_mode & 0o077 and path.stat().st_uid == os.geteuid():
            path.chmod(0o600)


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        # Threaded server: request handlers run in a thread pool, each holding a
        # connection for a short transaction; writes queue on the file lock anyway.
        pool_size=8,
        max_overflow=8,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    # Writers queue before BEGIN IMMEDIATE, on a Python lock (threads of this process) and
    # an flock on a file beside the database (other processes, e.g. `serve --workers 2`).
    # SQLite's own busy handler waits by sleeping, in steps of up to 100 ms, which under
    # load turns sub-millisecond transactions into tail latencies of hundreds of ms; the
    # kernel wakes an flock waiter as soon as the holder releases.
    writer = _WriterLock(Path(f"{make_url(url).database}-writer.lock"))

    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        writer.acquire()
        conn.info[_WRITER_LOCK] = writer
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_writer(conn.info)
            raise

    event.listen(engine, "begin", on_begin)
    return engine


class _WriterLock:
    """Both halves of the writer queue. The flock is taken on a file opened per
    transaction, so closing it releases the lock even if a process dies mid-way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.threads = threading.Lock()
        self.fd: int | None = None

    def acquire(self) -> None:
        self.threads.acquire()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            self.threads.release()
            raise
        self.fd = fd

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # releases the flock
        self.threads.release()


def _release_writer(info: dict[str, Any]) -> None:
    lock = info.pop(_WRITER_LOCK, None)
    if lock is not None:
        lock.release()


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Stop the sqlite3 module from issuing its own (deferred) BEGIN; we begin in on_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _ensure_wal(cursor: Any) -> None:
    # WAL mode is stored in the file, so only a new database needs switching. Switching
    # needs an exclusive lock and SQLite answers "locked" at once, without waiting on
    # busy_timeout, while another connection holds any lock: e.g. several processes opening
    # a new database together. Retry for about as long as busy_timeout.
    for attempt in range(_WAL_RETRIES + 1):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == _WAL_RETRIES:
                raise
            time.sleep(_WAL_RETRY_PAUSE)
            continue
        if mode != "wal":
            # e.g. a file system without shared memory: still correct, only less concurrent.
            _log.warning("SQLite database is in %s journal mode, not WAL", mode)
        return


# --- after-commit callbacks ---------------------------------------------------------------


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the transaction open on ``conn`` has committed.

    SQLAlchemy's Core ``commit`` event fires *before* the database commits, so a listener
    woken from it could read the old state. The callback instead runs right after the
    driver's commit returned, in the committing thread; it is dropped if the transaction
    (or the savepoint it was registered in) rolls back. Callback errors are not raised
    to the committer: its data is already committed.
    """
    if not conn.in_transaction():
        raise RuntimeError("after_commit needs an open transaction")
    install_after_commit_hooks(conn.engine)
    pending: list[Callable[[], None]] = conn.info.setdefault(_AFTER_COMMIT, [])
    pending.append(callback)


def install_after_commit_hooks(engine: Engine) -> None:
    """Make ``after_commit`` work on ``engine`` (idempotent; engines from here have it)."""
    dialect = engine.dialect
    with _hooks_lock:
        if getattr(dialect, _HOOKS_FLAG, False):
            return
        original_commit = dialect.do_commit
        original_rollback = dialect.do_rollback

        # The DBAPI connection handed to the dialect is the pool's proxy, whose ``info``
        # is the very dict ``Connection.info`` returns: pending callbacks live there.
        def do_commit(dbapi_connection: Any) -> None:
            info = _info_of(dbapi_connection)
            try:
                original_commit(dbapi_connection)
            finally:
                _release_writer(info)
            info.pop(_SAVEPOINT_MARKS, None)
            for callback in info.pop(_AFTER_COMMIT, ()):
                _run_quietly(callback)

        def do_rollback(dbapi_connection: Any) -> None:
            info = _info_of(dbapi_connection)
            info.pop(_AFTER_COMMIT, None)
            info.pop(_SAVEPOINT_MARKS, None)
            try:
                original_rollback(dbapi_connection)
            finally:
                _release_writer(info)

        # Instance-level wrap of this engine's own dialect: the only place that runs after
        # the real commit; no other engine is affected.
        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]
        event.listen(engine, "savepoint", _on_savepoint)
        event.listen(engine, "rollback_savepoint", _on_rollback_savepoint)
        event.listen(engine, "release_savepoint", _on_release_savepoint)
        setattr(dialect, _HOOKS_FLAG, True)


def _info_of(dbapi_connection: Any) -> dict[str, Any]:
    # The engine's first-connect probe passes a bare proxy without an ``info`` dict; it can
    # carry no callbacks anyway.
    try:
        info: dict[str, Any] = dbapi_connection.info
    except (AttributeError, NotImplementedError):
        return {}
    return info


def _run_quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        # The data is committed; a failed follow-up must not turn that into an error.
        _log.exception("after-commit callback failed")


# Savepoints nest strictly, so a stack of "pending list length at SAVEPOINT" suffices
# (the savepoint event may not even carry the name yet).
def _on_savepoint(conn: Connection, _name: str | None) -> None:
    pending = conn.info.get(_AFTER_COMMIT, [])
    conn.info.setdefault(_SAVEPOINT_MARKS, []).append(len(pending))


def _on_rollback_savepoint(conn: Connection, _name: str, _context: None) -> None:
    marks: list[int] = conn.info.get(_SAVEPOINT_MARKS, [])
    if marks:
        keep = marks.pop()
        del conn.info.get(_AFTER_COMMIT, [])[keep:]


def _on_release_savepoint(conn: Connection, _name: str, _context: None) -> None:
    marks: list[int] = conn.info.get(_SAVEPOINT_MARKS, [])
    if marks:
        marks.pop()
