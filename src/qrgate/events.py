"""State-change hints for browsers waiting on a challenge.

A hint only says "topic X may now be in state Y"; the database stays the truth. Hints are
published inside the transaction that changes the state and delivered only after it
commits, never after a rollback. They can still be lost (a listener reconnecting, a
subscriber's buffer overflowing), so a waiter must:

1. subscribe, then read the current state from the database (in that order, or a change
   committed in between is missed), and
2. wait with a bounded timeout and re-read the state on every wake-up or timeout.

``InProcessEventBus`` serves one process (SQLite). ``PostgresEventBus`` carries hints
between nodes with LISTEN/NOTIFY, which PostgreSQL itself delivers only on commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
from types import TracebackType
from typing import Protocol, Self

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from qrgate.storage.db import CONNECT_TIMEOUT_SECONDS, after_commit

CHANNEL = "qrgate_events"
MAX_TOPIC_LENGTH = 64
MAX_STATE_LENGTH = 64
# A waiter needs the latest hints, not a history; a stalled one must not grow memory.
SUBSCRIPTION_BUFFER = 16

_TOPIC = re.compile(r"[A-Za-z0-9_.:-]+")
_log = logging.getLogger(__name__)


class Subscription(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def next(self, timeout: float) -> str | None:
        """The next state hint, or None when ``timeout`` seconds pass without one."""
        ...


class EventBus(Protocol):
    def publish(self, conn: Connection, *, topic: str, state: str) -> None:
        """Announce ``state`` for ``topic`` once ``conn``'s open transaction commits."""
        ...

    def subscribe(self, topic: str) -> Subscription:
        """Hints for ``topic``, received from entering the context until leaving it."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def _check(topic: str, state: str) -> None:
    # The wire format is "topic state": a topic must not contain the separator.
    if len(topic) > MAX_TOPIC_LENGTH or not _TOPIC.fullmatch(topic):
        raise ValueError(f"invalid event topic: {topic!r}")
    if not state or len(state) > MAX_STATE_LENGTH:
        raise ValueError(f"invalid event state: {state!r}")


class _Subscription:
    """Buffers hints for one waiter; fed from any thread, read on the waiter's loop."""

    def __init__(self, hub: _Hub, topic: str) -> None:
        self._hub = hub
        self._topic = topic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer: collections.deque[str] = collections.deque(maxlen=SUBSCRIPTION_BUFFER)
        self._wakeup = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._hub.add(self._topic, self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._hub.remove(self._topic, self)

    def post(self, state: str) -> None:
        loop = self._loop
        if loop is None:
            return
        # A worker thread must not touch asyncio objects; hand the hint to the loop.
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(self._push, state)

    def _push(self, state: str) -> None:
        self._buffer.append(state)
        self._wakeup.set()

    async def next(self, timeout: float) -> str | None:
        if not self._buffer:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return None
        return self._buffer.popleft()


class _Hub:
    """Topic → local subscriptions, shared by both buses; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, set[_Subscription]] = {}

    def add(self, topic: str, subscription: _Subscription) -> None:
        with self._lock:
            self._topics.setdefault(topic, set()).add(subscription)

    def remove(self, topic: str, subscription: _Subscription) -> None:
        with self._lock:
            subscriptions = self._topics.get(topic)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._topics[topic]

    def deliver(self, topic: str, state: str) -> None:
        with self._lock:
            targets = list(self._topics.get(topic, ()))
        for subscription in targets:
            subscription.post(state)


class InProcessEventBus:
    """Hints within one process; the publisher may run in any thread."""

    def __init__(self) -> None:
        self._hub = _Hub()

    def publish(self, conn: Connection, *, topic: str, state: str) -> None:
        _check(topic, state)
        after_commit(conn, lambda: self._hub.deliver(topic, state))

    def subscribe(self, topic: str) -> Subscription:
        return _Subscription(self._hub, topic)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class PostgresEventBus:
    """Hints between nodes through PostgreSQL LISTEN/NOTIFY.

    One background task per process holds a dedicated autocommit connection listening on
    the channel and hands notifications to local subscribers, including those for this
    node's own publishes. It reconnects with backoff when the connection drops; hints
    sent meanwhile are lost, which waiters absorb by re-reading the state on timeout.
    """

    def __init__(
        self,
        dsn: str,
        *,
        channel: str = CHANNEL,
        application_name: str = "qrgate-events",
        heartbeat: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = libpq_dsn(dsn)
        self._channel = channel
        self._application_name = application_name
        self._heartbeat = heartbeat
        self._max_backoff = max_backoff
        self._hub = _Hub()
        self._task: asyncio.Task[None] | None = None
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    def publish(self, conn: Connection, *, topic: str, state: str) -> None:
        _check(topic, state)
        # NOTIFY is transactional: PostgreSQL sends it at COMMIT and drops it on ROLLBACK.
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": self._channel, "payload": f"{topic} {state}"},
        )

    def subscribe(self, topic: str) -> Subscription:
        return _Subscription(self._hub, topic)

    async def start(self) -> None:
        """Connect and LISTEN before returning, so later commits are heard (raises if the
        database cannot be reached); then keep listening in the background."""
        if self._task is not None:
            return
        self._listener = await self._listen()
        self._task = asyncio.create_task(self._run(), name="qrgate-events-listener")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Closed here, not in the task: a task cancelled before its first step never runs.
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(
            self._dsn,
            autocommit=True,
            application_name=self._application_name,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            # Let the kernel notice a peer that vanished without closing the socket.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _run(self) -> None:
        while True:
            conn = self._listener
            if conn is None:
                return
            try:
                async for notify in conn.notifies(timeout=self._heartbeat):
                    self._dispatch(notify.payload)
                # A quiet period: prove the link still works, or fail into reconnecting.
                await conn.execute("SELECT 1")
            except psycopg.Error as error:
                # The class only: a driver's message may quote the connection string.
                _log.warning("event listener lost its connection (%s); reconnecting",
                             type(error).__name__)
                self._listener = None
                await conn.close()
                self._listener = await self._reconnect()

    async def _reconnect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        delay = 0.05
        while True:
            await asyncio.sleep(delay)
            try:
                conn = await self._listen()
            except psycopg.Error as error:
                # Said once when the connection was lost; each retry only at debug level.
                _log.debug("event listener cannot reconnect yet (%s)", type(error).__name__)
                delay = min(delay * 2, self._max_backoff)
            else:
                _log.info("event listener reconnected")
                return conn

    def _dispatch(self, payload: str) -> None:
        topic, _, state = payload.partition(" ")
        if topic and state:
            self._hub.deliver(topic, state)


def libpq_dsn(url: str) -> str:
    """A libpq URI for psycopg from a SQLAlchemy URL (drops the ``+psycopg`` driver)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def make_event_bus(database_url: str) -> EventBus:
    """The bus that matches the database: cross-node for PostgreSQL, local otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresEventBus(database_url)
    return InProcessEventBus()
