"""Managing an application's webhook, as the relying party (API) or an operator (command
line) does it: set, rotate the key, remove, replay an event. Each change is audited like
every other, in the transaction that makes it; the audit entry names the URL's host only
(a URL may carry a token in its query) and never the key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import Connection

from qrgate.accounts.directory import AppRecord
from qrgate.decisions import AuditSubject, run_decision
from qrgate.runtime import Runtime
from qrgate.webhooks import repository, signing
from qrgate.webhooks.destinations import DestinationPolicy
from qrgate.webhooks.outbox import TOPIC
from qrgate.webhooks.repository import Delivery, Endpoint


def policy(rt: Runtime) -> DestinationPolicy:
    return DestinationPolicy(allow_loopback=rt.settings.webhook_allow_loopback,
                             allow_private=rt.settings.webhook_allow_private)


def _subject(event: str, app: AppRecord, actor: str, **detail: object) -> AuditSubject:
    return AuditSubject(event=event, org_id=app.org_id, app_id=app.id,
                        detail={"actor": actor, **detail})


def set_webhook(rt: Runtime, *, app: AppRecord, url: str,
                actor: str) -> tuple[Endpoint, str | None]:
    """Create the application's webhook (with a new key, returned once) or move it."""
    policy(rt).check_url(url)
    now = rt.clock()
    subject = _subject("webhook.set", app, actor, host=urlsplit(url).hostname or "")
    return run_decision(rt, subject=subject, now=now, work=lambda conn: (
        repository.configure(conn, box=rt.box, app_id=app.id, org_id=app.org_id, url=url,
                             now=now, random=rt.random(signing.SECRET_BYTES)), "configured"))


def rotate_secret(rt: Runtime, *, app: AppRecord, actor: str) -> tuple[Endpoint, str]:
    now = rt.clock()
    return run_decision(rt, subject=_subject("webhook.rotate_secret", app, actor), now=now,
                        work=lambda conn: (repository.rotate_secret(
                            conn, box=rt.box, app_id=app.id, now=now,
                            random=rt.random(signing.SECRET_BYTES)), "rotated"))


def delete_webhook(rt: Runtime, *, app: AppRecord, actor: str) -> None:
    def work(conn: Connection) -> tuple[None, str]:
        repository.delete_endpoint(conn, app_id=app.id)
        return None, "deleted"

    run_decision(rt, subject=_subject("webhook.delete", app, actor), now=rt.clock(), work=work)


def replay(rt: Runtime, *, event_id: str, app: AppRecord | None, actor: str) -> Delivery:
    """Send an event again from its first attempt. ``app``: only one of its own events
    (the API); None: any (an operator)."""
    now = rt.clock()
    subject = AuditSubject(event="webhook.replay", detail={"actor": actor,
                                                           "event_id": event_id})
    if app is not None:
        subject.org_id, subject.app_id = app.org_id, app.id

    def work(conn: Connection) -> tuple[Delivery, str]:
        delivery = repository.replay(conn, event_id=event_id,
                                     app_id=None if app is None else app.id, now=now)
        subject.org_id, subject.app_id = delivery.org_id, delivery.app_id
        rt.events.publish(conn, topic=TOPIC, state="due")
        return delivery, "replayed"

    return run_decision(rt, subject=subject, now=now, work=work)
