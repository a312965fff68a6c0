"""Writing an event to the outbox, inside the transaction of the decision it reports.

A decision site calls :func:`emit` with the connection of its own transaction, after the
statement that took the decision (or, for a failure's side effects, in the transaction
``qrgate.decisions.run_decision`` opens for them). The event's rows commit with the
decision or roll back with it: a committed decision always has its event, a rolled-back
one never does, and a crash between the commit and the delivery loses nothing, since the
rows wait in the database for any node to send them.

Events are recorded only for applications that have a webhook at the moment of the
decision. The audit log already keeps every decision for good; the outbox is a delivery
queue, and a bank wants no second copy of every user's activity kept for applications that
never asked for it (data minimisation), nor a new webhook flooded with a backlog of events
from before it existed. What it does want, no event lost once it configured one, holds
from that commit on.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select

from qrgate.accounts.tokens import new_id
from qrgate.runtime import Runtime
from qrgate.storage.models import webhook_events, webhooks
from qrgate.webhooks.catalogue import WebhookEvent

# The event bus topic that wakes delivery workers: in this process, and on PostgreSQL on
# every node (NOTIFY), once the transaction commits.
TOPIC = "webhooks"

# Built once: every decision asks, and most applications have no webhook.
_FOR_APP = select(webhooks.c.app_id).where(webhooks.c.app_id == bindparam("b_app"))
_FOR_ORG = select(webhooks.c.app_id).where(webhooks.c.org_id == bindparam("b_org"))
_INSERT = insert(webhook_events)


def emit(rt: Runtime, conn: Connection, event: WebhookEvent) -> int:
    """Record ``event`` for each application that receives it (its own, or every one of its
    organisation with a webhook); returns how many. ``conn`` must be in the transaction
    that takes the decision."""
    if event.app_id is not None:
        targets = list(conn.execute(_FOR_APP, {"b_app": event.app_id}).scalars())
    else:
        targets = list(conn.execute(_FOR_ORG, {"b_org": event.org_id}).scalars())
    if not targets:
        return 0
    conn.execute(_INSERT, [
        {"id": new_id(), "org_id": event.org_id, "app_id": app_id, "type": event.type.value,
         "data": event.data, "created_at": event.at, "state": "pending", "attempts": 0,
         "next_attempt_at": event.at}
        for app_id in targets
    ])
    rt.events.publish(conn, topic=TOPIC, state="due")
    return len(targets)
