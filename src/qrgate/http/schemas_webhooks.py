"""Wire models of webhooks (``/v1/webhook``), and of the events they carry (documented in
the OpenAPI document's ``webhooks``; see ``qrgate.webhooks.catalogue``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from qrgate.http.schemas import Strict
from qrgate.webhooks.destinations import MAX_URL_LENGTH

# The shape only; what the URL may reach is qrgate.webhooks.destinations' (bad_webhook_url).
WebhookUrl = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH,
                                              pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[!-~]+$")]
DeliveryState = Literal["pending", "delivered", "failed"]


class WebhookIn(Strict):
    url: WebhookUrl = Field(description="https URL that receives the events (http to this "
                            "machine only when QRGATE_WEBHOOK_ALLOW_LOOPBACK is on)")


class WebhookOut(BaseModel):
    url: str
    created_at: float
    updated_at: float
    secret: str | None = Field(
        default=None, description="The signing key, `whsec_` + base64: shown once, when the "
        "webhook is created or its key rotated; null otherwise")
    previous_secret_expires_at: float | None = Field(
        default=None, description="After a rotation the previous key also signs, until then")


class DeliveryOut(BaseModel):
    event_id: str = Field(description="The `webhook-id` header of every attempt")
    type: str
    state: DeliveryState
    attempts: int
    created_at: float
    next_attempt_at: float | None = Field(description="While pending")
    last_attempt_at: float | None
    delivered_at: float | None
    last_status: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None = Field(description="Why the last attempt got no status")
    data: dict[str, Any]


class Deliveries(BaseModel):
    items: list[DeliveryOut]


# --- the events (bodies qrgate POSTs to the webhook) ----------------------------------------


class ChallengeData(BaseModel):
    challenge_id: str
    business_id: str
    login: str
    state: Literal["approved", "denied", "rejected"]
    reason: str = Field(description="approved, denied_by_user, cancelled, scanned_twice, "
                        "number_mismatch, locked or user_frozen")
    verifier: str
    operation: str
    device_id: str | None
    created_at: float
    decided_at: float | None


class TransactionData(BaseModel):
    transaction_id: str
    business_id: str = Field(description="The platform the transaction names")
    account: str
    state: Literal["signed", "rejected"]
    reason: str = Field(description="signed, locked or user_frozen")
    token_id: str | None
    created_at: float
    verified_at: int | None


class AttemptData(BaseModel):
    attempt_id: str
    login: str
    operation: str
    state: Literal["authenticated", "failed"]
    reason: str = Field(description="authenticated, or why the attempt failed")
    position: str = Field(description="The last position asked")
    created_at: float
    decided_at: float


class DeviceData(BaseModel):
    device_id: str
    login: str
    name: str
    client_app_id: str
    by: Literal["device", "relying_party", "operator"]


class UserData(BaseModel):
    login: str
    reason: str = Field(description="too_many_failures (user.locked) or operator")


class TokenData(BaseModel):
    token_id: str
    login: str
    reason: Literal["too_many_failures"]


class ReportData(BaseModel):
    report_id: str
    login: str
    scheme: str = Field(description="confirm or txsign")
    challenge_id: str | None
    transaction_id: str | None
    device_id: str | None = Field(description="The phone that reported, if it was a phone")
    reported_at: float
    blocked_until: float | None = Field(
        description="No new challenge for the user before this time (None: no pause)")


class ConfirmEvent(BaseModel):
    type: Literal["confirm.approved", "confirm.denied", "confirm.rejected"]
    timestamp: str = Field(description="When it happened (ISO 8601, UTC)")
    data: ChallengeData


class TxsignEvent(BaseModel):
    type: Literal["txsign.signed", "txsign.rejected"]
    timestamp: str
    data: TransactionData


class GridcardEvent(BaseModel):
    type: Literal["gridcard.authenticated", "gridcard.failed"]
    timestamp: str
    data: AttemptData


class DeviceEvent(BaseModel):
    type: Literal["device.added", "device.removed", "device.frozen", "device.unfrozen"]
    timestamp: str
    data: DeviceData


class UserEvent(BaseModel):
    type: Literal["user.locked", "user.frozen", "user.unfrozen"]
    timestamp: str
    data: UserData


class TokenEvent(BaseModel):
    type: Literal["token.locked"]
    timestamp: str
    data: TokenData


class ReportEvent(BaseModel):
    type: Literal["report.created"]
    timestamp: str
    data: ReportData
