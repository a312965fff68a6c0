""""This wasn't me": a user reports a request they did not start.

A phone declining a challenge can say so, and a relying party can pass on a report its user
made elsewhere (a transaction of scheme E, a call to the help desk). The report is recorded,
every other open challenge and transaction of the user ends at once, and no new one starts
for ``QRGATE_REPORT_BLOCK_SECONDS``: someone who keeps asking in the hope of a tired "yes"
(push fatigue) gets nowhere, and the relying parties hear of it (``report.created``).
Everything happens in the caller's transaction, with the decision that carried the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id
from qrgate.confirm import repository as challenges
from qrgate.core.confirm import ConfirmState
from qrgate.runtime import Runtime
from qrgate.storage.models import reports
from qrgate.txsign import platform as transactions
from qrgate.webhooks import catalogue, outbox

# Why the report ended the user's other open challenges and transactions.
REPORTED_REASON = "user_reported"


@dataclass(frozen=True, kw_only=True)
class Report:
    id: str
    login: str
    scheme: str
    challenge_id: str | None
    transaction_id: str | None
    device_id: str | None
    created_at: float
    blocked_until: float


def file_report(rt: Runtime, conn: Connection, *, user: directory.UserRecord, scheme: str,
                now: float, device_id: str | None = None, challenge_id: str | None = None,
                transaction_id: str | None = None) -> Report:
    block = rt.settings.report_block_seconds
    # A later report never shortens the pause of an earlier one.
    until = max(now + block, user.blocked_until or 0.0)
    report = Report(id=new_id(), login=user.login, scheme=scheme, challenge_id=challenge_id,
                    transaction_id=transaction_id, device_id=device_id, created_at=now,
                    blocked_until=until)
    conn.execute(insert(reports).values(
        id=report.id, org_id=user.org_id, user_id=user.id, device_id=device_id, scheme=scheme,
        challenge_id=challenge_id, transaction_id=transaction_id, created_at=now,
        blocked_until=until))
    if block:
        directory.set_blocked_until(conn, user_id=user.id, until=until)
        _end_open_work(rt, conn, user_id=user.id, now=now)
    outbox.emit(rt, conn, catalogue.report_created(
        report_id=report.id, org_id=user.org_id, login=user.login, scheme=scheme,
        challenge_id=challenge_id, transaction_id=transaction_id, device_id=device_id,
        blocked_until=until if block else None, at=now))
    return report


def unblock(conn: Connection, *, user_id: int) -> None:
    """An operator lifts the pause early (the user's reports stay recorded)."""
    directory.set_blocked_until(conn, user_id=user_id, until=None)


def _end_open_work(rt: Runtime, conn: Connection, *, user_id: int, now: float) -> None:
    for challenge in challenges.end_open_for_user(conn, user_id=user_id,
                                                  reason=REPORTED_REASON, now=now):
        rt.events.publish(conn, topic=challenge.id, state=ConfirmState.REJECTED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(challenge, at=now))
    for transaction in transactions.end_pending_for_user(conn, user_id=user_id,
                                                         reason=REPORTED_REASON, now=now):
        outbox.emit(rt, conn, catalogue.transaction_ended(
            transaction, state="rejected", reason=REPORTED_REASON, at=now))
