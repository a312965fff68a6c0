"""Scheme A: authenticating with a grid card (SPEC A steps 1-4), stored and audited.

1.  **Start** (:func:`start`). The login and password are checked first, outside any
    transaction (scrypt takes tens of milliseconds; a write lock must not wait on it). A
    wrong password, or a login that does not exist, is the same ``bad_credentials``: no
    position is given, the user's failure count grows (a new attempt never resets it).
    Then, in one transaction: the user is re-read (frozen, locked, paused by a report:
    refused), the active card found (``no_card``, ``card_expired``), the user's other
    pending attempts end (``superseded``: one card, one position asked at a time), an
    unused position drawn and its window computed (``qrgate.core.gridcard_attempt``).
    The caller gets the attempt, a random *answer token* (kept as a keyed digest) that
    every later call must show, and, for a relying party, a signed code its page shows so
    the phone app can join (:func:`join`).
2.  **Answer** (:func:`answer`): the scanned cell's content. In time, of the asked
    position, of the user's current card, never used: the cell is marked used and the
    attempt authenticated in the same transaction, both by conditional UPDATEs (two nodes
    answering at once authenticate once). Wrong answers are counted against the attempt
    (``QRGATE_MAX_FAILURES`` ends it) and, when they are cells, against the user
    (``QRGATE_USER_MAX_FAILURES`` locks them). A late answer is not checked at all: it
    is ``late_answer``, and the phone may ask for another position (:func:`reissue`).
3.  Everything lands in the audit log (events ``gridcard.start``, ``.join``, ``.answer``,
    ``.reissue``) with its reason code, and every change of state is published to waiting
    streams (SSE) by the attempt's id.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, insert, select, update

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id
from qrgate.confirm.verification import count_user_failure
from qrgate.core import gridcard
from qrgate.core.gridcard_attempt import (
    AttemptState,
    Risk,
    WindowRule,
    check_answer_in_time,
    check_reissue,
    issue_join_code,
    pick_position,
    read_join_code,
    window_seconds,
)
from qrgate.core.passwords import new_password_hash, verify_password
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import (
    AlreadyDecided,
    BadCredentials,
    Conflict,
    Expired,
    Forbidden,
    NotFound,
    QrgateError,
)
from qrgate.gridcard import attempt_store as store
from qrgate.gridcard import cards
from qrgate.runtime import Runtime
from qrgate.storage.models import (
    gridcard_attempts,
    gridcard_cells,
    gridcards,
    users,
)

_TOKEN_PURPOSE: Final = "gridcard_answer_token"  # noqa: S105 - a digest purpose, no secret
# Errors that are a cell the user's card did not give for this position: they count
# against the user as well as the attempt.
_WRONG_CELLS = frozenset({"wrong_cell", "cell_used", "wrong_card", "bad_signature",
                          "card_revoked"})
# Errors that are not cells at all (a scan of something else): the attempt's count only.
_NOT_CELLS = frozenset({"malformed_code", "unsupported_version"})


# --- who may act on an attempt ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WithToken:
    """The phone app: it holds the answer token it was given at start or by the code."""

    token: str


Caller = WithToken | directory.AppRecord


def answer_token(rt: Runtime, attempt_id: str) -> str:
    """The attempt's answer token: a keyed digest of its id (HMAC under a key derived from
    the KEK), so nothing about it is stored and the relying party's code can be drawn again
    whenever its page asks."""
    return _encode_token(rt.digests.digest(attempt_id, purpose=_TOKEN_PURPOSE))


def authorize(rt: Runtime, row: store.AttemptRow, caller: Caller) -> None:
    if isinstance(caller, WithToken):
        if not hmac.compare_digest(caller.token.encode(), answer_token(rt, row.id).encode()):
            raise Forbidden("this attempt was started by someone else",
                            code="wrong_attempt_token")
    elif caller.org_id != row.org_id:
        # Another organisation's attempt ids are not confirmed to exist.
        raise NotFound("no such grid card attempt", code="attempt_not_found")


def read(rt: Runtime, *, attempt_id: str, caller: Caller) -> store.AttemptRow:
    with rt.read() as conn:
        row = store.load(conn, attempt_id)
    authorize(rt, row, caller)
    return row


# --- start ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StartRequest:
    org_id: int
    login: str
    password: str
    operation: str = "login"
    risk: Risk = Risk.NORMAL
    # The relying party that starts it; None when the phone app signs in alone.
    app: directory.AppRecord | None = None
    business_id: str | None = None
    requester_ip: str = ""
    requester_ua: str = ""


@dataclass(frozen=True, kw_only=True)
class Started:
    attempt: store.AttemptRow
    answer_token: str
    # The code the relying party's page shows (None when the app started alone).
    code: str | None


@functools.cache
def _decoy_hash() -> str:
    # A real scrypt hash to check unknown logins against, so that they take as long as
    # known ones and the answer's timing does not tell which logins exist.
    return new_password_hash("qrgate decoy password")


def _password_matches(conn: Connection, *, org_id: int, login: str, password: str) -> bool:
    stored = conn.execute(select(users.c.password_hash)
                          .where(users.c.org_id == org_id, users.c.login == login)).first()
    encoded = None if stored is None else stored.password_hash
    return verify_password(password, encoded or _decoy_hash()) and encoded is not None


def start(rt: Runtime, *, request: StartRequest) -> Started:
    now = rt.clock()
    subject = AuditSubject(event="gridcard.start", scheme="gridcard", org_id=request.org_id,
                           app_id=None if request.app is None else request.app.id,
                           detail={"operation": request.operation, "risk": request.risk.value,
                                   "entry": "app" if request.app is None else "relying_party"})
    with rt.read() as conn:
        user = _user_or_none(conn, org_id=request.org_id, login=request.login)
        if user is not None:
            subject.user_id = user.id
            _ensure_may_start(rt, user, now=now, subject=subject)
        matches = _password_matches(conn, org_id=request.org_id, login=request.login,
                                    password=request.password)
    if not matches:
        with rt.engine.begin() as conn:
            if user is not None:
                count_user_failure(rt, conn, user_id=user.id, now=now)
            subject.record(conn, now=now, reason="bad_credentials")
        raise BadCredentials("login or password is wrong")

    def work(conn: Connection) -> tuple[Started, str]:
        target = None if request.app is None else directory.resolve_app(
            conn, app=request.app, business_id=request.business_id)
        subject.app_id = None if target is None else target.id
        current = directory.find_user(conn, org_id=request.org_id, login=request.login)
        _ensure_may_start(rt, current, now=now, subject=None)
        card = cards.active_card(conn, current.id)
        if card is None:
            raise Conflict("this user has no grid card", code="no_card")
        subject.detail["serial"] = card.serial
        if now > card.expires_at:
            raise Expired("this grid card has expired; ask for a new one", code="card_expired")
        store.supersede(rt, conn, user_id=current.id, now=now)
        position = pick_position(store.free_positions(conn, card.id), rt.random)
        window = _window(rt, conn, user_id=current.id, risk=request.risk)
        attempt_id = new_id()
        subject.challenge_id = attempt_id
        values = {
            "id": attempt_id, "org_id": request.org_id, "app_id": subject.app_id,
            "user_id": current.id, "card_id": card.id, "login": current.login,
            "operation": request.operation, "risk": request.risk.value,
            "state": AttemptState.PENDING.value, "reason": None,
            "position": position.label, "position_seq": 0, "window_seconds": window,
            "position_issued_at": now, "position_expires_at": now + window,
            "reissues": 0, "attempts": 0,
            "requester_ip": request.requester_ip, "requester_ua": request.requester_ua,
            "answer_seconds": None, "created_at": now,
            "expires_at": now + rt.settings.gridcard_ttl, "decided_at": None,
        }
        conn.execute(insert(gridcard_attempts).values(**values))
        row = store.load(conn, attempt_id)
        code = None if target is None else _join_code(rt, row)
        subject.detail.update(position=position.label, window_seconds=window)
        return Started(attempt=row, answer_token=answer_token(rt, attempt_id),
                       code=code), "started"

    return run_decision(rt, subject=subject, now=now, work=work)


def _user_or_none(conn: Connection, *, org_id: int, login: str) -> directory.UserRecord | None:
    try:
        return directory.find_user(conn, org_id=org_id, login=login)
    except NotFound:
        return None


def _ensure_may_start(rt: Runtime, user: directory.UserRecord, *, now: float,
                      subject: AuditSubject | None) -> None:
    """Frozen, locked or paused users get no position, whatever their password: checked
    before it, so a locked account is no password oracle."""
    try:
        directory.ensure_not_frozen(user)
        directory.ensure_not_locked(user, max_failures=rt.settings.user_max_failures)
        directory.ensure_not_blocked(user, now=now)
    except QrgateError as error:
        if subject is not None:
            with rt.engine.begin() as conn:
                subject.record(conn, now=now, reason=error.code)
        raise


def _window(rt: Runtime, conn: Connection, *, user_id: int, risk: Risk) -> int:
    rule = WindowRule(minimum=rt.settings.gridcard_window_min,
                      maximum=rt.settings.gridcard_window_max)
    recent = conn.execute(
        select(gridcard_attempts.c.answer_seconds)
        .where(gridcard_attempts.c.user_id == user_id,
               gridcard_attempts.c.answer_seconds.is_not(None))
        .order_by(gridcard_attempts.c.decided_at.desc()).limit(rule.history)).scalars()
    return window_seconds(rule, recent=[float(t) for t in recent], risk=risk)


# --- join (the relying party's code, scanned by the app) --------------------------------


@dataclass(frozen=True, kw_only=True)
class Joined:
    attempt: store.AttemptRow
    answer_token: str
    app: directory.AppRecord | None


def join(rt: Runtime, *, code_text: str) -> Joined:
    now = rt.clock()
    subject = AuditSubject(event="gridcard.join", scheme="gridcard")
    try:
        code = rt.keys.verifying(lambda ring: read_join_code(code_text, keys=ring, now=now))
    except QrgateError as error:
        with rt.engine.begin() as conn:
            subject.record(conn, now=now, reason=error.code)
        raise
    token = _encode_token(code.answer_token)

    def work(conn: Connection) -> tuple[Joined, str]:
        row = store.load(conn, code.attempt_id)
        subject.challenge_id, subject.org_id = row.id, row.org_id
        subject.app_id, subject.user_id = row.app_id, row.user_id
        authorize(rt, row, WithToken(token=token))
        _ensure_pending(row, now)
        app = None if row.app_id is None else directory.get_app(conn, row.app_id)
        return Joined(attempt=row, answer_token=token, app=app), "joined"

    return run_decision(rt, subject=subject, now=now, work=work)


def _join_code(rt: Runtime, row: store.AttemptRow) -> str:
    return issue_join_code(attempt_id=row.id, answer_token=_decode_token(answer_token(rt, row.id)),
                           issuer=rt.settings.issuer, now=int(row.created_at),
                           expires_at=int(row.expires_at), keyring=rt.keyring)


def join_code(rt: Runtime, *, attempt_id: str, app: directory.AppRecord) -> str | None:
    """The code a relying party's page shows for its pending attempt; None for an attempt
    the app started alone."""
    row = read(rt, attempt_id=attempt_id, caller=app)
    _ensure_pending(row, rt.clock())
    return None if row.app_id is None else _join_code(rt, row)


def _ensure_pending(row: store.AttemptRow, now: float) -> None:
    state = row.effective_state(now)
    if state == AttemptState.EXPIRED:
        raise Expired("this grid card attempt has expired")
    if state != AttemptState.PENDING:
        raise AlreadyDecided("this grid card attempt has ended", code="not_pending")


# --- answer ---------------------------------------------------------------------------


def answer(rt: Runtime, *, attempt_id: str, caller: Caller, cell: str) -> store.AttemptRow:
    now = rt.clock()
    subject = AuditSubject(event="gridcard.answer", scheme="gridcard", challenge_id=attempt_id)
    digest = cards.cell_digester(rt.digests)

    def repeat_of(conn: Connection) -> store.AttemptRow | None:
        """The same party sends again the cell that authenticated this attempt."""
        row = store.find(conn, attempt_id)
        if row is None or row.state != AttemptState.AUTHENTICATED:
            return None
        authorize(rt, row, caller)
        stored = cards.card_digests(conn, row.card_id).get(
            gridcard.parse_position(row.position))
        return row if stored is not None and _same_digest(digest, cell, stored) else None

    def work(conn: Connection) -> tuple[store.AttemptRow, str]:
        row = store.load(conn, attempt_id)
        authorize(rt, row, caller)
        subject.org_id, subject.app_id, subject.user_id = row.org_id, row.app_id, row.user_id
        _ensure_pending(row, now)
        directory.ensure_not_locked(directory.get_user(conn, row.user_id),
                                    max_failures=rt.settings.user_max_failures)
        check_answer_in_time(position_expires_at=row.position_expires_at, now=now)
        card = _card_of(conn, row, now=now)
        asked = gridcard.parse_position(row.position)
        _refuse_revoked_card_cell(conn, row=row, card=card, cell=cell)
        gridcard.verify_cell(content=cell, expected_serial=card.serial, expected_position=asked,
                             cell_digests=cards.card_digests(conn, card.id), digest=digest,
                             used=store.used_positions(conn, card.id))
        marked = conn.execute(update(gridcard_cells)
                              .where(gridcard_cells.c.card_id == card.id,
                                     gridcard_cells.c.position == asked.label,
                                     gridcard_cells.c.used_at.is_(None))
                              .values(used_at=now)).rowcount
        if marked != 1:
            # mutation: after a lost race only: positions asked are unused when asked.
            raise Conflict("this cell was used meanwhile", code="cell_used")
        done = store.transition(rt, conn, row, state=AttemptState.AUTHENTICATED,
                                reason="authenticated", now=now,
                                answer_seconds=now - row.position_issued_at)
        directory.reset_user_failures(conn, user_id=row.user_id)
        subject.detail["position"] = asked.label
        return done, "authenticated"

    def after(conn: Connection, error: QrgateError) -> None:
        row = store.find(conn, attempt_id)
        if row is None or row.state != AttemptState.PENDING:
            return
        if error.code == "expired":
            store.end(rt, conn, row, state=AttemptState.EXPIRED, reason="expired", now=now)
        elif error.code == "late_answer" and row.reissues >= rt.settings.gridcard_max_reissues:
            # No other position may be asked: nothing can succeed any more, say so now.
            store.end(rt, conn, row, state=AttemptState.FAILED, reason="late_answer", now=now)
        elif (error.code in ("card_revoked", "card_expired")
              and not store.card_usable(conn, row, now)):
            # The attempt's own card went: no answer can succeed any more.
            store.end(rt, conn, row, state=AttemptState.FAILED, reason=error.code, now=now)
        elif error.code in _WRONG_CELLS or error.code in _NOT_CELLS:
            if error.code in _WRONG_CELLS:
                count_user_failure(rt, conn, user_id=row.user_id, now=now)
            store.count_attempt(rt, conn, row, now=now)

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after,
                        repeat_of=repeat_of)


def _same_digest(digest: gridcard.CellDigest, cell: str, stored: bytes) -> bool:
    try:
        canonical = gridcard.parse_cell(cell).text()
    except QrgateError:
        return False
    return hmac.compare_digest(digest(canonical), stored)


def _card_of(conn: Connection, row: store.AttemptRow, *, now: float) -> cards.CardRecord:
    card = cards.card_by_id(conn, row.card_id)
    if card.status == "revoked":
        raise Conflict("this grid card was revoked; use your new card", code="card_revoked")
    if now > card.expires_at:
        raise Expired("this grid card has expired; ask for a new one", code="card_expired")
    return card


def _refuse_revoked_card_cell(conn: Connection, *, row: store.AttemptRow,
                              card: cards.CardRecord, cell: str) -> None:
    """A cell of one of the user's own revoked cards gets a message that helps: the user
    holds an old card. Any other card's cell is ``wrong_card`` (verify_cell)."""
    try:
        serial = gridcard.parse_cell(cell).serial
    except QrgateError:
        return  # verify_cell says what is wrong with it
    if serial == card.serial:
        return
    old = conn.execute(select(gridcards.c.id).where(
        gridcards.c.serial == serial, gridcards.c.user_id == row.user_id,
        gridcards.c.status == "revoked")).first()
    if old is not None:
        raise Conflict("this cell is from a revoked card; use your new card",
                       code="card_revoked")


def _encode_token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_token(token: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return b""


# --- state changes ----------------------------------------------------------------------


# --- another position -------------------------------------------------------------------


def reissue(rt: Runtime, *, attempt_id: str, caller: Caller) -> store.AttemptRow:
    """Another position once the current one's window has passed (claims 6-7)."""
    now = rt.clock()
    subject = AuditSubject(event="gridcard.reissue", scheme="gridcard",
                           challenge_id=attempt_id)

    def work(conn: Connection) -> tuple[store.AttemptRow, str]:
        row = store.load(conn, attempt_id)
        authorize(rt, row, caller)
        subject.org_id, subject.app_id, subject.user_id = row.org_id, row.app_id, row.user_id
        _ensure_pending(row, now)
        check_reissue(position_expires_at=row.position_expires_at, now=now,
                      reissues=row.reissues, max_reissues=rt.settings.gridcard_max_reissues)
        card = _card_of(conn, row, now=now)
        position = pick_position(store.free_positions(conn, card.id), rt.random,
                                 avoid=gridcard.parse_position(row.position))
        window = _window(rt, conn, user_id=row.user_id, risk=row.risk)
        moved = conn.execute(
            update(gridcard_attempts)
            .where(gridcard_attempts.c.id == row.id,
                   gridcard_attempts.c.state == AttemptState.PENDING.value,
                   gridcard_attempts.c.position_seq == row.position_seq)
            .values(position=position.label, position_seq=row.position_seq + 1,
                    window_seconds=window, position_issued_at=now,
                    position_expires_at=min(now + window, row.expires_at),
                    reissues=row.reissues + 1)
            .returning(*gridcard_attempts.c)).first()
        if moved is None:
            raise AlreadyDecided("this grid card attempt has ended or moved on",
                                 code="not_pending")
        rt.events.publish(conn, topic=row.id, state=AttemptState.PENDING.value)
        subject.detail.update(position=position.label, window_seconds=window,
                              reissues=row.reissues + 1)
        return store.row_of(moved), "reissued"

    def after(conn: Connection, error: QrgateError) -> None:
        row = store.find(conn, attempt_id)
        if row is None or row.state != AttemptState.PENDING:
            return
        if error.code == "reissue_limit":
            # Not counted against the user: no cell was wrong, the user was only slow.
            store.end(rt, conn, row, state=AttemptState.FAILED, reason="reissue_limit", now=now)
        elif error.code == "expired":
            store.end(rt, conn, row, state=AttemptState.EXPIRED, reason="expired", now=now)
        elif error.code in ("card_revoked", "card_expired", "card_exhausted"):
            store.end(rt, conn, row, state=AttemptState.FAILED, reason=error.code, now=now)

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after)


def cancel(rt: Runtime, *, attempt_id: str, caller: Caller) -> store.AttemptRow:
    """Whoever started the attempt (or joined it) gives up: it fails as ``cancelled``, and
    a relying party's page waiting on it hears so at once. Cancelling again is answered
    the same."""
    now = rt.clock()
    subject = AuditSubject(event="gridcard.cancel", scheme="gridcard", challenge_id=attempt_id)

    def repeat_of(conn: Connection) -> store.AttemptRow | None:
        row = store.find(conn, attempt_id)
        if row is None or row.reason != "cancelled":
            return None
        authorize(rt, row, caller)
        return row

    def work(conn: Connection) -> tuple[store.AttemptRow, str]:
        row = store.load(conn, attempt_id)
        authorize(rt, row, caller)
        subject.org_id, subject.app_id, subject.user_id = row.org_id, row.app_id, row.user_id
        _ensure_pending(row, now)
        ended = store.transition(rt, conn, row, state=AttemptState.FAILED, reason="cancelled",
                                 now=now)
        return ended, "cancelled"

    return run_decision(rt, subject=subject, now=now, work=work, repeat_of=repeat_of)
