"""Event hints on real databases: delivered after commit, never after rollback."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qrgate.events import (
    EventBus,
    InProcessEventBus,
    PostgresEventBus,
    libpq_dsn,
    make_event_bus,
)
from qrgate.storage.audit import append_audit
from qrgate.storage.db import create_engine_for

pytestmark = pytest.mark.anyio


def new_topic() -> str:
    return secrets.token_hex(16)


async def in_thread(fn: Callable[[], object]) -> None:
    await anyio.to_thread.run_sync(fn)


def publish_committed(engine: Engine, bus: EventBus, topic: str, state: str) -> None:
    with engine.begin() as conn:
        bus.publish(conn, topic=topic, state=state)


@pytest.fixture
async def local_bus() -> AsyncIterator[InProcessEventBus]:
    bus = InProcessEventBus()
    await bus.start()
    yield bus
    await bus.close()


# --- in-process bus, on both databases ----------------------------------------------------


async def test_local_hint_arrives_after_commit_from_a_worker_thread(
    engine: Engine, local_bus: InProcessEventBus
) -> None:
    topic = new_topic()
    async with local_bus.subscribe(topic) as subscription:
        await in_thread(lambda: publish_committed(engine, local_bus, topic, "approved"))
        assert await subscription.next(5) == "approved"
        assert await subscription.next(0.05) is None


async def test_local_hint_waits_for_commit_and_sees_committed_state(
    engine: Engine, local_bus: InProcessEventBus
) -> None:
    topic = new_topic()
    in_transaction = threading.Event()
    may_commit = threading.Event()

    def change_state() -> None:
        with engine.begin() as conn:
            append_audit(conn, now=1.0, event="challenge.approved", reason="ok", challenge_id=topic)
            local_bus.publish(conn, topic=topic, state="approved")
            in_transaction.set()
            may_commit.wait(10)

    async with local_bus.subscribe(topic) as subscription, anyio.create_task_group() as tg:
        tg.start_soon(in_thread, change_state)
        await in_thread(lambda: in_transaction.wait(10))
        assert await subscription.next(0.2) is None
        may_commit.set()
        assert await subscription.next(5) == "approved"
        # Woken only once the commit is done: a fresh reader already sees the new row.
        with engine.connect() as reader:
            count = reader.execute(
                text("SELECT count(*) FROM audit_log WHERE challenge_id = :c"), {"c": topic}
            ).scalar_one()
            reader.rollback()
        assert count == 1


async def test_local_hint_is_dropped_on_rollback(
    engine: Engine, local_bus: InProcessEventBus
) -> None:
    topic = new_topic()

    def roll_back() -> None:
        with engine.connect() as conn:
            conn.begin()
            local_bus.publish(conn, topic=topic, state="approved")
            conn.rollback()
            # The same connection's next commit must not release the dropped hint.
            conn.begin()
            conn.commit()

    async with local_bus.subscribe(topic) as subscription:
        await in_thread(roll_back)
        assert await subscription.next(0.2) is None


async def test_local_hints_reach_every_subscriber_of_the_topic_only(
    engine: Engine, local_bus: InProcessEventBus
) -> None:
    topic, other = new_topic(), new_topic()
    async with (
        local_bus.subscribe(topic) as first,
        local_bus.subscribe(topic) as second,
        local_bus.subscribe(other) as unrelated,
    ):
        await in_thread(lambda: publish_committed(engine, local_bus, topic, "scanned"))
        await in_thread(lambda: publish_committed(engine, local_bus, topic, "approved"))
        assert [await first.next(5), await first.next(5)] == ["scanned", "approved"]
        assert [await second.next(5), await second.next(5)] == ["scanned", "approved"]
        assert await unrelated.next(0.05) is None


async def test_no_hints_after_leaving_the_subscription(
    engine: Engine, local_bus: InProcessEventBus
) -> None:
    topic = new_topic()
    async with local_bus.subscribe(topic) as subscription:
        pass
    await in_thread(lambda: publish_committed(engine, local_bus, topic, "approved"))
    assert await subscription.next(0.05) is None


async def test_bad_topics_are_refused(engine: Engine, local_bus: InProcessEventBus) -> None:
    with engine.begin() as conn:
        for topic, state in [("has space", "s"), ("", "s"), ("x" * 65, "s"), ("ok", "")]:
            with pytest.raises(ValueError):
                local_bus.publish(conn, topic=topic, state=state)


async def test_make_event_bus_picks_by_url() -> None:
    assert isinstance(make_event_bus("sqlite:////tmp/x.db"), InProcessEventBus)
    assert isinstance(
        make_event_bus("postgresql+psycopg://u@127.0.0.1/db"), PostgresEventBus
    )
    assert libpq_dsn("postgresql+psycopg://u:p@h:5/db?options=-csearch_path%3Dt") == (
        "postgresql://u:p@h:5/db?options=-csearch_path%3Dt"
    )


# --- PostgreSQL bus -------------------------------------------------------------------------


@pytest.fixture
def pg_engine(pg_admin_url: str) -> Iterator[Engine]:
    # NOTIFY is database-wide and these tests touch no tables: no schema needed.
    engine = create_engine_for(pg_admin_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def pg_nodes(pg_admin_url: str) -> AsyncIterator[tuple[PostgresEventBus, PostgresEventBus]]:
    name = f"qrgate-test-{secrets.token_hex(4)}"
    first = PostgresEventBus(pg_admin_url, application_name=f"{name}-a", heartbeat=1.0)
    second = PostgresEventBus(pg_admin_url, application_name=f"{name}-b", heartbeat=1.0)
    await first.start()
    try:
        await second.start()
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


async def test_hint_crosses_nodes_after_commit(
    pg_engine: Engine, pg_nodes: tuple[PostgresEventBus, PostgresEventBus]
) -> None:
    node_a, node_b = pg_nodes
    topic = new_topic()
    async with node_b.subscribe(topic) as remote, node_a.subscribe(topic) as local:
        await in_thread(lambda: publish_committed(pg_engine, node_a, topic, "approved"))
        assert await remote.next(5) == "approved"
        assert await local.next(5) == "approved"


async def test_pg_hint_waits_for_commit_and_drops_on_rollback(
    pg_engine: Engine, pg_nodes: tuple[PostgresEventBus, PostgresEventBus]
) -> None:
    node_a, node_b = pg_nodes
    topic = new_topic()
    async with node_b.subscribe(topic) as remote:
        with pg_engine.connect() as conn:
            conn.begin()
            node_a.publish(conn, topic=topic, state="denied")
            assert await remote.next(0.3) is None
            conn.rollback()
        assert await remote.next(0.3) is None

        with pg_engine.connect() as conn:
            conn.begin()
            node_a.publish(conn, topic=topic, state="approved")
            assert await remote.next(0.3) is None
            conn.commit()
        assert await remote.next(5) == "approved"


async def test_listener_reconnects_after_its_connection_is_killed(
    pg_engine: Engine,
    pg_nodes: tuple[PostgresEventBus, PostgresEventBus],
    pg_admin_url: str,
) -> None:
    node_a, node_b = pg_nodes
    topic = new_topic()
    async with node_b.subscribe(topic) as remote:
        with psycopg.connect(libpq_dsn(pg_admin_url), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE application_name = %s",
                (node_b._application_name,),
            ).fetchone()
        assert killed == (1,)
        # Hints sent while it is down are lost by design; keep nudging until one arrives.
        received = None
        with anyio.fail_after(15):
            while received is None:
                await in_thread(lambda: publish_committed(pg_engine, node_a, topic, "approved"))
                received = await remote.next(0.25)
        assert received == "approved"


async def test_start_fails_fast_without_a_database() -> None:
    bus = PostgresEventBus("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(psycopg.OperationalError):
        await bus.start()
    await bus.close()


def listener_connections(pg_admin_url: str, application_name: str) -> int:
    with psycopg.connect(libpq_dsn(pg_admin_url), autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            (application_name,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_close_stops_the_listener(pg_engine: Engine, pg_admin_url: str) -> None:
    name = f"qrgate-test-{secrets.token_hex(4)}"
    bus = PostgresEventBus(pg_admin_url, application_name=name, heartbeat=0.2)
    topic = new_topic()
    try:
        await bus.start()
        await bus.start()  # idempotent: still one listener
        assert await anyio.to_thread.run_sync(listener_connections, pg_admin_url, name) == 1
        async with bus.subscribe(topic) as subscription:
            await in_thread(lambda: publish_committed(pg_engine, bus, topic, "scanned"))
            assert await subscription.next(5) == "scanned"
            await bus.close()
            await bus.close()  # idempotent too
            # Closed: a hint committed now reaches no one, even after several heartbeats
            # (a listener left running would have reconnected by then) ...
            await in_thread(lambda: publish_committed(pg_engine, bus, topic, "approved"))
            assert await subscription.next(1.5) is None
        # ... and its connection is gone from the server.
        with anyio.fail_after(10):
            while await anyio.to_thread.run_sync(listener_connections, pg_admin_url, name):
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        assert await anyio.to_thread.run_sync(listener_connections, pg_admin_url, name) == 0
    finally:
        await bus.close()
