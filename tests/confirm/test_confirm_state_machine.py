"""Scheme C's service layer as a state machine.

Hypothesis drives ``operations.start`` and ``verification.scan / decide / rotate_code /
cancel`` together with a fake clock against a real database, and checks every outcome
against a model written from SPEC section C and the order of checks in
``qrgate.core.confirm``. Each example gets a fresh database: a copy of a migrated SQLite
file, and also (when ``QRGATE_TEST_DATABASE_URL`` is set) a fresh PostgreSQL schema.

The model tracks the *stored* state. Expiry is lazy in storage, so where a correct server
may or may not have written ``expired`` yet, the model accepts either (see
``_adopt_lazy_expiry``); it never accepts any other change of a challenge that a reader
already sees as terminal.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg import sql
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import make_url

from qrgate.accounts import directory
from qrgate.accounts.provision import provision
from qrgate.config import Settings
from qrgate.confirm import operations, repository, verification
from qrgate.core.confirm import Decision
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.errors import (
    AlreadyDecided,
    Expired,
    Forbidden,
    Locked,
    NotBound,
    NumberMismatch,
    QrgateError,
    Rejected,
    Replayed,
    Superseded,
    WrongDevice,
)
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage.audit import verify_audit
from qrgate.storage.db import after_commit, create_engine_for
from qrgate.storage.models import AuditEntry, AuditHead, devices
from qrgate.storage.schema import upgrade

CONFIRM_TTL = 300
CODE_TTL = 30
MAX_FAILURES = 5
# ``qrgate.core.codes.decode_code``'s default leeway: a code still reads this long after exp.
CODE_LEEWAY = 5
START = 1_800_000_000.0
# Open challenges at once, and in all: finished ones are replaced so that cancels and
# kills do not end the interesting part of an example early.
MAX_OPEN_CHALLENGES = 3
MAX_CHALLENGES = 10

OPEN = ("pending", "scanned")
TERMINAL = ("approved", "denied", "rejected", "expired", "cancelled")
# a3 belongs to alice but was unbound: it must never win anything.
DEVICE_OWNERS = {"a1": "alice", "a2": "alice", "b1": "bob", "a3": "alice"}
DEVICE_STATUS = {"a1": "active", "a2": "active", "b1": "active", "a3": "unbound"}

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

# Built once: building a SQLAlchemy statement per step costs more than running it.
_HEAD_SEQ = select(AuditHead.seq).where(AuditHead.id == 1)
_ENTRY = select(AuditEntry.event, AuditEntry.reason, AuditEntry.challenge_id).where(
    AuditEntry.seq == bindparam("seq"))
_DECISIONS = (
    select(AuditEntry.challenge_id, func.count())
    .where(AuditEntry.event.in_(("confirm.approve", "confirm.deny")),
           AuditEntry.reason.in_(("approved", "denied_by_user")))
    .group_by(AuditEntry.challenge_id)
)
# Verifying the whole chain after every step made it the slowest check; every few steps
# and at teardown still pins a broken entry to a short stretch of steps.
AUDIT_CHECK_EVERY = 5

ErrorKey = tuple[type[QrgateError], str]
# The id a start call creates is unknown until it returns; the rule checks it afterwards.
NEW_CHALLENGE = "<new challenge>"


def _public_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


# The service layer never checks the key (the HTTP layer verified the device's signature),
# so one key for every device keeps examples fast.
PUBLIC_KEY = _public_key()


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


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
    seq: int
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


@dataclass
class Database:
    data_dir: Path
    url: str
    cleanup: Callable[[], None] = field(default=lambda: None)
    migrated: bool = False


DatabaseFactory = Callable[[], Database]


class ConfirmMachine(RuleBasedStateMachine):
    challenges = Bundle("challenges")
    # Challenges that some device scanned: the honest decision draws from these, or it
    # would mostly meet challenges nobody scanned.
    scanned = Bundle("scanned")

    def __init__(self, new_database: DatabaseFactory) -> None:
        super().__init__()
        self.database = new_database()
        try:
            self.rt = self._build_runtime()
        except BaseException:
            self.database.cleanup()
            raise
        self.model: list[ModelChallenge] = []
        self.invariant_checks = 0
        self.last_audited: str | None = None
        # The first terminal state readers saw, per challenge.
        self.terminal: dict[str, str] = {}

    # --- setup ------------------------------------------------------------------------

    def _build_runtime(self) -> Runtime:
        rt = build_runtime(Settings(data_dir=self.database.data_dir,
                                    database_url=self.database.url,
                                    confirm_ttl=CONFIRM_TTL, code_ttl=CODE_TTL,
                                    max_failures=MAX_FAILURES,
                                    # The user-level count of failed proofs is its own test
                                    # (test_rejections); out of reach here, so that this
                                    # machine models one challenge's life only.
                                    user_max_failures=100),
                           migrate=not self.database.migrated)
        try:
            self.clock = FakeClock(START)
            rt.clock = self.clock
            self.bus = RecordingBus(rt.events)
            rt.events = self.bus
            # Off, so that only the request's flag turns number matching on.
            provisioned = provision(
                rt, org_slug="bank", org_name="Example Bank", business_id="web",
                app_name="Web banking",
                policy=AppPolicy(number_matching=NumberMatching.OFF),
                users={"alice": None, "bob": None},
            )
            with rt.engine.begin() as conn:
                self.app = directory.get_app(conn, provisioned.app_id)
                user_ids = {login: directory.find_user(conn, org_id=provisioned.org_id,
                                                       login=login).id
                            for login in ("alice", "bob")}
                for name, owner in DEVICE_OWNERS.items():
                    conn.execute(insert(devices).values(
                        id=name, user_id=user_ids[owner], client_app_id="qrgate-pwa",
                        name=name, public_key=PUBLIC_KEY, status=DEVICE_STATUS[name],
                        created_at=START,
                        unbound_at=START if DEVICE_STATUS[name] == "unbound" else None,
                    ))
                self.devices = {name: directory.get_device(conn, name)
                                for name in DEVICE_OWNERS}
        except BaseException:
            rt.close()
            raise
        return rt

    def teardown(self) -> None:
        try:
            self._verify_audit()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self.rt.close()
        finally:
            self.database.cleanup()

    # --- model helpers ----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def _readable(self, code: ModelCode) -> bool:
        return self.now <= code.expires_at + CODE_LEEWAY

    def _some_open(self, state: str) -> bool:
        # Honest steps wait until they have something to act on; adversarial ones never do.
        return any(ch.state == state and not self._expired(ch) for ch in self.model)

    def _open_challenges(self) -> int:
        return sum(ch.state in OPEN and not self._expired(ch) for ch in self.model)

    def _expired(self, ch: ModelChallenge) -> bool:
        return self.now >= ch.expires_at

    def _count(self, ch: ModelChallenge) -> None:
        ch.attempts += 1
        # A reader already sees a challenge past its expiry as expired (terminal): locking
        # it then would change a terminal state.
        if ch.attempts >= MAX_FAILURES and ch.state in OPEN and not self._expired(ch):
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

    # --- running an operation -----------------------------------------------------------

    def _audit_head(self) -> int:
        with self.rt.read() as conn:
            return int(conn.execute(_HEAD_SEQ).scalar_one())

    def _run(
        self,
        action: Callable[[], Any],
        expect: Expect,
        *,
        audit_event: str,
        success_reason: str = "",
    ) -> Any:
        before = self._audit_head()
        try:
            result, error = action(), None
        except QrgateError as caught:
            result, error = None, caught
        # Anything but a QrgateError propagates and fails the example: never a crash.
        if expect.errors:
            assert error is not None, f"expected one of {expect.errors}, got success"
            assert (type(error), error.code) in expect.errors, (
                f"expected one of {expect.errors}, got {type(error).__name__}({error.code})"
            )
        else:
            assert error is None, f"expected success, got {type(error).__name__}({error.code})"
        self._check_audit_entry(before, expect, audit_event,
                                success_reason if error is None else error.code)
        return result

    def _check_audit_entry(self, before: int, expect: Expect, audit_event: str,
                           reason: str) -> None:
        if not expect.audited:
            return
        after = self._audit_head()
        assert after == before + 1, "every decision, success or failure, is audited once"
        with self.rt.read() as conn:
            entry = conn.execute(_ENTRY, {"seq": after}).one()
        self.last_audited = entry.challenge_id
        assert (entry.event, entry.reason) == (audit_event, reason)
        if expect.audited_challenge != NEW_CHALLENGE:
            allowed = {expect.audited_challenge}
            if expect.challenge_optional:
                allowed.add(None)
            assert entry.challenge_id in allowed, entry

    # --- rules --------------------------------------------------------------------------

    # Swarm testing turns ``start`` off in many examples: without a first challenge from
    # ``initialize`` those would have nothing to work on.
    @initialize(target=challenges, number_matching=st.booleans())
    def start_first(self, number_matching: bool) -> ModelChallenge:
        return self.start(number_matching)

    @precondition(lambda self: len(self.model) < MAX_CHALLENGES
                  and self._open_challenges() < MAX_OPEN_CHALLENGES)
    @rule(target=challenges, number_matching=st.booleans())
    def start(self, number_matching: bool) -> ModelChallenge:
        request = operations.StartRequest(login="alice", operation="transfer",
                                          amount="25.00", currency="EUR",
                                          number_matching=number_matching)
        started = self._run(
            lambda: operations.start(self.rt, app=self.app, request=request),
            Expect(audited_challenge=NEW_CHALLENGE), audit_event="confirm.start",
            success_reason="started",
        )
        assert self.last_audited == started.challenge.id
        number = started.challenge.number
        if number_matching:
            assert number is not None and 10 <= number <= 99
        else:
            assert number is None
        assert started.code is not None
        expires_at = self.now + CONFIRM_TTL
        ch = ModelChallenge(
            id=started.challenge.id, browser_token=started.browser_token, number=number,
            expires_at=expires_at,
            codes=[ModelCode(started.code, 0, self._code_expiry(expires_at))],
        )
        self.model.append(ch)
        return ch

    def _code_expiry(self, challenge_expires_at: float) -> int:
        # The code's exp claim: the code TTL from the whole second it was issued, never
        # past the challenge (``operations.start``, ``qr_server.rotate``/``code_for``).
        return min(int(self.now) + CODE_TTL, int(challenge_expires_at))

    # Honest and adversarial variants of scan and decide are separate rules: it doubles
    # the weight of the steps that move a flow forward, and swarm testing (hypothesis
    # turns random subsets of rules off per example) then also yields runs of pure
    # happy paths that reach approvals.

    # The page keeps a readable code on screen (it rotates before a code expires), so the
    # honest scan waits for one; ``scan_any_code`` covers stale codes.
    @precondition(lambda self: any(ch.state == "pending" and not self._expired(ch)
                                   and self._readable(ch.codes[-1]) for ch in self.model))
    @rule(target=scanned, challenge=challenges, device=st.sampled_from(("a1", "a2")))
    def scan_shown_code(self, challenge: ModelChallenge, device: str) -> Any:
        """The user scans the code on screen with one of their phones."""
        return self._scan(challenge, challenge.codes[-1], device)

    @rule(target=scanned, challenge=challenges, device=st.sampled_from(sorted(DEVICE_OWNERS)),
          age=st.integers(min_value=0, max_value=3))
    def scan_any_code(self, challenge: ModelChallenge, device: str, age: int) -> Any:
        """Any device scans the code on screen (``age`` 0) or an older, rotated-out one."""
        return self._scan(challenge, challenge.codes[max(len(challenge.codes) - 1 - age, 0)],
                          device)

    def _scan(self, challenge: ModelChallenge, code: ModelCode, device: str) -> Any:
        expect = self._expect_scan(challenge, code, device)
        context = self._run(
            lambda: verification.scan(self.rt, code_text=code.text,
                                      device=self.devices[device]),
            expect, audit_event="confirm.scan", success_reason="scanned",
        )
        if context is None:
            return multiple()
        # The phone shows what the server verified: this challenge, this user's operation.
        assert context.challenge.id == challenge.id
        assert context.challenge.login == "alice"
        assert context.challenge.scene["operation"] == "transfer"
        assert context.app.id == self.app.id
        return challenge

    def _expect_scan(self, ch: ModelChallenge, code: ModelCode, device: str) -> Expect:
        if not self._readable(code):
            # Refused when its signature and expiry are checked, before the challenge is
            # looked up: nothing about the challenge may change.
            return Expect(errors=((Expired, "expired"),), audited_challenge=ch.id,
                          challenge_optional=True)

        def fail(*errors: ErrorKey) -> Expect:
            return Expect(errors=errors, audited_challenge=ch.id)

        if (ch.state == "scanned" and not self._expired(ch) and ch.device == device
                and code.seq == ch.seq):
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

    @precondition(lambda self: self._some_open("pending"))
    @rule(challenge=challenges,
          other_browser=st.integers(min_value=0, max_value=7).map(lambda n: n == 7))
    def rotate(self, challenge: ModelChallenge, other_browser: bool) -> None:
        """The waiting page asks for a fresh code; now and then another browser asks."""
        if other_browser:
            self._run(
                lambda: verification.rotate_code(self.rt, challenge_id=challenge.id,
                                                 browser_token=secrets.token_urlsafe(32)),
                Expect(errors=((Forbidden, "wrong_browser"),), audited=False),
                audit_event="confirm.rotate",
            )
            return
        if challenge.state == "pending" and self._expired(challenge):
            expect = Expect(errors=((Expired, "expired"),), audited=False)
        elif challenge.state == "expired" or (challenge.state in OPEN
                                              and self._expired(challenge)):
            # Not waiting either way: both answers are honest.
            expect = Expect(errors=((Expired, "expired"), (Rejected, "not_pending")),
                            audited=False)
        elif challenge.state != "pending":
            expect = Expect(errors=((Rejected, "not_pending"),), audited=False)
        else:
            expect = Expect(audited=False)
        result = self._run(
            lambda: verification.rotate_code(self.rt, challenge_id=challenge.id,
                                             browser_token=challenge.browser_token),
            expect, audit_event="confirm.rotate", success_reason="rotated",
        )
        if result is not None:
            row, code = result
            challenge.seq += 1
            assert row.code_seq == challenge.seq
            challenge.codes.append(
                ModelCode(code, challenge.seq, self._code_expiry(challenge.expires_at))
            )

    @precondition(lambda self: self._some_open("scanned"))
    @rule(challenge=scanned, decision=st.sampled_from(Decision), number=NUMBER_CHOICE,
          offset=WRONG_OFFSET)
    def decide_as_scanner(self, challenge: ModelChallenge, decision: Decision, number: str,
                          offset: int) -> None:
        """The phone that scanned decides, with the number the browser shows, a mistyped
        one or none."""
        assert challenge.device is not None
        self._decide(challenge, challenge.device, decision,
                     self._number(challenge, number, offset))

    @rule(challenge=challenges, device=st.sampled_from(sorted(DEVICE_OWNERS)),
          decision=st.sampled_from(Decision), number=NUMBER_CHOICE, offset=WRONG_OFFSET)
    def decide_any(self, challenge: ModelChallenge, device: str, decision: Decision,
                   number: str, offset: int) -> None:
        """Any device decides."""
        self._decide(challenge, device, decision, self._number(challenge, number, offset))

    @staticmethod
    def _number(challenge: ModelChallenge, number: str, offset: int) -> int | None:
        """``offset`` picks a wrong number: any two-digit one but the right one. Without
        number matching a "wrong" number is one the server must ignore."""
        real = challenge.number
        if number == "none" or (number == "right" and real is None):
            return None
        if number == "right":
            return real
        return (offset if real is None else real - 10 + offset) % 90 + 10

    def _decide(self, challenge: ModelChallenge, device: str, decision: Decision,
                sent: int | None) -> None:
        expect = self._expect_decision(challenge, device, decision, sent)
        self._run(
            lambda: verification.decide(self.rt, challenge_id=challenge.id,
                                        device=self.devices[device], decision=decision,
                                        number=sent),
            expect, audit_event=f"confirm.{decision.value}",
            success_reason="approved" if decision == Decision.APPROVE else "denied_by_user",
        )

    def _device_and_open_refusal(self, ch: ModelChallenge, device: str) -> Expect | None:
        """What scan and decide both check first, as ``core.confirm`` does: the attempt
        budget, the device and its owner, then that the challenge is still open; past its
        expiry a challenge is expired for every caller, whatever else is wrong."""
        def fail(*errors: ErrorKey) -> Expect:
            return Expect(errors=errors, audited_challenge=ch.id)

        if ch.attempts >= MAX_FAILURES:
            return fail((Locked, "locked"))
        if DEVICE_STATUS[device] != "active":
            self._count(ch)
            return fail((NotBound, "not_bound"))
        if DEVICE_OWNERS[device] != "alice":
            self._count(ch)
            return fail((NotBound, "wrong_user"))
        if ch.state in TERMINAL:
            return fail(self._terminal_error(ch))
        if self._expired(ch):
            self._expire(ch)
            return fail((Expired, "expired"))
        return None

    def _expect_decision(self, ch: ModelChallenge, device: str, decision: Decision,
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

    # Cancelling finished challenges over and over would crowd out everything else.
    @precondition(lambda self: self._some_open("pending") or self._some_open("scanned"))
    @rule(challenge=challenges)
    def cancel(self, challenge: ModelChallenge) -> None:
        ch = challenge
        if ch.state in OPEN and not self._expired(ch):
            ch.state, ch.reason = "rejected", "cancelled"
            expect = Expect(audited_challenge=ch.id)
        elif ch.state in OPEN or ch.state == "expired":
            # Past its expiry the challenge is expired for every reader: cancelling it must
            # fail and leave it expired, not turn it into "rejected".
            expect = Expect(errors=((Expired, "expired"), (AlreadyDecided, "already_decided")),
                            audited_challenge=ch.id)
        else:
            expect = Expect(errors=((AlreadyDecided, "already_decided"),),
                            audited_challenge=ch.id)
        self._run(
            lambda: verification.cancel(self.rt, app=self.app, challenge_id=ch.id),
            expect, audit_event="confirm.cancel", success_reason="cancelled",
        )

    @rule(seconds=ADVANCE)
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    # --- invariants ---------------------------------------------------------------------

    def _adopt_lazy_expiry(self, ch: ModelChallenge, state: str, reason: str | None) -> None:
        """A server may write ``expired`` whenever it likes once the challenge is past its
        expiry; it may write nothing else there."""
        if ch.state in OPEN and self._expired(ch) and (state, reason) == ("expired", "expired"):
            ch.state, ch.reason = "expired", "expired"

    @invariant()
    def stored_challenges_match_the_model(self) -> None:
        with self.rt.read() as conn:
            rows = [repository.load(conn, ch.id) for ch in self.model]
        # Checked first and on its own, from what readers see: the plainest message for
        # the most important property.
        for row in rows:
            seen = row.effective_state(self.now).value
            before = self.terminal.get(row.id)
            assert before in (None, seen), (
                f"challenge {row.id[:8]} was {before}, a terminal state, and is now {seen}"
            )
            if seen in TERMINAL:
                self.terminal[row.id] = seen
        for ch, row in zip(self.model, rows, strict=True):
            self._adopt_lazy_expiry(ch, row.state.value, row.reason)
            stored = (row.state.value, row.reason, row.device_id, row.attempts, row.code_seq,
                      row.number, row.expires_at)
            wanted = (ch.state, ch.reason, ch.device, ch.attempts, ch.seq, ch.number,
                      ch.expires_at)
            assert stored == wanted, f"{ch!r}: stored {stored}, model {wanted}"
            if ch.state == "approved" and ch.number is not None:
                assert ch.approved_with == ch.number

    @invariant()
    def the_browser_was_told_the_stored_state(self) -> None:
        for ch in self.model:
            # No hint yet means the state the start response reported: pending.
            told = self.bus.hints.get(ch.id, ["pending"])[-1]
            assert told == ch.state, f"{ch!r}: browser last told {told!r}"

    @invariant()
    def each_challenge_is_decided_at_most_once(self) -> None:
        with self.rt.read() as conn:
            counted: dict[str, int] = {
                challenge_id: count for challenge_id, count in conn.execute(_DECISIONS)
            }
        for ch in self.model:
            assert ch.decisions <= 1
            assert counted.get(ch.id, 0) == ch.decisions

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        self.invariant_checks += 1
        if self.invariant_checks % AUDIT_CHECK_EVERY == 0:
            self._verify_audit()

    def _verify_audit(self) -> None:
        with self.rt.read() as conn:
            report = verify_audit(conn)
        assert report.ok, report


# Measured on 2 cores when passing: ~13 s on SQLite (~0.09 s an example) and ~8 s on
# PostgreSQL (~0.25 s an example: a fresh schema, migrated, and dropped), hence fewer
# examples there. Shrinking a failure runs thousands of short examples and takes minutes
# (see FAILING_RUN_TIMEOUT). The explain phase is off: it reruns a failure many times over
# for little that a stateful report gains.
SQLITE_SETTINGS = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)
POSTGRES_SETTINGS = settings(SQLITE_SETTINGS, max_examples=30)
# Above the suite's 120 s default, so that a failure gets shrunk and printed instead of
# cut off mid-shrink; hypothesis stops shrinking after five minutes of its own accord.
FAILING_RUN_TIMEOUT = 600


@contextmanager
def _sqlite_databases(root: Path) -> Iterator[DatabaseFactory]:
    # Migrating took most of an example's setup (~25 ms); shrinking a failure runs
    # thousands of short examples, so each gets a copy of a database migrated once.
    template = root / "template.db"
    engine = create_engine_for(f"sqlite:///{template.as_posix()}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()

    def new() -> Database:
        home = Path(tempfile.mkdtemp(dir=root))
        shutil.copyfile(template, home / "qrgate.db")
        # The server's keys are made once: they play no part in what the machine explores.
        return Database(data_dir=root / "data",
                        url=f"sqlite:///{(home / 'qrgate.db').as_posix()}",
                        cleanup=lambda: shutil.rmtree(home, ignore_errors=True),
                        migrated=True)

    yield new


@contextmanager
def _postgres_databases(admin_url: str, root: Path) -> Iterator[DatabaseFactory]:
    libpq = make_url(admin_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:

        def new() -> Database:
            # A fresh schema per example, as tests/conftest.py's ``database_url`` does.
            schema = f"t_{secrets.token_hex(6)}"
            admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            home = Path(tempfile.mkdtemp(dir=root))

            def cleanup() -> None:
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
                shutil.rmtree(home, ignore_errors=True)

            url = make_url(admin_url).update_query_dict(
                {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
            return Database(data_dir=home / "data", url=url, cleanup=cleanup)

        yield new


@pytest.mark.timeout(FAILING_RUN_TIMEOUT)
def test_confirm_state_machine_sqlite(tmp_path: Path) -> None:
    with _sqlite_databases(tmp_path) as new_database:
        run_state_machine_as_test(lambda: ConfirmMachine(new_database),
                                  settings=SQLITE_SETTINGS)


@pytest.mark.postgres
@pytest.mark.timeout(FAILING_RUN_TIMEOUT)
def test_confirm_state_machine_postgres(pg_admin_url: str, tmp_path: Path) -> None:
    with _postgres_databases(pg_admin_url, tmp_path) as new_database:
        run_state_machine_as_test(lambda: ConfirmMachine(new_database),
                                  settings=POSTGRES_SETTINGS)
