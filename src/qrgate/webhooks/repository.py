"""SQL for webhooks: each application's destination and key, and the outbox's deliveries.

The delivery workers of every node share the outbox through leases. :func:`claim` takes
due rows with one ``UPDATE ... WHERE id IN (due rows) AND <still due, lease free or
expired> RETURNING``: on SQLite writers run one at a time; on PostgreSQL the inner select
skips rows another claim has locked (``FOR UPDATE SKIP LOCKED``) and the outer conditions
are checked again on the locked row, so a row is leased to one worker at a time whatever
the race. A worker finishes a row only while it still owns the lease (:func:`finish`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from qrgate.core.aead import SecretBox
from qrgate.errors import NotFound
from qrgate.storage.models import applications as apps
from qrgate.storage.models import organisations, webhook_events, webhooks
from qrgate.webhooks import signing
from qrgate.webhooks.retry import Outcome

DeliveryState = Literal["pending", "delivered", "failed"]
# After a rotation the previous key signs too, for a day: time for every receiver to switch.
ROTATION_GRACE = 86_400.0
MAX_LIST = 200
MAX_ERROR = 200


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    app_id: int
    org_id: int
    url: str
    created_at: float
    updated_at: float
    previous_expires_at: float | None


@dataclass(frozen=True, kw_only=True)
class Delivery:
    event_id: str
    org_id: int
    app_id: int
    type: str
    data: dict[str, Any]
    created_at: float
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    last_attempt_at: float | None
    delivered_at: float | None
    last_status: int | None
    last_error: str | None
    # Where it goes, for operators' listings (the API lists one application's own).
    org_slug: str = ""
    business_id: str = ""


@dataclass(frozen=True, kw_only=True)
class Destination:
    """What sending needs: the URL and the keys that sign (current first)."""

    url: str
    keys: tuple[bytes, ...] = field(repr=False)


def _context(app_id: int, *, previous: bool = False) -> bytes:
    column = "previous_secret" if previous else "secret"
    return f"webhooks.{column}:{app_id}".encode()


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(app_id=row.app_id, org_id=row.org_id, url=row.url,
                    created_at=row.created_at, updated_at=row.updated_at,
                    previous_expires_at=row.previous_expires_at)


def find_endpoint(conn: Connection, app_id: int) -> Endpoint | None:
    row = conn.execute(select(webhooks).where(webhooks.c.app_id == app_id)).first()
    return None if row is None else _endpoint(row)


def get_endpoint(conn: Connection, app_id: int) -> Endpoint:
    endpoint = find_endpoint(conn, app_id)
    if endpoint is None:
        raise NotFound("this application has no webhook", code="webhook_not_found")
    return endpoint


def configure(conn: Connection, *, box: SecretBox, app_id: int, org_id: int, url: str,
              now: float, random: bytes) -> tuple[Endpoint, str | None]:
    """Point the application's webhook at ``url``. A new webhook gets a key, returned as its
    ``whsec_`` text (the one time it is seen); an existing one keeps its key (None)."""
    changed = conn.execute(update(webhooks).where(webhooks.c.app_id == app_id)
                           .values(url=url, updated_at=now))
    if changed.rowcount == 1:
        return get_endpoint(conn, app_id), None
    key = signing.new_key(random)
    conn.execute(insert(webhooks).values(
        app_id=app_id, org_id=org_id, url=url,
        secret_enc=box.seal(key, context=_context(app_id)), previous_secret_enc=None,
        previous_expires_at=None, created_at=now, updated_at=now))
    return get_endpoint(conn, app_id), signing.secret_text(key)


def rotate_secret(conn: Connection, *, box: SecretBox, app_id: int, now: float,
                  random: bytes) -> tuple[Endpoint, str]:
    """A new key; the current one keeps signing beside it for ``ROTATION_GRACE``."""
    row = conn.execute(select(webhooks.c.secret_enc).where(webhooks.c.app_id == app_id)).first()
    if row is None:
        raise NotFound("this application has no webhook", code="webhook_not_found")
    current = box.open(row.secret_enc, context=_context(app_id))
    key = signing.new_key(random)
    conn.execute(update(webhooks).where(webhooks.c.app_id == app_id).values(
        secret_enc=box.seal(key, context=_context(app_id)),
        previous_secret_enc=box.seal(current, context=_context(app_id, previous=True)),
        previous_expires_at=now + ROTATION_GRACE, updated_at=now))
    return get_endpoint(conn, app_id), signing.secret_text(key)


def delete_endpoint(conn: Connection, *, app_id: int) -> None:
    """Remove the webhook and its outbox: events nobody will receive are not kept."""
    get_endpoint(conn, app_id)
    conn.execute(delete(webhook_events).where(webhook_events.c.app_id == app_id))
    conn.execute(delete(webhooks).where(webhooks.c.app_id == app_id))


def destinations(conn: Connection, *, box: SecretBox, app_ids: Iterable[int],
                 now: float) -> dict[int, Destination]:
    rows = conn.execute(select(webhooks).where(webhooks.c.app_id.in_(set(app_ids))))
    found = {}
    for row in rows:
        keys = [box.open(row.secret_enc, context=_context(row.app_id))]
        if (row.previous_secret_enc is not None and row.previous_expires_at is not None
                and now < row.previous_expires_at):
            keys.append(box.open(row.previous_secret_enc,
                                 context=_context(row.app_id, previous=True)))
        found[row.app_id] = Destination(url=row.url, keys=tuple(keys))
    return found


# --- deliveries ---------------------------------------------------------------------------


_COLUMNS = (webhook_events.c.id, webhook_events.c.org_id, webhook_events.c.app_id,
            webhook_events.c.type, webhook_events.c.data, webhook_events.c.created_at,
            webhook_events.c.state, webhook_events.c.attempts, webhook_events.c.next_attempt_at,
            webhook_events.c.last_attempt_at, webhook_events.c.delivered_at,
            webhook_events.c.last_status, webhook_events.c.last_error)


def _delivery(row: Any, *, org_slug: str = "", business_id: str = "") -> Delivery:
    return Delivery(
        event_id=row.id, org_id=row.org_id, app_id=row.app_id, type=row.type,
        data=dict(row.data), created_at=row.created_at, state=row.state,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at, delivered_at=row.delivered_at,
        last_status=row.last_status, last_error=row.last_error, org_slug=org_slug,
        business_id=business_id)


def list_deliveries(conn: Connection, *, app_id: int | None = None, org_id: int | None = None,
                    state: DeliveryState | None = None, limit: int = 50) -> list[Delivery]:
    """Newest first, with the organisation's slug and the application's business id."""
    stmt = (select(*_COLUMNS, organisations.c.slug, apps.c.business_id)
            .join(apps, apps.c.id == webhook_events.c.app_id)
            .join(organisations, organisations.c.id == webhook_events.c.org_id)
            .order_by(webhook_events.c.created_at.desc(), webhook_events.c.id))
    if app_id is not None:
        stmt = stmt.where(webhook_events.c.app_id == app_id)
    if org_id is not None:
        stmt = stmt.where(webhook_events.c.org_id == org_id)
    if state is not None:
        stmt = stmt.where(webhook_events.c.state == state)
    rows = conn.execute(stmt.limit(min(max(limit, 1), MAX_LIST)))
    return [_delivery(row, org_slug=row.slug, business_id=row.business_id) for row in rows]


def replay(conn: Connection, *, event_id: str, app_id: int | None, now: float) -> Delivery:
    """Send the event again, from its first attempt, with the same ``webhook-id``. A lease
    is left alone: a worker sending it right now finishes, and the event counts as
    delivered if that attempt succeeds. ``app_id``: only that application's event."""
    stmt = update(webhook_events).where(webhook_events.c.id == event_id)
    if app_id is not None:
        stmt = stmt.where(webhook_events.c.app_id == app_id)
    row = conn.execute(stmt.values(state="pending", attempts=0, next_attempt_at=now,
                                   delivered_at=None).returning(*_COLUMNS)).first()
    if row is None:
        raise NotFound("no such webhook event", code="event_not_found")
    return _delivery(row)


def _due(now: float) -> Any:
    return (webhook_events.c.state == "pending", webhook_events.c.next_attempt_at <= now,
            or_(webhook_events.c.lease_until.is_(None), webhook_events.c.lease_until <= now))


def claim(conn: Connection, *, owner: str, now: float, lease: float,
          limit: int) -> list[Delivery]:
    """Lease up to ``limit`` due events to ``owner`` until ``now + lease``."""
    due = _due(now)
    inner = (select(webhook_events.c.id).where(*due).order_by(webhook_events.c.next_attempt_at)
             .limit(limit).with_for_update(skip_locked=True))
    rows = conn.execute(update(webhook_events)
                        .where(webhook_events.c.id.in_(inner.scalar_subquery()), *due)
                        .values(lease_owner=owner, lease_until=now + lease)
                        .returning(*_COLUMNS)).all()
    return sorted((_delivery(row) for row in rows), key=lambda d: d.next_attempt_at)


def finish(conn: Connection, *, delivery: Delivery, owner: str, outcome: Outcome,
           next_delay: float | None, now: float) -> bool:
    """Record one attempt of a leased event and free the lease: delivered, retried after
    ``next_delay`` seconds, or failed (``next_delay`` None). False if the lease was lost
    (it expired and another worker took the row, or the webhook was removed)."""
    values: dict[str, Any] = {
        "attempts": webhook_events.c.attempts + 1, "last_attempt_at": now,
        "last_status": outcome.status, "lease_owner": None, "lease_until": None,
        "last_error": None if outcome.error is None else outcome.error[:MAX_ERROR]}
    if outcome.delivered:
        values.update(state="delivered", delivered_at=now)
    elif next_delay is None:
        values.update(state="failed")
    else:
        values.update(next_attempt_at=now + next_delay)
    result = conn.execute(update(webhook_events)
                          .where(webhook_events.c.id == delivery.event_id,
                                 webhook_events.c.lease_owner == owner)
                          .values(**values))
    return result.rowcount == 1


def release(conn: Connection, *, event_ids: Iterable[str], owner: str) -> None:
    """Give leased events back unsent (the server is stopping): no attempt is counted."""
    conn.execute(update(webhook_events)
                 .where(webhook_events.c.id.in_(list(event_ids)),
                        webhook_events.c.lease_owner == owner)
                 .values(lease_owner=None, lease_until=None))


def next_due(conn: Connection) -> float | None:
    """When the earliest pending event falls due (or its lease ends), None if none waits."""
    pending = webhook_events.c.state == "pending"
    earliest = conn.execute(select(func.min(webhook_events.c.next_attempt_at))
                            .where(pending, webhook_events.c.lease_until.is_(None))).scalar()
    leased = conn.execute(select(func.min(webhook_events.c.lease_until))
                          .where(pending, webhook_events.c.lease_until.is_not(None))).scalar()
    times = [float(t) for t in (earliest, leased) if t is not None]
    return min(times) if times else None


def prune(conn: Connection, *, before: float) -> int:
    """Forget delivered and failed events that happened before ``before``."""
    result = conn.execute(delete(webhook_events).where(
        webhook_events.c.state.in_(("delivered", "failed")),
        webhook_events.c.created_at < before))
    return int(result.rowcount)
