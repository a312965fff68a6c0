"""A model of scheme C's challenges, for the state machines that check a server against it.

Written from SPEC section C and the order of checks in ``qrgate.core.confirm``;
``tests/confirm/test_confirm_state_machine.py`` drives the service layer with it,
``tests/confirm/test_confirm_state_machine_http.py`` a running server over HTTP.

The model tracks the *stored* state. Expiry is lazy in storage, so where a correct server
may or may not have written ``expired`` yet, the model accepts either (see
:meth:`ConfirmModel.adopt_lazy_expiry`); it never accepts any other change of a challenge
that a reader already sees as terminal.

Each ``expect_*`` method says what a request must answer and, like the server, updates the
model with what that request must have done (a count, a kill, a transition), so it is
called once per request, before the request is sent. Devices are named (``a1``, ``b1``...)
and belong to named users (``alice``, ``bob``); the challenges are all alice's. Errors are
``(error type, code)`` pairs: the service layer raises that type, the HTTP layer answers its
``status`` with that ``code``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import bindparam, func, select

from qrgate.confirm import repository
from qrgate.core.confirm import Decision
from qrgate.errors import (
    AlreadyDecided,
    BadSignature,
    Expired,
    Locked,
    NotBound,
    NumberMismatch,
    QrgateError,
    Rejected,
    Replayed,
    Superseded,
    UnknownKey,
    WrongDevice,
)
from qrgate.storage.db import after_commit
from qrgate.storage.models import AuditEntry, AuditHead

CONFIRM_TTL = 300
CODE_TTL = 30
MAX_FAILURES = 5
# ``qrgate.core.codes.decode_code``'s default leeway: a code still reads this long after exp.
CODE_LEEWAY = 5
# Open challenges at once, and in all: finished ones are replaced so that cancels and
# kills do not end the interesting part of an example early.
MAX_OPEN_CHALLENGES = 3
MAX_CHALLENGES = 10

OPEN = ("pending", "scanned")
TERMINAL = ("approved", "denied", "rejected", "expired", "cancelled")
# The user whose challenges the machines start; devices of anyone else are another user's.
USER = "alice"

# Mostly steps within a code's life, so that flows often get somewhere before their codes
# expire; then the boundaries of both TTLs and the code leeway, so that shrinking lands on
# off-by-one errors; then anything up to past the confirm TTL.
ADVANCE = st.one_of(
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=30),
    st.sampled_from([5, 6, 29, 30, 31, 35, 36, 299, 300, 301]),
    st.integers(min_value=0, max_value=400),
)
NUMBER_CHOICE = st.sampled_from(["right", "none", "wrong"])
WRONG_OFFSET = st.integers(min_value=1, max_value=89)

ErrorKey = tuple[type[QrgateError], str]
# The id a start call creates is unknown until it returns; the rule checks it afterwards.
NEW_CHALLENGE = "<new challenge>"

# Built once: building a SQLAlchemy statement per step costs more than running it.
HEAD_SEQ = select(AuditHead.seq).where(AuditHead.id == 1)
HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
# The entries after a seq, with everything their hash covers.
TAIL = (
    select(AuditEntry.seq, AuditEntry.at, AuditEntry.event, AuditEntry.reason,
           AuditEntry.scheme, AuditEntry.org_id, AuditEntry.app_id, AuditEntry.user_id,
           AuditEntry.device_id, AuditEntry.challenge_id, AuditEntry.detail,
           AuditEntry.prev_hash, AuditEntry.hash)
    .where(AuditEntry.seq > bindparam("after")).order_by(AuditEntry.seq)
)
ENTRY = select(AuditEntry.event, AuditEntry.reason, AuditEntry.challenge_id,
               AuditEntry.device_id, AuditEntry.detail).where(AuditEntry.seq == bindparam("seq"))
# Successful decisions per challenge, of the challenges named.
DECISIONS = (
    select(AuditEntry.challenge_id, func.count())
    .where(AuditEntry.event.in_(("confirm.approve", "confirm.deny")),
           AuditEntry.reason.in_(("approved", "denied_by_user")),
           AuditEntry.challenge_id.in_(bindparam("ids", expanding=True)))
    .group_by(AuditEntry.challenge_id)
)


class RecordingBus:
    """Wraps the runtime's bus to record, per topic, the hints a waiting browser would get."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hints: dict[str, list[str]] = {}

    def publish(self, conn: Any, *, topic: str, state: str) -> None:
        self.inner.publish(conn, topic=topic, state=state)
        # Recorded only on commit, as a real browser would receive it.
        after_commit(conn, lambda: self.hints.setdefault(topic, []).append(state))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class ModelCode:
    text: str
    # The rotation whose verification code the code carries; None for one the server
    # never issued (a forger's random verification code).
    seq: int | None
    expires_at: int


@dataclass(eq=False)
class ModelChallenge:
    id: str
    browser_token: str
    number: int | None
    expires_at: float
    codes: list[ModelCode]
    seq: int = 0
    state: str = "pending"
    reason: str | None = None
    device: str | None = None
    attempts: int = 0
    decisions: int = 0
    approved_with: int | None = None

    def __repr__(self) -> str:
        return f"<challenge {self.id[:8]} {self.state}>"


@dataclass(frozen=True)
class Expect:
    """Acceptable errors (none: must succeed) and whether the call must append an audit
    entry about ``audited_challenge``."""

    errors: tuple[ErrorKey, ...] = ()
    audited_challenge: str | None = None
    audited: bool = True
    # The entry may also name no challenge (a code refused before it was looked up).
    challenge_optional: bool = False
    # Refused by the phone itself (its offline check of the code), before any request.
    local: bool = False


class ConfirmModel:
    """What the server must have stored, and must answer next. ``owners`` names each
    device's user, ``status`` its status (``active``, ``unbound``, ``frozen``) as the
    service layer sees it; the caller may change ``status`` (a device frozen on the way)."""

    def __init__(self, *, clock: Callable[[], float], owners: Mapping[str, str],
                 status: dict[str, str]) -> None:
        self.clock = clock
        self.owners = owners
        self.status = status
        self.challenges: list[ModelChallenge] = []

    # --- time and state ---------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock()

    def readable(self, code: ModelCode) -> bool:
        return self.now <= code.expires_at + CODE_LEEWAY

    def some_open(self, state: str) -> bool:
        # Honest steps wait until they have something to act on; adversarial ones never do.
        return any(ch.state == state and not self.expired(ch) for ch in self.challenges)

    def open_challenges(self) -> int:
        return sum(ch.state in OPEN and not self.expired(ch) for ch in self.challenges)

    def expired(self, ch: ModelChallenge) -> bool:
        return self.now >= ch.expires_at

    def effective_state(self, ch: ModelChallenge) -> str:
        """What a reader sees: past its expiry an open challenge is expired."""
        return "expired" if ch.state in OPEN and self.expired(ch) else ch.state

    def code_expiry(self, challenge_expires_at: float) -> int:
        # The code's exp claim: the code TTL from the whole second it was issued, never
        # past the challenge (``operations.start``, ``qr_server.rotate``/``code_for``).
        return min(int(self.now) + CODE_TTL, int(challenge_expires_at))

    def started(self, *, challenge_id: str, browser_token: str, number: int | None,
                code: str) -> ModelChallenge:
        expires_at = self.now + CONFIRM_TTL
        ch = ModelChallenge(id=challenge_id, browser_token=browser_token, number=number,
                            expires_at=expires_at,
                            codes=[ModelCode(code, 0, self.code_expiry(expires_at))])
        self.challenges.append(ch)
        return ch

    def rotated(self, ch: ModelChallenge, code: str) -> ModelCode:
        ch.seq += 1
        shown = ModelCode(code, ch.seq, self.code_expiry(ch.expires_at))
        ch.codes.append(shown)
        return shown

    def _count(self, ch: ModelChallenge) -> None:
        ch.attempts += 1
        # A reader already sees a challenge past its expiry as expired (terminal): locking
        # it then would change a terminal state.
        if ch.attempts >= MAX_FAILURES and ch.state in OPEN and not self.expired(ch):
            self._kill(ch, "locked")

    def _kill(self, ch: ModelChallenge, reason: str) -> None:
        if ch.state in OPEN:
            ch.state, ch.reason = "rejected", reason

    def _expire(self, ch: ModelChallenge) -> None:
        if ch.state in OPEN:
            ch.state, ch.reason = "expired", "expired"

    def _terminal_error(self, ch: ModelChallenge) -> ErrorKey:
        if ch.state == "expired":
            return (Expired, "expired")
        return (AlreadyDecided, "already_decided")

    def adopt_lazy_expiry(self, ch: ModelChallenge, state: str, reason: str | None) -> None:
        """A server may write ``expired`` whenever it likes once the challenge is past its
        expiry; it may write nothing else there."""
        if ch.state in OPEN and self.expired(ch) and (state, reason) == ("expired", "expired"):
            ch.state, ch.reason = "expired", "expired"

    # --- scans --------------------------------------------------------------------------

    def expect_scan(self, ch: ModelChallenge, code: ModelCode, device: str) -> Expect:
        """A code the server issued, scanned by ``device``."""
        if not self.readable(code):
            # Refused when its signature and expiry are checked, before the challenge is
            # looked up: nothing about the challenge may change.
            return Expect(errors=((Expired, "expired"),), audited_challenge=ch.id,
                          challenge_optional=True)

        def fail(*errors: ErrorKey) -> Expect:
            return Expect(errors=errors, audited_challenge=ch.id)

        if self._repeats_the_scan(ch, code, device):
            # The same device sent the same scan again (its reply was lost): the same
            # answer, nothing written, nothing counted.
            return Expect(audited=False)
        refused = self._device_and_open_refusal(ch, device)
        if refused is not None:
            return refused
        if ch.state == "scanned":
            # SPEC: a code scanned twice kills the challenge.
            self._kill(ch, "scanned_twice")
            return fail((Replayed, "scanned_twice"))
        if code.seq != ch.seq:
            return fail((Superseded, "code_superseded"))
        ch.state, ch.device = "scanned", device
        return Expect(audited_challenge=ch.id)

    def _repeats_the_scan(self, ch: ModelChallenge, code: ModelCode, device: str) -> bool:
        """``verification.scan``'s ``repeat_of``: this device scanned the challenge with
        this very verification code, and it is still scanned."""
        return (ch.state == "scanned" and not self.expired(ch) and ch.device == device
                and code.seq == ch.seq)

    def expect_unverifiable_code(self, *, error: ErrorKey, checked_offline: bool) -> Expect:
        """A code whose signature does not verify (``unknown_key``, ``bad_signature``):
        refused before the challenge is looked up, audited without one. A phone that checks
        codes offline refuses it itself and sends nothing."""
        assert error in ((UnknownKey, "unknown_key"), (BadSignature, "bad_signature"))
        if checked_offline:
            return Expect(errors=(error,), audited=False, local=True)
        return Expect(errors=(error,), audited_challenge=None)

    def expect_mismatched_scan(self, ch: ModelChallenge, code: ModelCode, device: str,
                               *, error: str) -> Expect:
        """A code with a verifying signature for this challenge that ``check_scan``
        refuses before it looks at the device: ``wrong_issuer`` (issued by another QR
        server), then ``field_mismatch`` (a claim differs from the challenge), which counts.
        Both come after the attempt budget. Never a repeat of the device's own scan, even
        with its verification code: a repeat is exactly the code that was accepted."""
        assert error in ("wrong_issuer", "field_mismatch")
        if not self.readable(code):
            return Expect(errors=((Expired, "expired"),), audited_challenge=ch.id,
                          challenge_optional=True)
        if ch.attempts >= MAX_FAILURES:
            return Expect(errors=((Locked, "locked"),), audited_challenge=ch.id)
        if error == "field_mismatch":
            self._count(ch)
        return Expect(errors=((Rejected, error),), audited_challenge=ch.id)

    # --- decisions ----------------------------------------------------------------------

    @staticmethod
    def number(challenge: ModelChallenge, number: str, offset: int) -> int | None:
        """``offset`` picks a wrong number: any two-digit one but the right one. Without
        number matching a "wrong" number is one the server must ignore."""
        real = challenge.number
        if number == "none" or (number == "right" and real is None):
            return None
        if number == "right":
            return real
        return (offset if real is None else real - 10 + offset) % 90 + 10

    def _device_and_open_refusal(self, ch: ModelChallenge, device: str) -> Expect | None:
        """What scan and decide both check first, as ``core.confirm`` does: the attempt
        budget, the device and its owner, then that the challenge is still open; past its
        expiry a challenge is expired for every caller, whatever else is wrong."""
        def fail(*errors: ErrorKey) -> Expect:
            return Expect(errors=errors, audited_challenge=ch.id)

        if ch.attempts >= MAX_FAILURES:
            return fail((Locked, "locked"))
        if self.status[device] != "active":
            self._count(ch)
            return fail((NotBound, "not_bound"))
        if self.owners[device] != USER:
            self._count(ch)
            return fail((NotBound, "wrong_user"))
        if ch.state in TERMINAL:
            return fail(self._terminal_error(ch))
        if self.expired(ch):
            self._expire(ch)
            return fail((Expired, "expired"))
        return None

    def expect_decision(self, ch: ModelChallenge, device: str, decision: Decision,
                        number: int | None) -> Expect:
        def fail(*errors: ErrorKey) -> Expect:
            return Expect(errors=errors, audited_challenge=ch.id)

        taken = "approved" if decision == Decision.APPROVE else "denied"
        if ch.state == taken and ch.device == device:
            # A retry of the decision this device took: the same answer, nothing written.
            return Expect(audited=False)
        refused = self._device_and_open_refusal(ch, device)
        if refused is not None:
            return refused
        if ch.state != "scanned":
            return fail((Rejected, "not_scanned"))
        if device != ch.device:
            self._count(ch)
            return fail((WrongDevice, "wrong_device"))
        if decision == Decision.APPROVE and ch.number is not None:
            if number is None:
                self._count(ch)
                return fail((NumberMismatch, "number_required"))
            if number != ch.number:
                # The number travelled (or was guessed): end the challenge for everyone.
                self._kill(ch, "number_mismatch")
                return fail((NumberMismatch, "number_mismatch"))
        if decision == Decision.APPROVE:
            ch.state, ch.reason, ch.approved_with = "approved", "approved", number
        else:
            ch.state, ch.reason = "denied", "denied_by_user"
        ch.decisions += 1
        return Expect(audited_challenge=ch.id)

    # --- the browser and the relying party ----------------------------------------------

    def expect_rotate(self, ch: ModelChallenge) -> Expect:
        """The starting browser asks for a fresh code (never audited)."""
        if ch.state == "pending" and self.expired(ch):
            return Expect(errors=((Expired, "expired"),), audited=False)
        if ch.state == "expired" or (ch.state in OPEN and self.expired(ch)):
            # Not waiting either way: both answers are honest.
            return Expect(errors=((Expired, "expired"), (Rejected, "not_pending")),
                          audited=False)
        if ch.state != "pending":
            return Expect(errors=((Rejected, "not_pending"),), audited=False)
        return Expect(audited=False)

    def expect_cancel(self, ch: ModelChallenge) -> Expect:
        if ch.state in OPEN and not self.expired(ch):
            ch.state, ch.reason = "rejected", "cancelled"
            return Expect(audited_challenge=ch.id)
        if ch.state in OPEN or ch.state == "expired":
            # Past its expiry the challenge is expired for every reader: cancelling it must
            # fail and leave it expired, not turn it into "rejected".
            return Expect(errors=((Expired, "expired"), (AlreadyDecided, "already_decided")),
                          audited_challenge=ch.id)
        return Expect(errors=((AlreadyDecided, "already_decided"),), audited_challenge=ch.id)


# --- the invariants both state machines check against the database ----------------------


def check_stored_challenges(m: ConfirmModel, rt: Any, *, terminal: dict[str, str],
                            device_name: Callable[[str | None], str | None]) -> None:
    """Every stored challenge is what the model says (``device_name`` maps a stored device
    id to the model's name for it), and no challenge a reader saw terminal changed since
    (``terminal`` remembers what was seen, across calls)."""
    with rt.read() as conn:
        rows = [repository.load(conn, ch.id) for ch in m.challenges]
    # Checked first and on its own, from what readers see: the plainest message for the
    # most important property.
    for row in rows:
        seen = row.effective_state(m.now).value
        before = terminal.get(row.id)
        assert before in (None, seen), (
            f"challenge {row.id[:8]} was {before}, a terminal state, and is now {seen}"
        )
        if seen in TERMINAL:
            terminal[row.id] = seen
    for ch, row in zip(m.challenges, rows, strict=True):
        m.adopt_lazy_expiry(ch, row.state.value, row.reason)
        stored = (row.state.value, row.reason, device_name(row.device_id), row.attempts,
                  row.code_seq, row.number, row.expires_at)
        wanted = (ch.state, ch.reason, ch.device, ch.attempts, ch.seq, ch.number,
                  ch.expires_at)
        assert stored == wanted, f"{ch!r}: stored {stored}, model {wanted}"
        if ch.state == "approved" and ch.number is not None:
            assert ch.approved_with == ch.number


def check_browsers_told(m: ConfirmModel, hints: Mapping[str, list[str]]) -> None:
    for ch in m.challenges:
        # No hint yet means the state the start response reported: pending.
        told = hints.get(ch.id, ["pending"])[-1]
        assert told == ch.state, f"{ch!r}: browser last told {told!r}"


def check_decided_at_most_once(m: ConfirmModel, rt: Any) -> None:
    with rt.read() as conn:
        counted: dict[str, int] = {
            challenge_id: count for challenge_id, count in
            conn.execute(DECISIONS, {"ids": [ch.id for ch in m.challenges]})
        }
    for ch in m.challenges:
        assert ch.decisions <= 1
        assert counted.get(ch.id, 0) == ch.decisions
