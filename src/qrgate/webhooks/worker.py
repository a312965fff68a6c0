"""The background task that delivers the outbox, one per server process.

Started and stopped by the app's lifespan, like the key refresher. Each turn it looks
whether anything is due (a read: an idle poll takes no write lock), leases the due events
(:func:`qrgate.webhooks.repository.claim`), sends them at once, concurrently, and records
each attempt; then it sleeps until the next event falls due, a hint arrives
(an event committed in this process, or on PostgreSQL in any node), or ``POLL_SECONDS``
pass (SQLite processes hear no hints from each other, and hints can be lost).

Requests never wait for it: a decision only writes rows to the outbox. Database work runs
in worker threads, sending on the event loop. Stopping cancels the attempts in flight and
gives their leases back, so another node, or this one restarted, sends them again: an
attempt cut off may have reached the receiver, which is why delivery is at least once and
receivers deduplicate on ``webhook-id``. Times come from the runtime's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any, Final

from qrgate.errors import QrgateError
from qrgate.runtime import Runtime
from qrgate.storage.db import DATABASE_ERRORS, is_unavailable
from qrgate.webhooks import repository, signing
from qrgate.webhooks.manage import policy
from qrgate.webhooks.outbox import TOPIC
from qrgate.webhooks.repository import Delivery, Destination
from qrgate.webhooks.retry import Outcome, next_delay
from qrgate.webhooks.transport import TIMEOUT, Sender

POLL_SECONDS: Final = 5.0
# Longer than any attempt: a lease that ends finds its worker gone, not still sending.
LEASE_SECONDS: Final = 6 * TIMEOUT
BATCH: Final = 20
PRUNE_EVERY: Final = 3_600.0
# The shortest nap: with a test's clock, "due in 0 s" can stay true for a while.
MIN_NAP: Final = 0.05

log = logging.getLogger("qrgate.webhooks")


class WebhookWorker:
    def __init__(self, rt: Runtime, *, sender: Sender | None = None) -> None:
        self._rt = rt
        self._sender = sender or Sender(policy(rt))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pruned_at: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="qrgate-webhooks")

    async def close(self) -> None:
        """Stop: attempts in flight are cancelled and their leases given back; database
        work under way finishes first (its thread uses the engine about to be disposed)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._sender.close()

    async def _run(self) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            async with self._rt.events.subscribe(TOPIC) as hints:
                while not stopping.done():
                    # Subscribed first, then read: an event committed in between is seen.
                    nap = await self._turn(stopping)
                    hint = asyncio.ensure_future(hints.next(nap))
                    await asyncio.wait({hint, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    await _cancelled(hint)
        finally:
            await _cancelled(stopping)

    async def _turn(self, stopping: asyncio.Future[Any]) -> float:
        """Deliver everything due; returns how long to sleep. Never raises: a loop that
        dies would stop every delivery silently."""
        try:
            while not stopping.done():
                # Read first: an idle poll takes no write lock (SQLite has one for all).
                due = await asyncio.to_thread(self._next_due)
                if due is None or due > self._rt.clock():
                    break
                owner = secrets.token_hex(16)
                claimed, destinations = await asyncio.to_thread(self._claim, owner)
                if not claimed:
                    break  # another node took them
                await self._deliver(claimed, destinations, owner, stopping)
            await asyncio.to_thread(self._prune)
            due = await asyncio.to_thread(self._next_due)
        except DATABASE_ERRORS as error:
            if is_unavailable(error):
                # Said once for the whole outage, with the requests' 503s, not every turn.
                self._rt.db_health.failed(error)
            else:
                # The type only: a driver's message may quote statement parameters.
                log.warning("webhook delivery turn failed, database error (%s)",
                            type(error).__name__)
            return POLL_SECONDS
        except Exception:
            # The worker outlives any one turn: an unforeseen error here must not end
            # delivery for the whole process. Nothing is lost: the events stay in the
            # outbox, their leases expire, and the next turn takes them again.
            log.exception("webhook delivery turn failed")
            return POLL_SECONDS
        if due is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(MIN_NAP, due - self._rt.clock()))

    def _claim(self, owner: str) -> tuple[list[Delivery], dict[int, Destination]]:
        rt = self._rt
        now = rt.clock()
        with rt.engine.begin() as conn:
            claimed = repository.claim(conn, owner=owner, now=now, lease=LEASE_SECONDS,
                                       limit=BATCH)
            if not claimed:
                return [], {}
            try:
                found = repository.destinations(conn, box=rt.box,
                                                app_ids={d.app_id for d in claimed}, now=now)
            except QrgateError as error:
                # decryption_failed: this node's KEK is not the one that sealed the keys.
                # Leave the events to nodes that can sign them; the lease hands them over.
                log.error("webhook keys cannot be opened on this node: %s", error.code)
                return [], {}
        return claimed, found

    async def _deliver(self, claimed: list[Delivery], found: dict[int, Destination],
                       owner: str, stopping: asyncio.Future[Any]) -> None:
        sends = [(asyncio.ensure_future(self._attempt(d, found.get(d.app_id))), d)
                 for d in claimed]
        waiting: set[asyncio.Future[Any]] = {task for task, _ in sends}
        while waiting and not stopping.done():
            done, _ = await asyncio.wait({*waiting, stopping},
                                         return_when=asyncio.FIRST_COMPLETED)
            waiting -= done
        for task in waiting:
            await _cancelled(task)
        results = [(delivery, task.result()) for task, delivery in sends
                   if task not in waiting]
        unsent = [delivery.event_id for task, delivery in sends if task in waiting]
        await asyncio.to_thread(self._record, results, unsent, owner)

    async def _attempt(self, delivery: Delivery, destination: Destination | None) -> Outcome:
        if destination is None:
            # Removed since the claim, which removed its events too: nothing is recorded.
            return Outcome(error="the webhook was removed")
        payload = signing.body(event_type=delivery.type, occurred_at=delivery.created_at,
                               data=delivery.data)
        headers = signing.headers(destination.keys, msg_id=delivery.event_id,
                                  timestamp=int(self._rt.clock()), payload=payload)
        return await self._sender.post(destination.url, headers=headers, body=payload)

    def _record(self, results: list[tuple[Delivery, Outcome]], unsent: list[str],
                owner: str) -> None:
        rt = self._rt
        now = rt.clock()
        retries = rt.settings.webhook_retries
        with rt.engine.begin() as conn:
            for delivery, outcome in results:
                attempts = delivery.attempts + 1
                delay = None if outcome.delivered else next_delay(
                    attempts=attempts, retries=retries, outcome=outcome,
                    random_fraction=int.from_bytes(rt.random(4), "big") / 2**32)
                if not repository.finish(conn, delivery=delivery, owner=owner,
                                         outcome=outcome, next_delay=delay, now=now):
                    continue
                _log_attempt(delivery, outcome, attempts=attempts, delay=delay)
            if unsent:
                repository.release(conn, event_ids=unsent, owner=owner)

    def _next_due(self) -> float | None:
        with self._rt.read() as conn:
            return repository.next_due(conn)

    def _prune(self) -> None:
        now = self._rt.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        keep = self._rt.settings.webhook_retention_days * 86_400
        with self._rt.engine.begin() as conn:
            pruned = repository.prune(conn, before=now - keep)
        if pruned:
            log.info("forgot %d webhook events older than %d days", pruned,
                     self._rt.settings.webhook_retention_days)


def _log_attempt(delivery: Delivery, outcome: Outcome, *, attempts: int,
                 delay: float | None) -> None:
    """One line per attempt: the event, its application and what happened; never the URL
    (it may carry a token), the key or the signature."""
    what = (delivery.event_id, delivery.type, delivery.app_id, attempts, outcome.describe())
    if outcome.delivered:
        log.info("webhook %s (%s) to application %d delivered, attempt %d: %s", *what)
    elif delay is None:
        log.warning("webhook %s (%s) to application %d failed for good after attempt %d: %s",
                    *what)
    else:
        log.info("webhook %s (%s) to application %d, attempt %d failed: %s; next in %.0f s",
                 *what, delay)


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
