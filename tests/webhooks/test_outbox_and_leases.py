"""The outbox: an event commits with its decision or not at all, and a row is leased to one
worker at a time, on every node, whatever the race; a lease left by a dead worker expires
and the event is sent again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from qrgate.accounts import directory
from qrgate.config import Settings
from qrgate.core.policy import AppPolicy
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import Rejected
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage.models import webhook_events
from qrgate.webhooks import outbox, repository
from qrgate.webhooks.catalogue import EventType, WebhookEvent
from qrgate.webhooks.retry import Outcome
from support.stack import Stack
from support.webhook_receiver import Receiver, wait_until

NOW = 1_800_000_000.0
LEASE = 60.0


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(data_dir=tmp_path / "data", database_url=database_url))
    yield runtime
    runtime.close()


def an_app_with_a_webhook(rt: Runtime, slug: str = "bank") -> tuple[int, int]:
    with rt.engine.begin() as conn:
        org_id = directory.create_org(conn, slug=slug, name=slug, now=NOW)
        app_id = directory.create_app(conn, org_id=org_id, business_id="web", name="Web",
                                      origin=None, policy=AppPolicy(), now=NOW)
        repository.configure(conn, box=rt.box, app_id=app_id, org_id=org_id,
                             url="https://hooks.bank.example/", now=NOW,
                             random=rt.random(32))
    return org_id, app_id


def event(org_id: int, app_id: int | None) -> WebhookEvent:
    return WebhookEvent(type=EventType.USER_LOCKED, org_id=org_id, app_id=app_id, at=NOW,
                        data={"login": "alice", "reason": "too_many_failures"})


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_events)).scalar_one())


def test_an_event_commits_with_its_decision_or_not_at_all(rt: Runtime) -> None:
    org_id, app_id = an_app_with_a_webhook(rt)

    def work(conn: Any) -> tuple[None, str]:
        outbox.emit(rt, conn, event(org_id, app_id))  # the decision's own event...
        raise Rejected("a later check fails", code="wrong_user")  # ...rolls back with it

    def after(conn: Any, error: Any) -> None:
        outbox.emit(rt, conn, event(org_id, None))  # a failure's side effect commits

    with pytest.raises(Rejected):
        run_decision(rt, subject=AuditSubject(event="test"), now=NOW, work=work,
                     on_failure=after)
    assert count(rt.engine) == 1
    with pytest.raises(RuntimeError), rt.engine.begin() as conn:
        outbox.emit(rt, conn, event(org_id, app_id))
        raise RuntimeError("crash before the commit")
    assert count(rt.engine) == 1
    run_decision(rt, subject=AuditSubject(event="test"), now=NOW,
                 work=lambda conn: (outbox.emit(rt, conn, event(org_id, app_id)), "ok"))
    assert count(rt.engine) == 2


def test_without_a_webhook_nothing_is_recorded(rt: Runtime) -> None:
    with rt.engine.begin() as conn:
        org_id = directory.create_org(conn, slug="shop", name="Shop", now=NOW)
        app_id = directory.create_app(conn, org_id=org_id, business_id="web", name="Web",
                                      origin=None, policy=AppPolicy(), now=NOW)
        assert outbox.emit(rt, conn, event(org_id, app_id)) == 0
        assert outbox.emit(rt, conn, event(org_id, None)) == 0
    assert count(rt.engine) == 0


def claim_together(make_engine: Callable[[], Engine], *, workers: int,
                   now: float) -> list[list[str]]:
    """``workers`` claims at the same instant, each on an engine of its own (a node)."""
    engines = [make_engine() for _ in range(workers)]
    barrier = threading.Barrier(workers)
    claimed: list[list[str]] = [[] for _ in range(workers)]

    def claim(index: int) -> None:
        barrier.wait()
        with engines[index].begin() as conn:
            claimed[index] = [d.event_id for d in repository.claim(
                conn, owner=f"worker{index}", now=now, lease=LEASE, limit=50)]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return claimed


def test_workers_claiming_at_once_never_share_a_row(
        rt: Runtime, make_engine: Callable[[], Engine]) -> None:
    org_id, app_id = an_app_with_a_webhook(rt)
    with rt.engine.begin() as conn:
        for _ in range(120):
            outbox.emit(rt, conn, event(org_id, app_id))
    claimed = claim_together(make_engine, workers=4, now=NOW)
    taken = Counter(event_id for ids in claimed for event_id in ids)
    assert max(taken.values()) == 1, "a row was leased to two workers"
    # And a second round picks up the rest, still once each.
    claimed += claim_together(make_engine, workers=4, now=NOW)
    taken = Counter(event_id for ids in claimed for event_id in ids)
    assert len(taken) == 120 and set(taken.values()) == {1}


def test_a_lease_left_by_a_dead_worker_expires(rt: Runtime) -> None:
    org_id, app_id = an_app_with_a_webhook(rt)
    with rt.engine.begin() as conn:
        outbox.emit(rt, conn, event(org_id, app_id))
    with rt.engine.begin() as conn:
        (dead,) = repository.claim(conn, owner="dead", now=NOW, lease=LEASE, limit=10)
        assert repository.claim(conn, owner="alive", now=NOW + LEASE - 1, lease=LEASE,
                                limit=10) == []
        assert repository.next_due(conn) == NOW + LEASE
        (again,) = repository.claim(conn, owner="alive", now=NOW + LEASE, lease=LEASE,
                                    limit=10)
        assert again.event_id == dead.event_id
        # The dead worker's late answer is not recorded; the live one's is.
        sent = Outcome(status=200)
        assert not repository.finish(conn, delivery=dead, owner="dead", outcome=sent,
                                     next_delay=None, now=NOW + LEASE)
        assert repository.finish(conn, delivery=again, owner="alive", outcome=sent,
                                 next_delay=None, now=NOW + LEASE)
        (done,) = repository.list_deliveries(conn, app_id=app_id)
    assert (done.state, done.attempts, done.delivered_at) == ("delivered", 1, NOW + LEASE)


def test_delivered_and_failed_events_are_forgotten_after_the_retention(rt: Runtime) -> None:
    org_id, app_id = an_app_with_a_webhook(rt)
    with rt.engine.begin() as conn:
        for _ in range(3):
            outbox.emit(rt, conn, event(org_id, app_id))
        first, second, _ = repository.claim(conn, owner="w", now=NOW, lease=LEASE, limit=10)
        repository.finish(conn, delivery=first, owner="w", outcome=Outcome(status=204),
                          next_delay=None, now=NOW)
        repository.finish(conn, delivery=second, owner="w", outcome=Outcome(status=500),
                          next_delay=None, now=NOW)
        assert repository.prune(conn, before=NOW) == 0
        # The pending one stays whatever its age: it is still owed to the receiver.
        assert repository.prune(conn, before=NOW + 1) == 2
    assert count(rt.engine) == 1


def test_two_nodes_deliver_each_event_once(stack_factory: Any, receiver: Receiver) -> None:
    """Both nodes' workers race for the same outbox; a slow receiver widens every window
    in which a second node could pick up a row already being sent."""
    first: Stack = stack_factory(webhook_allow_loopback=True)
    second: Stack = stack_factory(join=first, webhook_allow_loopback=True)
    first.enrolled_phone("alice")  # before the webhook: no event of its own
    first.rp.set_webhook(receiver.url)
    receiver.delay = 0.1
    stack_of = (first, second)
    started = []
    for index in range(24):
        node = stack_of[index % 2]
        challenge, _ = node.start("alice")
        started.append(challenge["challenge_id"])
        node.rp.cancel(challenge["challenge_id"])
    wait_until(lambda: {d["state"] for d in first.rp.webhook_deliveries(limit=100)} == {
        "delivered"} and len(receiver.delivered()) >= 24, timeout=30, what="24 events")
    per_event = Counter(r.id for r in receiver.received)
    assert len(per_event) == 24 and set(per_event.values()) == {1}, per_event
    assert receiver.overlaps == 0
    assert sorted(r.event["data"]["challenge_id"] for r in receiver.delivered()) == sorted(
        started)
    assert len(first.rp.webhook_deliveries(limit=100)) == 24
