"""Freezing a user (a lost phone, a suspected takeover) stops everything at once.

The frozen mark itself is what every decision checks, inside the statement that takes it
(``qrgate.confirm.repository``, ``qrgate.txsign.platform``), so a freeze committed on one
node stops a scan, an approval or a signature on every node from that instant. Open work
is ended here as well, so waiting browsers learn it now rather than at its expiry.
"""

from __future__ import annotations

from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.confirm import repository as challenges
from qrgate.core.confirm import ConfirmState
from qrgate.runtime import Runtime
from qrgate.txsign import platform as transactions
from qrgate.webhooks import catalogue, outbox
from qrgate.webhooks.catalogue import EventType

FROZEN_REASON = "user_frozen"


def set_user_frozen(rt: Runtime, conn: Connection, *, user_id: int, frozen: bool,
                    now: float) -> None:
    directory.set_frozen(conn, user_id=user_id, frozen=frozen, now=now)
    outbox.emit(rt, conn, catalogue.user_changed(
        EventType.USER_FROZEN if frozen else EventType.USER_UNFROZEN,
        user=directory.get_user(conn, user_id), reason="operator", at=now))
    if not frozen:
        return
    for challenge in challenges.end_open_for_user(conn, user_id=user_id,
                                                  reason=FROZEN_REASON, now=now):
        rt.events.publish(conn, topic=challenge.id, state=ConfirmState.REJECTED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(challenge, at=now))
    for transaction in transactions.end_pending_for_user(conn, user_id=user_id,
                                                         reason=FROZEN_REASON, now=now):
        outbox.emit(rt, conn, catalogue.transaction_ended(
            transaction, state="rejected", reason=FROZEN_REASON, at=now))
