"""The verification server's side of scheme C (SPEC steps 606-609).

``scan`` (607/608): the phone sends the code it scanned, signed with its device key (the
HTTP layer checked that signature and hands us the device). We verify the code's signature,
its fields against the stored challenge, the binding of the device to the challenge's user,
and move the challenge ``pending -> scanned`` in one statement. The phone gets the verified
context to show. ``decide`` (608/609): the same device approves or denies, once, with the
number the browser shows when number matching is on; ``scanned -> approved|denied`` is one
statement. Every outcome lands in the audit log and is pushed to the waiting browser.

Failures have side effects that must survive the failed transaction (see
``qrgate.decisions``): a second scan kills the challenge, so does a wrong number, and
repeated failures lock it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Connection

from qrgate.accounts import app_lock, directory, reports
from qrgate.confirm import qr_server, repository
from qrgate.confirm.repository import ChallengeRow
from qrgate.confirm.verifiers import verify_totp, was_last_accepted
from qrgate.core.app_lock import UnlockProof
from qrgate.core.confirm import (
    ConfirmState,
    Decision,
    DeviceView,
    check_attempts,
    check_decision,
    check_scan,
    is_repeated_scan,
    read_code,
)
from qrgate.core.policy import VerifierKind
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import (
    AlreadyDecided,
    Expired,
    Forbidden,
    NotBound,
    NotFound,
    NumberMismatch,
    QrgateError,
    Rejected,
    Replayed,
    Unauthenticated,
)
from qrgate.runtime import Runtime
from qrgate.webhooks import catalogue, outbox
from qrgate.webhooks.catalogue import EventType

# Failures that count against a challenge's attempt budget: guesses and wrong parties.
_COUNTED = (NotBound, NumberMismatch, Unauthenticated)


@dataclass(frozen=True, kw_only=True)
class ScanContext:
    """What the phone shows before the user decides: all of it verified by the server."""

    challenge: ChallengeRow
    app: directory.AppRecord
    place: str


def scan(rt: Runtime, *, code_text: str, device: directory.DeviceRecord) -> ScanContext:
    now = rt.clock()
    subject = AuditSubject(event="confirm.scan", scheme="confirm", user_id=device.user_id,
                           device_id=device.id)

    # Signature and expiry first, outside the transaction: a forged code never takes a lock.
    try:
        code = rt.keys.verifying(lambda ring: read_code(code_text, keys=ring, now=now))
    except QrgateError as error:
        with rt.engine.begin() as conn:
            subject.record(conn, now=now, reason=error.code)
        raise
    challenge_id = code.challenge_id.hex()

    def context(conn: Connection, row: ChallengeRow) -> ScanContext:
        app = directory.get_app(conn, row.app_id)
        return ScanContext(challenge=row, app=app, place=describe_place(row.requester_ip))

    def repeat_of(conn: Connection) -> ScanContext | None:
        """This device already scanned this very code: its reply was lost, not relayed."""
        row = repository.find(conn, challenge_id)
        if row is not None and is_repeated_scan(
                code=code, expected=row.view(), device_id=device.id,
                expected_issuer=rt.settings.issuer, now=now):
            return context(conn, row)
        return None

    def work(conn: Connection) -> tuple[ScanContext, str]:
        row = repository.load(conn, challenge_id)
        _ensure_same_org(conn, row=row, device=device)
        subject.challenge_id, subject.org_id, subject.app_id = row.id, row.org_id, row.app_id
        check_attempts(attempts=row.attempts, max_failures=rt.settings.max_failures)
        check_scan(code=code, expected=row.view(), device=_device_view(device),
                   expected_issuer=rt.settings.issuer, now=now)
        scanned = repository.mark_scanned(conn, challenge_id=row.id, code_nonce=row.code_nonce,
                                          device_id=device.id, now=now)
        if scanned is None:
            # mutation: after a lost race only (see explain_refusal).
            explain_refusal(conn, row=row, device_id=device.id)
            # Lost a race with another scan of the same code on another connection or node.
            raise Replayed("code was already scanned", code="scanned_twice")
        rt.events.publish(conn, topic=row.id, state=ConfirmState.SCANNED.value)
        return context(conn, scanned), "scanned"

    return run_decision(
        rt, subject=subject, now=now, work=work, repeat_of=repeat_of,
        on_failure=lambda conn, error: _after_failure(rt, conn, subject, error, now),
    )


def decide(
    rt: Runtime,
    *,
    challenge_id: str,
    device: directory.DeviceRecord,
    decision: Decision,
    number: int | None,
    report: bool = False,
    unlock: UnlockProof | None = None,
) -> ChallengeRow:
    """``report``: the user denies and says they did not start it (qrgate.accounts.reports)."""
    now = rt.clock()
    subject = AuditSubject(event=f"confirm.{decision.value}", scheme="confirm",
                           user_id=device.user_id, device_id=device.id, challenge_id=challenge_id)
    state, reason = (
        (ConfirmState.APPROVED, "approved") if decision == Decision.APPROVE
        else (ConfirmState.DENIED, "reported_by_user" if report else "denied_by_user")
    )

    def repeat_of(conn: Connection) -> ChallengeRow | None:
        """This device already took this very decision: its reply was lost."""
        row = repository.find(conn, challenge_id)
        if (row is not None and row.state == state and row.device_id == device.id
                and row.reason == reason):
            return row
        return None

    def work(conn: Connection) -> tuple[ChallengeRow, str]:
        row = repository.load(conn, challenge_id)
        _ensure_same_org(conn, row=row, device=device)
        subject.org_id, subject.app_id = row.org_id, row.app_id
        check_attempts(attempts=row.attempts, max_failures=rt.settings.max_failures)
        check_decision(expected=row.view(), device=_device_view(device), decision=decision,
                       number=number, now=now)
        # The app lock (qrgate.accounts.app_lock): an approval may need an unlock proof.
        app_lock.require_unlock(rt, conn, device_id=device.id, app_id=row.app_id,
                                challenge_id=row.id, decision=decision, number=number,
                                proof=unlock)
        decided = repository.decide(conn, challenge_id=row.id, device_id=device.id, state=state,
                                    reason=reason, now=now)
        if decided is None:
            # mutation: after a lost race only (see explain_refusal).
            explain_refusal(conn, row=row, device_id=device.id)
            raise AlreadyDecided("challenge already decided")
        if state == ConfirmState.APPROVED:
            directory.reset_user_failures(conn, user_id=row.user_id)
        rt.events.publish(conn, topic=row.id, state=state.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(decided, at=now))
        if report:
            filed = reports.file_report(rt, conn, user=directory.get_user(conn, row.user_id),
                                        scheme="confirm", now=now, device_id=device.id,
                                        challenge_id=row.id)
            subject.detail["report_id"] = filed.id
        return decided, reason

    return run_decision(
        rt, subject=subject, now=now, work=work, repeat_of=repeat_of,
        on_failure=lambda conn, error: _after_failure(rt, conn, subject, error, now),
    )


def check_otp(
    rt: Runtime, *, app: directory.AppRecord, challenge_id: str, otp: str
) -> ChallengeRow:
    """The TOTP verifier's decision: the relying party forwards the code the user typed."""
    now = rt.clock()
    subject = AuditSubject(event="confirm.otp", scheme="confirm", org_id=app.org_id,
                           challenge_id=challenge_id)

    def repeat_of(conn: Connection) -> ChallengeRow | None:
        """The relying party sent again the password that approved this challenge."""
        row = repository.find(conn, challenge_id)
        if (row is not None and row.org_id == app.org_id and row.verifier == VerifierKind.TOTP
                and row.state == ConfirmState.APPROVED
                and was_last_accepted(conn, box=rt.box, user_id=row.user_id, otp=otp)):
            return row
        return None

    def work(conn: Connection) -> tuple[ChallengeRow, str]:
        row = owned(conn, app=app, challenge_id=challenge_id)
        subject.app_id, subject.user_id = row.app_id, row.user_id
        if row.verifier != VerifierKind.TOTP:
            raise Rejected("this challenge is not verified by TOTP", code="wrong_verifier")
        check_attempts(attempts=row.attempts, max_failures=rt.settings.max_failures)
        ensure_open(row, now)
        verify_totp(conn, box=rt.box, user_id=row.user_id, otp=otp, now=now)
        decided = repository.finish_pending(
            conn, challenge_id=row.id, state=ConfirmState.APPROVED, reason="approved", now=now
        )
        if decided is None:
            # mutation: after a lost race only (see explain_refusal).
            explain_refusal(conn, row=row, device_id=None)
            raise AlreadyDecided("challenge already decided")
        directory.reset_user_failures(conn, user_id=row.user_id)
        rt.events.publish(conn, topic=row.id, state=ConfirmState.APPROVED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(decided, at=now))
        return decided, "approved"

    def after(conn: Connection, error: QrgateError) -> None:
        if error.code in ("wrong_otp", "otp_replayed"):
            count_attempt(rt, conn, subject, now)
            if error.code == "wrong_otp" and subject.user_id is not None:
                count_user_failure(rt, conn, user_id=subject.user_id, now=now)
        elif isinstance(error, Expired):
            expire(rt, conn, challenge_id=challenge_id, now=now)

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after,
                        repeat_of=repeat_of)


def explain_refusal(conn: Connection, *, row: ChallengeRow, device_id: str | None) -> None:
    """Why a conditional transition matched no row, when the reason is not the state: the
    user was frozen, or the device frozen or unbound, since the row was read."""
    # mutation: no mutation run reaches this function: a transition matches no row only
    # when another transaction changed the challenge, user or device between this one's
    # read and its write, which PostgreSQL allows and SQLite (BEGIN IMMEDIATE; mutation
    # runs are on SQLite) does not. The race tests exercise it on PostgreSQL.
    directory.ensure_not_frozen(directory.get_user(conn, row.user_id))
    # mutation: as above, reached on PostgreSQL only.
    if device_id is not None and not directory.get_device(conn, device_id).active:
        raise NotBound("device is unbound or frozen")


def cancel(rt: Runtime, *, app: directory.AppRecord, challenge_id: str) -> ChallengeRow:
    now = rt.clock()
    subject = AuditSubject(event="confirm.cancel", scheme="confirm", org_id=app.org_id,
                           challenge_id=challenge_id)

    def work(conn: Connection) -> tuple[ChallengeRow, str]:
        row = owned(conn, app=app, challenge_id=challenge_id)
        subject.app_id, subject.user_id = row.app_id, row.user_id
        ensure_open(row, now, allow_scanned=True)
        cancelled = repository.kill(conn, challenge_id=row.id, reason="cancelled", now=now)
        if cancelled is None:
            raise AlreadyDecided("challenge already decided")
        rt.events.publish(conn, topic=row.id, state=ConfirmState.REJECTED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(cancelled, at=now))
        return cancelled, "cancelled"

    def after(conn: Connection, error: QrgateError) -> None:
        if isinstance(error, Expired):
            expire(rt, conn, challenge_id=challenge_id, now=now)

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after)


def rotate_code(rt: Runtime, *, challenge_id: str, browser_token: str) -> tuple[ChallengeRow, str]:
    """The waiting page asks for a fresh code; only the browser that started may ask."""
    now = rt.clock()
    with rt.engine.begin() as conn:
        row = load_for_browser(rt, conn, challenge_id=challenge_id,
                               browser_token=browser_token)
        rotated = qr_server.rotate(rt, conn, row=row, now=now)
        rt.events.publish(conn, topic=row.id, state=ConfirmState.PENDING.value)
    return rotated, qr_server.code_for(rt, rotated)


def load_for_browser(rt: Runtime, conn: Connection, *, challenge_id: str,
                     browser_token: str) -> ChallengeRow:
    row = repository.load(conn, challenge_id)
    if not rt.digests.matches(browser_token, row.browser_hash, purpose="browser_token"):
        raise Forbidden("this challenge belongs to another browser", code="wrong_browser")
    return row


def load_for_app(rt: Runtime, *, app: directory.AppRecord, challenge_id: str) -> ChallengeRow:
    with rt.read() as conn:
        return owned(conn, app=app, challenge_id=challenge_id)


# RFC 1918, link-local and unique-local ranges: ``is_private`` would also count
# documentation and reserved ranges as "local".
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                "fc00::/7", "fe80::/10")
)


def describe_place(ip: str) -> str:
    """A coarse, honest place for the requesting address. Without a GeoIP database we can
    still tell the user whether the request came from this network or the internet."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.is_loopback:
        return "this computer"
    if address.is_global:
        return "internet"
    if any(address in network for network in _LOCAL_NETWORKS):
        return "local network"
    return "unknown"


def owned(conn: Connection, *, app: directory.AppRecord, challenge_id: str) -> ChallengeRow:
    row = repository.load(conn, challenge_id)
    if row.org_id != app.org_id:
        # Same answer as an unknown id: another organisation's ids are not confirmed to exist.
        raise NotFound("no such challenge", code="challenge_not_found")
    return row


def _ensure_same_org(conn: Connection, *, row: ChallengeRow,
                     device: directory.DeviceRecord) -> None:
    """A phone of another organisation meets the challenge as an unknown id: it learns
    nothing of it, and its attempts count against nothing of the other organisation's."""
    if (device.user_id != row.user_id
            and directory.get_user(conn, device.user_id).org_id != row.org_id):
        raise NotFound("no such challenge", code="challenge_not_found")


# mutation: a True default is equivalent: the one caller that relies on it, check_otp, sees
# TOTP challenges, which are never scanned.
def ensure_open(row: ChallengeRow, now: float, *, allow_scanned: bool = False) -> None:
    state = row.effective_state(now)
    if state == ConfirmState.EXPIRED:
        raise Expired("challenge expired")
    # mutation: letting a decided challenge through here is equivalent: the transition that
    # follows (finish_pending, kill) matches open states only and refuses it the same way.
    if state == ConfirmState.PENDING or (allow_scanned and state == ConfirmState.SCANNED):
        return
    raise AlreadyDecided("challenge already decided")


def _device_view(device: directory.DeviceRecord) -> DeviceView:
    return DeviceView(device_id=device.id, user_id=device.user_id, active=device.active)


def _after_failure(
    rt: Runtime, conn: Connection, subject: AuditSubject, error: QrgateError, now: float
) -> None:
    challenge_id = subject.challenge_id
    if challenge_id is None:
        return
    if subject.device_id is not None:
        app_lock.after_failure(rt, conn, device_id=subject.device_id, error=error)
    if error.code == "number_mismatch" and subject.user_id is not None:
        # Counted against the user too, so guessing cannot go on across new challenges.
        count_user_failure(rt, conn, user_id=subject.user_id, now=now)
    if error.code in ("scanned_twice", "number_mismatch"):
        # Both mean the code or the number travelled: end the challenge for everyone.
        _ended(rt, conn, repository.kill(conn, challenge_id=challenge_id, reason=error.code,
                                         now=now), now=now)
    elif isinstance(error, Expired):
        expire(rt, conn, challenge_id=challenge_id, now=now)
    elif isinstance(error, _COUNTED) or error.code == "field_mismatch":
        count_attempt(rt, conn, subject, now)


def expire(rt: Runtime, conn: Connection, *, challenge_id: str, now: float) -> None:
    """Write the expiry readers already see, and tell the waiting browser."""
    if repository.expire(conn, challenge_id=challenge_id, now=now):
        rt.events.publish(conn, topic=challenge_id, state=ConfirmState.EXPIRED.value)


def count_attempt(rt: Runtime, conn: Connection, subject: AuditSubject, now: float) -> None:
    assert subject.challenge_id is not None
    attempts = repository.count_failure(conn, challenge_id=subject.challenge_id)
    if attempts >= rt.settings.max_failures:
        _ended(rt, conn, repository.kill(conn, challenge_id=subject.challenge_id,
                                         reason="locked", now=now), now=now)


def _ended(rt: Runtime, conn: Connection, killed: ChallengeRow | None, *, now: float) -> None:
    """Tell the waiting browser and the relying party that the server ended a challenge
    (``killed``: as ``repository.kill`` returned it, None if it was no longer open)."""
    if killed is not None:
        rt.events.publish(conn, topic=killed.id, state=ConfirmState.REJECTED.value)
        outbox.emit(rt, conn, catalogue.challenge_ended(killed, at=now))


def count_user_failure(rt: Runtime, conn: Connection, *, user_id: int, now: float) -> None:
    """One more failed proof for the user; the one that reaches the limit locks them out
    of new challenges, which their relying parties hear about."""
    if directory.count_user_failure(conn, user_id=user_id) == rt.settings.user_max_failures:
        user = directory.get_user(conn, user_id)
        outbox.emit(rt, conn, catalogue.user_changed(EventType.USER_LOCKED, user=user,
                                                     reason="too_many_failures", at=now))

