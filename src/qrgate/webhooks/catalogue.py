"""The events qrgate reports to relying parties, and the data each carries.

Each event is a decision or a change the relying party did not necessarily cause and must
hear about: a user approved or denied, a challenge ended by the server, a transaction
signed, a phone bound or unbound, a user or token locked out. ``data`` holds ids, logins,
states, reasons and Unix times: never a secret, a one-time code, a nonce or a response.

Events about a challenge or a transaction go to its application. Events about a user, a
device or a token go to every application of the user's organisation that has a webhook:
each of them may be relying on that user.

There is no ``confirm.expired`` (nor ``txsign.expired``): qrgate writes an expiry only
when something touches the challenge or transaction after it (the relying party knows
``expires_at`` from the start), so such an event would come late or never. One without a
decision by ``expires_at`` has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only their attributes are read here
    from qrgate.accounts.directory import DeviceRecord, UserRecord
    from qrgate.confirm.repository import ChallengeRow
    from qrgate.gridcard.attempt_store import AttemptRow
    from qrgate.txsign.platform import TxRow
    from qrgate.txsign.tokens import TokenRecord

JsonValue = str | int | float | bool | None


class EventType(StrEnum):
    # Scheme C: the user's decision, and the server's when it ends a challenge (reason:
    # cancelled, scanned_twice, number_mismatch, locked, user_frozen).
    CONFIRM_APPROVED = "confirm.approved"
    CONFIRM_DENIED = "confirm.denied"
    CONFIRM_REJECTED = "confirm.rejected"
    # Scheme E: a transaction signed, or ended unsigned (reason: locked, user_frozen).
    TXSIGN_SIGNED = "txsign.signed"
    TXSIGN_REJECTED = "txsign.rejected"
    # Scheme A: a grid card attempt authenticated, or ended without (reason:
    # too_many_failures, reissue_limit, late_answer, card_revoked, card_expired,
    # card_exhausted, cancelled, superseded).
    GRIDCARD_AUTHENTICATED = "gridcard.authenticated"
    GRIDCARD_FAILED = "gridcard.failed"
    # Phones (by: device, relying_party, operator, access_pass).
    DEVICE_ADDED = "device.added"
    DEVICE_REMOVED = "device.removed"
    DEVICE_FROZEN = "device.frozen"
    DEVICE_UNFROZEN = "device.unfrozen"
    # Lockouts: too many failed proofs (user, token), or an operator's freeze.
    USER_LOCKED = "user.locked"
    USER_FROZEN = "user.frozen"
    USER_UNFROZEN = "user.unfrozen"
    TOKEN_LOCKED = "token.locked"  # noqa: S105 (an event name, not a password)
    # A user's "this wasn't me" (qrgate.accounts.reports): their other open challenges and
    # transactions ended (reason user_reported) and new ones pause until blocked_until.
    REPORT_CREATED = "report.created"


class DeviceChange(StrEnum):
    """Who bound, unbound, froze or unfroze a device."""

    DEVICE = "device"
    RELYING_PARTY = "relying_party"
    OPERATOR = "operator"
    # Unbound because the user enrolled a new phone with a temporary access pass that
    # replaces the others (qrgate.accounts.access_passes); the new phone's device.added
    # comes in the same transaction, by "device".
    ACCESS_PASS = "access_pass"  # noqa: S105 (a reason, not a password)


@dataclass(frozen=True, kw_only=True)
class WebhookEvent:
    """One event, before it is written to the outbox. ``app_id`` None: every application
    of ``org_id`` that has a webhook gets it."""

    type: EventType
    org_id: int
    app_id: int | None
    at: float
    data: dict[str, JsonValue]


_CHALLENGE_EVENTS = {"approved": EventType.CONFIRM_APPROVED, "denied": EventType.CONFIRM_DENIED,
                     "rejected": EventType.CONFIRM_REJECTED}


def challenge_ended(row: ChallengeRow, *, at: float) -> WebhookEvent:
    """A challenge reached a decision (``row`` as the deciding statement returned it)."""
    return WebhookEvent(
        type=_CHALLENGE_EVENTS[row.state.value], org_id=row.org_id, app_id=row.app_id, at=at,
        data={"challenge_id": row.id, "business_id": row.business_id, "login": row.login,
              "state": row.state.value, "reason": row.reason, "verifier": row.verifier,
              "operation": str(row.scene.get("operation", "")), "device_id": row.device_id,
              "created_at": row.created_at, "decided_at": row.decided_at})


def transaction_ended(row: TxRow, *, state: str, reason: str, at: float) -> WebhookEvent:
    """A transaction was signed (``state`` signed) or ended unsigned (rejected)."""
    return WebhookEvent(
        type=EventType.TXSIGN_SIGNED if state == "signed" else EventType.TXSIGN_REJECTED,
        org_id=row.org_id, app_id=row.app_id, at=at,
        data={"transaction_id": row.id, "business_id": row.text.platform,
              "account": row.text.account, "state": state, "reason": reason,
              "token_id": row.token_id, "created_at": row.created_at,
              "verified_at": row.verified_at})


def attempt_ended(row: AttemptRow, *, state: str, reason: str, at: float) -> WebhookEvent:
    """A grid card attempt authenticated (``state`` authenticated) or failed. Attempts the
    app started alone have no application: every application of the organisation hears."""
    return WebhookEvent(
        type=(EventType.GRIDCARD_AUTHENTICATED if state == "authenticated"
              else EventType.GRIDCARD_FAILED),
        org_id=row.org_id, app_id=row.app_id, at=at,
        data={"attempt_id": row.id, "login": row.login, "operation": row.operation,
              "state": state, "reason": reason, "position": row.position,
              "created_at": row.created_at, "decided_at": at})


def device_changed(event: EventType, *, device: DeviceRecord, user: UserRecord,
                   by: DeviceChange, at: float) -> WebhookEvent:
    return WebhookEvent(
        type=event, org_id=user.org_id, app_id=None, at=at,
        data={"device_id": device.id, "login": user.login, "name": device.name,
              "client_app_id": device.client_app_id, "by": by.value})


def user_changed(event: EventType, *, user: UserRecord, reason: str, at: float) -> WebhookEvent:
    return WebhookEvent(type=event, org_id=user.org_id, app_id=None, at=at,
                        data={"login": user.login, "reason": reason})


def report_created(*, report_id: str, org_id: int, login: str, scheme: str,
                   challenge_id: str | None, transaction_id: str | None,
                   device_id: str | None, blocked_until: float | None,
                   at: float) -> WebhookEvent:
    return WebhookEvent(
        type=EventType.REPORT_CREATED, org_id=org_id, app_id=None, at=at,
        data={"report_id": report_id, "login": login, "scheme": scheme,
              "challenge_id": challenge_id, "transaction_id": transaction_id,
              "device_id": device_id, "reported_at": at, "blocked_until": blocked_until})


def token_locked(token: TokenRecord, *, user: UserRecord, at: float) -> WebhookEvent:
    return WebhookEvent(type=EventType.TOKEN_LOCKED, org_id=token.org_id, app_id=None, at=at,
                        data={"token_id": token.id, "login": user.login,
                              "reason": "too_many_failures"})
