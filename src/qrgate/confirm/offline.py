"""Offline approval of a scheme C challenge: the phone had no network, so it showed a
one-time code (``qrgate.core.offline``) that the user typed into the waiting page, or that the
relying party forwards.

:func:`approve_offline` takes the code from the starting browser (its browser token) or the
relying party (its API key) and, in one pipeline:

1.  loads the challenge for that caller (another browser: ``wrong_browser``; another
    organisation: ``challenge_not_found``); it must be routed to the QR verifier
    (``wrong_verifier``), under its attempt budget (``locked``) and open: pending, or scanned
    when the phone's scan got through but its decision did not (``expired``,
    ``already_decided``);
    An application whose policy requires the app lock takes no offline code
    (``app_lock_required``): the unlock is proven with an online decision only.
2.  gathers the candidate secrets: each active device of the challenge's user that has an
    offline secret, or only the device that scanned a scanned challenge. None:
    ``offline_unavailable`` (the user's phones enrolled before offline secrets existed);
3.  verifies the code against every candidate in constant time, with the challenge's number
    in the question when number matching is on; no match is ``wrong_offline_code``, which
    counts against the challenge (locking it at ``max_failures``, as a wrong one-time
    password does) and against the user;
4.  approves with one conditional statement (open, unexpired, user not frozen, device active,
    no other device scanned it), recording the device whose secret matched, and does what an
    online approval does: resets the user's failures, pushes ``approved`` to the waiting
    page, puts ``confirm.approved`` in the webhook outbox and audits ``approved_offline``.

The code is single use by construction: once the challenge is approved no transition takes
it again. The same right code sent again (the answer was lost) gets the approved challenge
back, and counts nothing. The code is never logged nor audited.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, exists, or_, select, update

from qrgate.accounts import directory
from qrgate.accounts.enrolment import offline_secret_context
from qrgate.confirm import repository, verification
from qrgate.confirm.repository import ChallengeRow
from qrgate.core.confirm import ConfirmState, check_attempts
from qrgate.core.offline import offline_code, verify_offline_code
from qrgate.core.policy import VerifierKind
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import (
    AlreadyDecided,
    Expired,
    Forbidden,
    QrgateError,
    Rejected,
    VerifierUnavailable,
)
from qrgate.runtime import Runtime
from qrgate.storage.models import challenges, devices, users
from qrgate.webhooks import catalogue, outbox

REASON = "approved_offline"


@dataclass(frozen=True, kw_only=True)
class FromBrowser:
    """The waiting page sends the code, with the browser token that started the challenge."""

    browser_token: str


Caller = directory.AppRecord | FromBrowser


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    device_id: str
    secret: bytes


_APPROVE = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"),
           challenges.c.state.in_(repository.OPEN_STATES),
           challenges.c.expires_at > bindparam("b_now"),
           # A scanned challenge is decided by the device that scanned it, offline too.
           or_(challenges.c.device_id.is_(None),
               challenges.c.device_id == bindparam("b_device")),
           ~exists().where(users.c.id == challenges.c.user_id, users.c.frozen_at.is_not(None)),
           exists().where(devices.c.id == bindparam("b_device"), devices.c.status == "active"))
    .values(state=ConfirmState.APPROVED.value, reason=REASON, device_id=bindparam("b_device"),
            decided_at=bindparam("b_now"))
    .returning(*challenges.c)
)


def approve_offline(rt: Runtime, *, challenge_id: str, code: str, caller: Caller) -> ChallengeRow:
    """Approve ``challenge_id`` with the offline code ``code`` (8 digits), or raise."""
    now = rt.clock()
    subject = AuditSubject(event="confirm.offline", scheme="confirm", challenge_id=challenge_id,
                           org_id=caller.org_id if isinstance(caller, directory.AppRecord)
                           else None)

    def repeat_of(conn: Connection) -> ChallengeRow | None:
        """The same right code again, after it approved this challenge: a lost answer."""
        row = repository.find(conn, challenge_id)
        if (row is None or row.state != ConfirmState.APPROVED or row.reason != REASON
                or row.device_id is None or not _may_see(rt, row, caller)):
            return None
        approver = _candidates(rt, conn, user_id=row.user_id, only=row.device_id)
        if approver and hmac.compare_digest(
                offline_code(secret=approver[0].secret, challenge_id=bytes.fromhex(row.id),
                             number=row.number).encode(), code.encode()):
            return row
        return None

    def work(conn: Connection) -> tuple[ChallengeRow, str]:
        row = _load(rt, conn, challenge_id=challenge_id, caller=caller)
        subject.org_id, subject.app_id, subject.user_id = row.org_id, row.app_id, row.user_id
        if row.verifier != VerifierKind.QR:
            raise Rejected("this challenge is not verified by a phone", code="wrong_verifier")
        if directory.get_app(conn, row.app_id).policy.require_app_lock:
            # The app lock is proven with the decision; a typed code cannot carry that proof.
            raise Forbidden("this service accepts approvals only from a locked app, which an "
                            "offline code cannot show", code="app_lock_required")
        check_attempts(attempts=row.attempts, max_failures=rt.settings.max_failures)
        verification.ensure_open(row, now, allow_scanned=True)
        candidates = _candidates(rt, conn, user_id=row.user_id, only=row.device_id)
        if not candidates:
            raise VerifierUnavailable("no phone of this user can approve offline",
                                      code="offline_unavailable")
        matched = candidates[verify_offline_code(
            code=code, secrets=[candidate.secret for candidate in candidates],
            challenge_id=bytes.fromhex(row.id), expected_number=row.number)]
        subject.device_id = matched.device_id
        approved = _one(conn, {"b_id": row.id, "b_now": now, "b_device": matched.device_id})
        if approved is None:
            # mutation: after a lost race only (see verification.explain_refusal).
            verification.explain_refusal(conn, row=row, device_id=matched.device_id)
            raise AlreadyDecided("challenge already decided")
        directory.reset_user_failures(conn, user_id=row.user_id)
        rt.events.publish(conn, topic=row.id, state=ConfirmState.APPROVED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(approved, at=now))
        return approved, REASON

    def after(conn: Connection, error: QrgateError) -> None:
        if error.code == "wrong_offline_code":
            # The same side effects as a wrong one-time password: the challenge's budget,
            # then the user's, so guessing cannot go on across new challenges either.
            verification.count_attempt(rt, conn, subject, now)
            if subject.user_id is not None:
                verification.count_user_failure(rt, conn, user_id=subject.user_id, now=now)
        elif isinstance(error, Expired):
            verification.expire(rt, conn, challenge_id=challenge_id, now=now)

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after,
                        repeat_of=repeat_of)


def _load(rt: Runtime, conn: Connection, *, challenge_id: str, caller: Caller) -> ChallengeRow:
    if isinstance(caller, FromBrowser):
        return verification.load_for_browser(rt, conn, challenge_id=challenge_id,
                                             browser_token=caller.browser_token)
    return verification.owned(conn, app=caller, challenge_id=challenge_id)


def _may_see(rt: Runtime, row: ChallengeRow, caller: Caller) -> bool:
    if isinstance(caller, FromBrowser):
        return rt.digests.matches(caller.browser_token, row.browser_hash, purpose="browser_token")
    return row.org_id == caller.org_id


def _candidates(rt: Runtime, conn: Connection, *, user_id: int,
                only: str | None) -> list[_Candidate]:
    """The offline secrets that may approve: the user's active devices that have one (only
    ``only``, when a device already scanned), in a stable order."""
    query = (select(devices.c.id, devices.c.offline_secret_enc)
             .where(devices.c.user_id == user_id, devices.c.status == "active",
                    devices.c.offline_secret_enc.is_not(None))
             .order_by(devices.c.created_at, devices.c.id))
    if only is not None:
        query = query.where(devices.c.id == only)
    return [
        _Candidate(device_id=row.id,
                   secret=rt.box.open(row.offline_secret_enc,
                                      context=offline_secret_context(row.id)))
        for row in conn.execute(query)
    ]


def _one(conn: Connection, params: dict[str, object]) -> ChallengeRow | None:
    row = conn.execute(_APPROVE, params).first()
    return None if row is None else repository.row_of(row)
