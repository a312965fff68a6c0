"""Webhooks over HTTP (``/v1/webhook``): a relying party configures its application's
webhook with its API key, sees what was delivered and replays an event. The events
themselves are documented as the OpenAPI document's ``webhooks`` (:func:`document_events`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from qrgate.http import schemas_webhooks as wire
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.http.openapi import API_KEY, documented
from qrgate.http.schemas import IdPath, Limit
from qrgate.webhooks import manage, repository
from qrgate.webhooks.catalogue import EventType
from qrgate.webhooks.repository import Delivery, Endpoint

router = APIRouter(prefix="/v1/webhook", tags=["webhooks"])


def webhook_out(endpoint: Endpoint, *, secret: str | None = None) -> wire.WebhookOut:
    return wire.WebhookOut(url=endpoint.url, created_at=endpoint.created_at,
                           updated_at=endpoint.updated_at, secret=secret,
                           previous_secret_expires_at=endpoint.previous_expires_at)


def delivery_out(delivery: Delivery) -> wire.DeliveryOut:
    return wire.DeliveryOut(
        event_id=delivery.event_id, type=delivery.type, state=delivery.state,
        attempts=delivery.attempts, created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
        last_attempt_at=delivery.last_attempt_at, delivered_at=delivery.delivered_at,
        last_status=delivery.last_status, last_error=delivery.last_error, data=delivery.data)


@router.put("", response_model=wire.WebhookOut,
            summary="Send this application's events to a URL; a new webhook's key is shown once",
            **documented(auth=API_KEY))
async def set_webhook(request: Request, body: wire.WebhookIn) -> wire.WebhookOut:
    """Creates the webhook with a new signing key (`secret`, shown only now), or points an
    existing one at another URL and keeps its key (`secret` null). A URL that may not be
    a destination is refused with `bad_webhook_url` (422)."""
    rt = runtime_of(request)

    def run() -> wire.WebhookOut:
        app = authenticate_app(rt, request.headers)
        endpoint, secret = manage.set_webhook(rt, app=app, url=body.url, actor="api")
        return webhook_out(endpoint, secret=secret)

    return await offload(rt, run)


@router.get("", response_model=wire.WebhookOut, summary="This application's webhook (no key)",
            **documented(auth=API_KEY, errors=(404,)))
async def get_webhook(request: Request) -> wire.WebhookOut:
    rt = runtime_of(request)

    def run() -> wire.WebhookOut:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            return webhook_out(repository.get_endpoint(conn, app.id))

    return await offload(rt, run)


@router.delete("", status_code=204, response_class=Response,
               summary="Stop sending events; those not delivered yet are dropped",
               **documented(auth=API_KEY, errors=(404,)))
async def delete_webhook(request: Request) -> Response:
    rt = runtime_of(request)

    def run() -> None:
        manage.delete_webhook(rt, app=authenticate_app(rt, request.headers), actor="api")

    await offload(rt, run)
    return Response(status_code=204)


@router.post("/rotate-secret", response_model=wire.WebhookOut,
             summary="A new signing key, shown once; the old one also signs for a day",
             **documented(auth=API_KEY, errors=(404,)))
async def rotate_secret(request: Request) -> wire.WebhookOut:
    rt = runtime_of(request)

    def run() -> wire.WebhookOut:
        app = authenticate_app(rt, request.headers)
        endpoint, secret = manage.rotate_secret(rt, app=app, actor="api")
        return webhook_out(endpoint, secret=secret)

    return await offload(rt, run)


@router.get("/deliveries", response_model=wire.Deliveries,
            summary="This application's events and their delivery, newest first",
            **documented(auth=API_KEY))
async def list_deliveries(request: Request, state: wire.DeliveryState | None = None,
                          limit: Limit = 50) -> wire.Deliveries:
    rt = runtime_of(request)

    def run() -> wire.Deliveries:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            found = repository.list_deliveries(conn, app_id=app.id, state=state, limit=limit)
        return wire.Deliveries(items=[delivery_out(d) for d in found])

    return await offload(rt, run)


@router.post("/deliveries/{event_id}/replay", status_code=202, response_model=wire.DeliveryOut,
             summary="Send an event again (same webhook-id), from its first attempt",
             **documented(auth=API_KEY, errors=(404,)))
async def replay(request: Request, event_id: IdPath) -> wire.DeliveryOut:
    rt = runtime_of(request)

    def run() -> wire.DeliveryOut:
        app = authenticate_app(rt, request.headers)
        return delivery_out(manage.replay(rt, event_id=event_id, app=app, actor="api"))

    return await offload(rt, run)


_EVENT_MODELS: dict[type[BaseModel], tuple[EventType, ...]] = {
    wire.ConfirmEvent: (EventType.CONFIRM_APPROVED, EventType.CONFIRM_DENIED,
                        EventType.CONFIRM_REJECTED),
    wire.TxsignEvent: (EventType.TXSIGN_SIGNED, EventType.TXSIGN_REJECTED),
    wire.GridcardEvent: (EventType.GRIDCARD_AUTHENTICATED, EventType.GRIDCARD_FAILED),
    wire.DeviceEvent: (EventType.DEVICE_ADDED, EventType.DEVICE_REMOVED,
                       EventType.DEVICE_FROZEN, EventType.DEVICE_UNFROZEN),
    wire.UserEvent: (EventType.USER_LOCKED, EventType.USER_FROZEN, EventType.USER_UNFROZEN),
    wire.TokenEvent: (EventType.TOKEN_LOCKED,),
    wire.ReportEvent: (EventType.REPORT_CREATED,),
}

_HEADERS_DOC = (
    "Headers (Standard Webhooks): `webhook-id` (the event id, the same on every attempt: "
    "deduplicate on it), `webhook-timestamp` (the attempt's Unix seconds) and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed by "
    "the base64-decoded part of `whsec_...`; during a key rotation one per key, space "
    "separated). Answer 2xx within 10 s; anything else is retried.")


def document_events(app: FastAPI) -> None:
    """Each event type as an OpenAPI ``webhooks`` entry: what qrgate POSTs to the URL."""
    for model, types in _EVENT_MODELS.items():
        for event_type in types:
            summary = event_type.value

            async def receive(body: BaseModel) -> None:
                """Documentation only: qrgate sends, the relying party receives."""

            # The body's model differs per event; FastAPI reads it from the annotations.
            receive.__annotations__ = {"body": model, "return": None}
            app.webhooks.add_api_route(
                event_type.value, receive, methods=["POST"], summary=summary,
                description=_HEADERS_DOC, operation_id=event_type.value.replace(".", "_"),
                tags=["webhooks"], status_code=200)
