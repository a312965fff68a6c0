"""``qrgate admin webhook``: an operator's view of applications' webhooks: set, show,
rotate the key, remove, list deliveries across the deployment, replay an event.

Run against the configured database like the other admin commands; a running server picks
up a replayed event at once on PostgreSQL (a NOTIFY hint), within a few seconds on SQLite.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from qrgate.cli.output import utc_time
from qrgate.cli.runtime import configured_runtime

if TYPE_CHECKING:
    from qrgate.accounts.directory import AppRecord
    from qrgate.runtime import Runtime
    from qrgate.webhooks.repository import Delivery, Endpoint

_ACTOR = "cli"


def _app(rt: Runtime, org_slug: str, business_id: str) -> AppRecord:
    from qrgate.accounts import directory

    with rt.read() as conn:
        org_id = directory.org_id_by_slug(conn, org_slug)
        return directory.get_app(conn, directory.app_id_by_business_id(
            conn, org_id=org_id, business_id=business_id))


def _echo(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def _time(at: float | None) -> str | None:
    return None if at is None else utc_time(at)


def _endpoint(endpoint: Endpoint, **extra: Any) -> dict[str, Any]:
    return {"url": endpoint.url, "created_at": utc_time(endpoint.created_at),
            "updated_at": utc_time(endpoint.updated_at),
            "previous_secret_expires_at": _time(endpoint.previous_expires_at), **extra}


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {"event_id": delivery.event_id, "org": delivery.org_slug,
            "business_id": delivery.business_id, "type": delivery.type,
            "state": delivery.state, "attempts": delivery.attempts,
            "created_at": utc_time(delivery.created_at),
            "next_attempt_at": (utc_time(delivery.next_attempt_at)
                                if delivery.state == "pending" else None),
            "last_attempt_at": _time(delivery.last_attempt_at),
            "delivered_at": _time(delivery.delivered_at),
            "last_status": delivery.last_status, "last_error": delivery.last_error,
            "data": delivery.data}


_org = click.option("--org", "org_slug", required=True, help="The organisation's slug.")
_business = click.option("--business-id", required=True, help="The application's business id.")


@click.group()
def webhook() -> None:
    """Applications' webhooks: where their events go, and what was delivered."""


@webhook.command("set")
@_org
@_business
@click.option("--url", required=True, help="The https URL that receives the events.")
def webhook_set(org_slug: str, business_id: str, url: str) -> None:
    """Send an application's events to URL. A new webhook's signing key (whsec_...) is
    printed once; an existing webhook keeps its key."""
    from qrgate.webhooks import manage

    with configured_runtime() as rt:
        endpoint, secret = manage.set_webhook(rt, app=_app(rt, org_slug, business_id), url=url,
                                              actor=_ACTOR)
    _echo(_endpoint(endpoint, secret=secret))


@webhook.command("show")
@_org
@_business
def webhook_show(org_slug: str, business_id: str) -> None:
    """An application's webhook (never its key)."""
    from qrgate.webhooks import repository

    with configured_runtime() as rt:
        app = _app(rt, org_slug, business_id)
        with rt.read() as conn:
            endpoint = repository.get_endpoint(conn, app.id)
    _echo(_endpoint(endpoint))


@webhook.command("rotate-secret")
@_org
@_business
def webhook_rotate(org_slug: str, business_id: str) -> None:
    """A new signing key, printed once; the old one also signs for a day."""
    from qrgate.webhooks import manage

    with configured_runtime() as rt:
        endpoint, secret = manage.rotate_secret(rt, app=_app(rt, org_slug, business_id),
                                                actor=_ACTOR)
    _echo(_endpoint(endpoint, secret=secret))


@webhook.command("delete")
@_org
@_business
def webhook_delete(org_slug: str, business_id: str) -> None:
    """Stop sending an application's events; those not delivered yet are dropped."""
    from qrgate.webhooks import manage

    with configured_runtime() as rt:
        manage.delete_webhook(rt, app=_app(rt, org_slug, business_id), actor=_ACTOR)
    _echo({"org": org_slug, "business_id": business_id, "deleted": True})


@webhook.command("deliveries")
@click.option("--org", "org_slug", default=None, help="Only this organisation's.")
@click.option("--business-id", default=None, help="Only this application's (with --org).")
@click.option("--state", type=click.Choice(["pending", "delivered", "failed"]), default=None,
              help="Only events in this state.")
@click.option("--failed", is_flag=True, help="Only failed events (--state failed).")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True,
              help="At most this many events.")
def webhook_deliveries(org_slug: str | None, business_id: str | None, state: str | None,
                       failed: bool, limit: int) -> None:
    """Events and their delivery, newest first (JSON; times in UTC)."""
    from qrgate.accounts import directory
    from qrgate.webhooks import repository

    if business_id is not None and org_slug is None:
        raise click.UsageError("--business-id needs --org")
    if failed and state not in (None, "failed"):
        raise click.UsageError("--failed and --state say different things")
    wanted: Any = "failed" if failed else state
    with configured_runtime() as rt:
        app_id = org_id = None
        if org_slug is not None and business_id is not None:
            app_id = _app(rt, org_slug, business_id).id
        with rt.read() as conn:
            if org_slug is not None:
                org_id = directory.org_id_by_slug(conn, org_slug)
            found = repository.list_deliveries(conn, app_id=app_id, org_id=org_id,
                                               state=wanted, limit=limit)
    _echo([_delivery(d) for d in found])


@webhook.command("replay")
@click.argument("event_id")
def webhook_replay(event_id: str) -> None:
    """Send event EVENT_ID again (same webhook-id), from its first attempt."""
    from qrgate.core import inputs
    from qrgate.webhooks import manage

    inputs.identifier(event_id, what="event id")
    with configured_runtime() as rt:
        delivery = manage.replay(rt, event_id=event_id, app=None, actor=_ACTOR)
    _echo({"event_id": delivery.event_id, "type": delivery.type, "state": delivery.state})
