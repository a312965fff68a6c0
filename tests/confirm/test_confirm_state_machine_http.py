"""Scheme C over HTTP as a state machine, checked against the model in
``support.confirm_model`` (the one ``test_confirm_state_machine.py`` checks the service layer
against).

One real server runs for the whole test (``support.stack``: uvicorn on loopback, on SQLite
and on PostgreSQL), with the stack's fake clock driving the server and the phones alike.
Each example brings its own people: two fresh users (alice and bob, under logins of their
own) and five phones, each with its own ES256 key, bound over HTTP with the enrolment's
confirmation code:

* ``a1``, ``a2``: alice's phones; ``a2`` is frozen and unfrozen on the way
  (``directory.set_device_frozen``, what ``qrgate admin device freeze`` does);
* ``af``: alice's, frozen from the start; ``a3``: alice's, unbound (``DELETE /v1/devices/me``);
* ``b1``: bob's.

Hypothesis then interleaves what the parties do, every request a real one:

* the relying party starts and cancels challenges with its API key (``QrgateClient``);
* the waiting browser rotates the code with its browser token (``BrowserSession``), and now
  and then another browser tries (a random token, or another challenge's);
* phones scan the code on screen or an older one (one the page replaced as the camera was
  on it, too), checking it offline first or not, and approve or deny with the right number,
  a wrong one or none, with signed requests (``PhoneSimulator``), now and then a second
  before, at or after the code or the challenge ends; the last scan or decision that
  succeeded is sometimes sent again (a lost reply); phones other than the one that scanned
  scan and decide too, and bob's phone tries alice's code again and again until it locks;
* forgers scan codes re-signed with a key the server never had (``unknown_key``, or
  ``bad_signature`` under the server's key id), codes of another deployment whose key this
  server trusts but whose ``QRGATE_ISSUER`` differs (``wrong_issuer``), and codes the
  server's own keyring signed over a changed claim (``field_mismatch``);
* the clock advances, by steps or to a second before, at or after the moment a challenge,
  the code on its page or a window of refused device requests ends.

After every step: each refusal had exactly the HTTP status and problem ``code`` the model
expects (a phone's offline refusal, the error type); every request the model says is
audited appended exactly one audit entry with its event, reason and challenge, and the
others none (refused device authentications are ``device.auth`` entries: per device and
reason the first of each minute, carrying the count of the others before it, as
``qrgate.refusals`` promises; each example gives it the fake clock); the stored challenges
match the model, and a state readers saw as terminal never changes; each challenge is
decided at most once; the last hint published per challenge is its stored state; and the
browser's own view of each challenge the step touched (``GET`` with its token, and the
first event of ``/events``) is the state the model says a reader sees. Each new stretch of
the audit chain is checked after every step, and qrgate's own verifier checks all of it at
the start, at the end, and whenever the log has doubled. A repeated scan or decision must
get the very answer the first one got.

Configuration
    ``QRGATE_STATEFUL_EXAMPLES``: examples per database (default 60 on SQLite and 35 on
    PostgreSQL, about 15 and 20 s on a busy 2-core machine), e.g.
    ``QRGATE_STATEFUL_EXAMPLES=500`` for a longer local run (about 2 and 4 minutes).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base45
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from qrgate.accounts import directory
from qrgate.clients.browser import BrowserSession
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.config import Settings
from qrgate.confirm import repository
from qrgate.core.audit_chain import digest_of
from qrgate.core.confirm import Decision, issue_code
from qrgate.core.cose import parse_sign1, sign1
from qrgate.core.keyring import KeyRing, kid_for
from qrgate.errors import (
    BadSignature,
    Expired,
    Forbidden,
    Frozen,
    QrgateError,
    Unauthenticated,
    UnknownKey,
)
from qrgate.keystore import ENV_SIGNING_KEY_FILE, ENV_VERIFY_KEY_FILES
from qrgate.refusals import WINDOW_SECONDS, RefusalAudit
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage.audit import verify_audit
from support.confirm_model import (
    CODE_LEEWAY,
    CODE_TTL,
    CONFIRM_TTL,
    ENTRY,
    HEAD,
    HEAD_SEQ,
    MAX_CHALLENGES,
    MAX_FAILURES,
    MAX_OPEN_CHALLENGES,
    NEW_CHALLENGE,
    NUMBER_CHOICE,
    OPEN,
    TAIL,
    WRONG_OFFSET,
    ConfirmModel,
    ErrorKey,
    Expect,
    ModelChallenge,
    ModelCode,
    RecordingBus,
    check_browsers_told,
    check_decided_at_most_once,
    check_stored_challenges,
)
from support.stack import Stack

DEVICE_OWNERS = {"a1": "alice", "a2": "alice", "af": "alice", "a3": "alice", "b1": "bob"}
DEVICE_STATUS = {"a1": "active", "a2": "active", "af": "frozen", "a3": "unbound",
                 "b1": "active"}
# The phone that an operator freezes and unfreezes while flows are under way.
TOGGLED = "a2"
BRANCH_ISSUER = "branch-qrgate"
REQUESTER_IP = "198.51.100.20"
# Claims a forger changes, and how (``field_mismatch``).
FIELD_CHANGES = ("org", "business", "login", "operation", "amount", "url", "number_matching")
FORGERIES = ("unknown_key", "bad_signature", "wrong_issuer", "field_mismatch")
# The service-layer machine's steps of time without its long uniform jumps (its boundaries
# stay, and the refusal window's join them): each HTTP step costs more, so fewer jumps that
# end every flow at once.
ADVANCE_HTTP = st.one_of(
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=30),
    st.sampled_from([5, 6, 29, 30, 31, 35, 36, 59, 60, 61, 299, 300, 301]),
)

EXAMPLES_VARIABLE = "QRGATE_STATEFUL_EXAMPLES"


def _examples(default: int) -> int:
    raw = os.environ.get(EXAMPLES_VARIABLE, "").strip()
    return int(raw) if raw else default


SQLITE_EXAMPLES, POSTGRES_EXAMPLES = _examples(60), _examples(35)
# Measured on a busy 2-core machine (load 2.5) when passing: about 15 s on SQLite and 20 s
# on PostgreSQL, 0.25 s and 0.55 s an example (an example binds five phones, then runs up to
# 50 steps of a few requests and database reads each). The explain phase is off, as in the
# service-layer machine: it reruns a failure many times over for little.
SQLITE_SETTINGS = settings(
    max_examples=SQLITE_EXAMPLES, stateful_step_count=50, deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)
POSTGRES_SETTINGS = settings(SQLITE_SETTINGS, max_examples=POSTGRES_EXAMPLES)
# Generating (well under a second an example) and hypothesis's own five minutes of
# shrinking: above the suite's 120 s default, so that a failure gets shrunk and printed
# instead of cut off.
FAILING_RUN_TIMEOUT = 600 + max(SQLITE_EXAMPLES, POSTGRES_EXAMPLES)


@dataclass
class World:
    """What every example of one test shares: the running server and the other
    deployment."""

    stack: Stack
    bus: RecordingBus
    # One connection pool for every phone and browser: a client of its own each would
    # make each its own TLS context, which costs more than the requests it sends.
    transport: httpx.HTTPTransport
    # A second deployment: its own signing key (which this server trusts through
    # QRGATE_VERIFY_KEY_FILES) and its own QRGATE_ISSUER.
    branch: Runtime
    # The last audit entry whose chain was checked, (seq, hash); and how long the log
    # was when ``verify_audit`` last verified the whole of it.
    chained: tuple[int, bytes] = (0, b"")
    verified: int = 0

    def verify_audit(self) -> None:
        """The whole chain, by qrgate's own verifier."""
        with self.stack.rt.read() as conn:
            report = verify_audit(conn)
            head = conn.execute(HEAD).one()
        assert report.ok, report
        self.chained, self.verified = (int(head.seq), bytes(head.hash)), int(head.seq)

    def verify_audit_now_and_then(self) -> None:
        """The whole chain again once the log has doubled: every example's own stretch is
        checked step by step, and the log is shared by all examples, so verifying all of
        it after each would make a long run quadratic."""
        if self.chained[0] >= 2 * self.verified:
            self.verify_audit()


class HttpConfirmMachine(RuleBasedStateMachine):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.stack = world.stack
        self.rt = world.stack.rt
        self.clock = world.stack.clock
        # Each example counts refused device authentications afresh, on the fake clock, so
        # that which refusal is written is exact (``qrgate.refusals``).
        self.rt.refusals = RefusalAudit(clock=self.clock)
        # Per device and reason: when the refusal window opened, and the refusals counted
        # in it but not written.
        self.windows: dict[tuple[str, str], list[float]] = {}
        self._bind_phones()
        self.m = ConfirmModel(clock=self.clock, owners=DEVICE_OWNERS,
                              status=dict(DEVICE_STATUS))
        self.model: list[ModelChallenge] = self.m.challenges
        self.browsers: dict[str, BrowserSession] = {}
        self.last_entry: Any = None
        # The first terminal state readers saw, per challenge.
        self.terminal: dict[str, str] = {}
        # Challenges whose browser view to check after this step.
        self.touched: set[str] = set()
        # The first answer to each successful scan and decision, which a repeat must get.
        self.answers: dict[tuple[str, ...], Any] = {}
        self.last_request: Callable[[], object] | None = None

    # --- setup ------------------------------------------------------------------------

    def _bind_phones(self) -> None:
        tag = secrets.token_hex(4)
        self.logins = {"alice": f"alice-{tag}", "bob": f"bob-{tag}"}
        for login in self.logins.values():
            self.stack.rp.create_user(login)
        self.phones: dict[str, PhoneSimulator] = {}
        for name, owner in DEVICE_OWNERS.items():
            phone = PhoneSimulator(self.stack.base_url, name=name, clock=self.clock,
                                   transport=self.world.transport)
            enrolment = self.stack.rp.start_enrolment(self.logins[owner])
            phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
            self.phones[name] = phone
        assert self.phones["a3"].unbind()["status"] == "unbound"
        self._set_frozen("af", frozen=True)
        self.names = {phone.device_id: name for name, phone in self.phones.items()}

    def _set_frozen(self, device: str, *, frozen: bool) -> None:
        device_id = self.phones[device].device_id
        assert device_id is not None
        with self.rt.engine.begin() as conn:
            directory.set_device_frozen(conn, device_id=device_id, frozen=frozen)

    def teardown(self) -> None:
        self._check_audit_tail()
        self.world.verify_audit_now_and_then()

    def _browser(self, challenge: ModelChallenge, token: str) -> BrowserSession:
        return BrowserSession(self.stack.base_url, challenge.id, token,
                              transport=self.world.transport)

    # --- running a request --------------------------------------------------------------

    def _audit_head(self) -> int:
        with self.rt.read() as conn:
            return int(conn.execute(HEAD_SEQ).scalar_one())

    def _run(
        self,
        action: Callable[[], Any],
        expect: Expect,
        *,
        audit_event: str,
        success_reason: str = "",
    ) -> Any:
        """Send the request; the answer must be the one ``expect`` allows: success, or a
        problem document with exactly an expected status and code (or, for ``local``, the
        phone's own refusal)."""
        before = self._audit_head()
        try:
            result, error = action(), None
        except (ApiError, QrgateError) as caught:
            result, error = None, caught
        reason = success_reason
        if not expect.errors:
            assert error is None, f"expected success, got {_describe(error)}"
        elif expect.local:
            assert isinstance(error, QrgateError), (
                f"expected the phone to refuse with one of {expect.errors}, got {_describe(error)}")
            assert (type(error), error.code) in expect.errors, _describe(error)
        else:
            wanted = {(kind.status, code) for kind, code in expect.errors}
            assert isinstance(error, ApiError), (
                f"expected one of {sorted(wanted)}, got {_describe(error)}")
            assert (error.status, error.code) in wanted, (
                f"expected one of {sorted(wanted)}, got {_describe(error)}")
            # An RFC 9457 problem document naming the same status and code.
            assert error.problem["status"] == error.status
            assert error.problem["type"].endswith("/" + error.code)
            reason = error.code
        self._check_audit_entry(before, expect, audit_event, reason)
        return result

    def _check_audit_entry(self, before: int, expect: Expect, audit_event: str,
                           reason: str) -> None:
        after = self._audit_head()
        if not expect.audited:
            assert after == before, "a request that changes nothing appends no audit entry"
            return
        assert after == before + 1, "every decision, success or failure, is audited once"
        with self.rt.read() as conn:
            entry = conn.execute(ENTRY, {"seq": after}).one()
        self.last_entry = entry
        assert (entry.event, entry.reason) == (audit_event, reason)
        if expect.audited_challenge != NEW_CHALLENGE:
            allowed = {expect.audited_challenge}
            if expect.challenge_optional:
                allowed.add(None)
            assert entry.challenge_id in allowed, entry

    # --- what the HTTP layer adds to the model -------------------------------------------

    def _device_refusal(self, device: str) -> tuple[Expect, int] | None:
        """The device signature is checked before anything else: a frozen or unbound phone
        is refused there, its challenge untouched. ``qrgate.refusals`` writes the first
        refusal per device and reason in a window, with the number of those it counted
        (not wrote) in the window before, and only counts the others."""
        status = self.m.status[device]
        if status == "active":
            return None
        error: ErrorKey = ((Frozen, "frozen") if status == "frozen"
                           else (Unauthenticated, "device_unbound"))
        key = (error[1], device)
        window = self.windows.get(key)
        if window is not None and self.m.now - window[0] < WINDOW_SECONDS:
            window[1] += 1
            return Expect(errors=(error,), audited=False), 0
        self.windows[key] = [self.m.now, 0]
        return Expect(errors=(error,), audited_challenge=None), int(window[1] if window else 0)

    def _device_request(self, device: str, action: Callable[[], Any],
                        expect: Callable[[], Expect], *, audit_event: str,
                        success_reason: str) -> Any:
        """A signed request of ``device``: refused at its signature check, or answered as
        ``expect`` (called only if the request gets that far) says."""
        refused = self._device_refusal(device)
        if refused is None:
            return self._run(action, expect(), audit_event=audit_event,
                             success_reason=success_reason)
        refusal, repeats = refused
        self._run(action, refusal, audit_event="device.auth")
        if refusal.audited:
            entry = self.last_entry
            assert entry.device_id == self.phones[device].device_id, entry
            assert entry.detail.get("repeats") == (repeats or None), entry
        return None

    # --- choosing a challenge -------------------------------------------------------------

    # Rules draw the challenge they act on from the model. Honest steps act on one they can
    # move forward (a user scans the page in front of them); adversarial ones mostly on one
    # still open, where a refusal can change something, and sometimes on any.

    def _pick(self, data: st.DataObject) -> ModelChallenge:
        live = [ch for ch in self.model if ch.state in OPEN and not self.m.expired(ch)]
        pool = live if live and data.draw(st.integers(0, 3), label="prefer open") else self.model
        return data.draw(st.sampled_from(pool), label="challenge")

    # Honest phones also act a moment too late: a code read just before the challenge
    # expired, a decision a second after it; that is where expiry's off-by-one errors live.

    def _showing(self) -> list[ModelChallenge]:
        """Challenges whose page shows (or just showed) a readable code: the page rotates
        before a code expires, so the honest scans wait for one; ``scan_any_code`` covers
        stale codes."""
        return [ch for ch in self.model
                if ch.state == "pending" and self.m.readable(ch.codes[-1])]

    def _rotated(self) -> list[ModelChallenge]:
        """Challenges waiting whose code before the last rotation is still readable."""
        return [ch for ch in self.model if ch.state == "pending" and len(ch.codes) > 1
                and self.m.readable(ch.codes[-2])]

    def _scanned(self) -> list[ModelChallenge]:
        """Scanned challenges, still open or expired within the last two seconds."""
        return [ch for ch in self.model
                if ch.state == "scanned" and self.m.now < ch.expires_at + 2]

    def _can_start(self) -> bool:
        return (len(self.model) < MAX_CHALLENGES
                and self.m.open_challenges() < MAX_OPEN_CHALLENGES)

    # --- rules: the relying party ---------------------------------------------------------

    # Swarm testing turns ``start`` off in many examples: without a first challenge from
    # ``initialize`` those would have nothing to work on.
    @initialize(number_matching=st.booleans())
    def start_first(self, number_matching: bool) -> None:
        self._start(number_matching)

    @precondition(lambda self: self._can_start())
    @rule(number_matching=st.booleans())
    def start(self, number_matching: bool) -> None:
        self._start(number_matching)

    def _start(self, number_matching: bool) -> ModelChallenge:
        started = self._run(
            lambda: self.stack.rp.start_confirm(
                self.logins["alice"], operation="transfer", amount="25.00", currency="EUR",
                requester_ip=REQUESTER_IP, requester_ua="Firefox on Linux",
                number_matching=number_matching),
            Expect(audited_challenge=NEW_CHALLENGE), audit_event="confirm.start",
            success_reason="started",
        )
        assert self.last_entry.challenge_id == started["challenge_id"]
        number = started["number"]
        if number_matching:
            assert number is not None and 10 <= number <= 99
        else:
            assert number is None
        ch = self.m.started(challenge_id=started["challenge_id"],
                            browser_token=started["browser_token"], number=number,
                            code=started["code"])
        assert (started["state"], started["login"], started["expires_at"],
                started["code_expires_at"]) == (
            "pending", self.logins["alice"], ch.expires_at, ch.codes[0].expires_at)
        self.browsers[ch.id] = self._browser(ch, ch.browser_token)
        self.touched.add(ch.id)
        return ch

    # Cancelling finished challenges over and over would crowd out everything else.
    @precondition(lambda self: self.m.some_open("pending") or self.m.some_open("scanned"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        challenge = data.draw(st.sampled_from(self.model), label="challenge")
        self.touched.add(challenge.id)
        answer = self._run(lambda: self.stack.rp.cancel(challenge.id),
                           self.m.expect_cancel(challenge), audit_event="confirm.cancel",
                           success_reason="cancelled")
        if answer is not None:
            assert (answer["state"], answer["reason"]) == ("rejected", "cancelled")

    # --- rules: the waiting browser ---------------------------------------------------------

    @precondition(lambda self: self.m.some_open("pending"))
    @rule(data=st.data(), who=st.sampled_from(["own"] * 6 + ["random", "another"]))
    def rotate(self, data: st.DataObject, who: str) -> None:
        """The waiting page asks for a fresh code; now and then another browser asks, with
        a token of its own or another challenge's."""
        challenge = self._pick(data)
        self.touched.add(challenge.id)
        if who != "own":
            token = secrets.token_urlsafe(32)
            if who == "another":
                token = next((ch.browser_token for ch in self.model if ch is not challenge),
                             token)
            self._run(self._browser(challenge, token).rotate,
                      Expect(errors=((Forbidden, "wrong_browser"),), audited=False),
                      audit_event="confirm.rotate")
            return
        self._rotate(challenge)

    def _rotate(self, challenge: ModelChallenge) -> None:
        answer = self._run(self.browsers[challenge.id].rotate, self.m.expect_rotate(challenge),
                           audit_event="confirm.rotate")
        if answer is not None:
            shown = self.m.rotated(challenge, answer["code"])
            assert answer["code_expires_at"] == shown.expires_at

    # --- rules: the user ------------------------------------------------------------------

    # The whole honest flow in one step, and one that starts flows of its own: swarm
    # testing turns ``start`` off in many examples, which would then spend most of their
    # steps on challenges already finished.
    @precondition(lambda self: self._showing() or self._can_start())
    @rule(data=st.data(), device=st.sampled_from(("a1", "a2")),
          decision=st.sampled_from(Decision), number=NUMBER_CHOICE, offset=WRONG_OFFSET)
    def user_confirms(self, data: st.DataObject, device: str, decision: Decision,
                      number: str, offset: int) -> None:
        """The user asks for an operation (or comes back to a page already waiting),
        scans the code on screen and decides at once, typing the number the browser
        shows, mistyping it, or typing none."""
        showing = self._showing()
        if not showing or (self._can_start()
                           and data.draw(st.booleans(), label="new operation")):
            challenge = self._start(data.draw(st.booleans(), label="number_matching"))
        else:
            challenge = data.draw(st.sampled_from(showing), label="challenge")
        if self._scan(challenge, challenge.codes[-1], device, offline=True):
            self._decide(challenge, device, decision, self.m.number(challenge, number, offset))

    @precondition(lambda self: self._showing())
    @rule(data=st.data(), device=st.sampled_from(("a1", "a2")))
    def scan_shown_code(self, data: st.DataObject, device: str) -> None:
        """The user scans the code on screen with one of their phones, which checks it
        offline first."""
        challenge = data.draw(st.sampled_from(self._showing()), label="challenge")
        self._scan(challenge, challenge.codes[-1], device, offline=True)

    @precondition(lambda self: self._scanned())
    @rule(data=st.data(), decision=st.sampled_from(Decision), number=NUMBER_CHOICE,
          offset=WRONG_OFFSET)
    def decide_as_scanner(self, data: st.DataObject, decision: Decision, number: str,
                          offset: int) -> None:
        """The phone that scanned decides, with the number the browser shows, a mistyped
        one or none."""
        challenge = data.draw(st.sampled_from(self._scanned()), label="challenge")
        assert challenge.device is not None
        self._decide(challenge, challenge.device, decision,
                     self.m.number(challenge, number, offset))

    @precondition(lambda self: self._rotated())
    @rule(data=st.data(), device=st.sampled_from(("a1", "a2")), offline=st.booleans())
    def scan_replaced_code(self, data: st.DataObject, device: str, offline: bool) -> None:
        """One of alice's phones scans the code shown before the last rotation (a slow
        camera, a photo taken earlier): still readable, but replaced."""
        challenge = data.draw(st.sampled_from(self._rotated()), label="challenge")
        self._scan(challenge, challenge.codes[-2], device, offline=offline)

    @precondition(lambda self: self._showing())
    @rule(data=st.data(), device=st.sampled_from(("a1", "a2")), offline=st.booleans())
    def scan_as_the_page_rotates(self, data: st.DataObject, device: str,
                                 offline: bool) -> None:
        """The page rotates while the phone's camera is on it: the phone sends the code
        just replaced."""
        challenge = data.draw(st.sampled_from(self._showing()), label="challenge")
        shown = challenge.codes[-1]
        self._rotate(challenge)
        self._scan(challenge, shown, device, offline=offline)

    def _waiting(self) -> list[ModelChallenge]:
        return [ch for ch in self.model if ch.state == "pending" and not self.m.expired(ch)]

    @precondition(lambda self: self._waiting())
    @rule(data=st.data(), edge=st.sampled_from(["code", "challenge"]),
          offset=st.sampled_from([-1, 0, 1]), offline=st.booleans())
    def scan_at_the_last_moment(self, data: st.DataObject, edge: str, offset: int,
                                offline: bool) -> None:
        """The user scans a second before, at, or a second after the code on screen stops
        reading, or the challenge expires (the page rotated ten seconds before: its last
        code lives exactly as long as the challenge)."""
        challenge = data.draw(st.sampled_from(self._waiting()), label="challenge")
        if edge == "challenge":
            self._advance_to(challenge.expires_at - 10)
            self._rotate(challenge)
            moment = challenge.expires_at
        else:
            moment = challenge.codes[-1].expires_at + CODE_LEEWAY
        self._advance_to(moment + offset)
        self._scan(challenge, challenge.codes[-1], "a1", offline=offline)

    @precondition(lambda self: any(not self.m.expired(ch) for ch in self._scanned()))
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1]),
          decision=st.sampled_from(Decision))
    def decide_at_the_last_moment(self, data: st.DataObject, offset: int,
                                  decision: Decision) -> None:
        """The phone that scanned decides, with the right number, a second before, at, or
        a second after the challenge expires."""
        challenge = data.draw(st.sampled_from(
            [ch for ch in self._scanned() if not self.m.expired(ch)]), label="challenge")
        assert challenge.device is not None
        self._advance_to(challenge.expires_at + offset)
        self._decide(challenge, challenge.device, decision, challenge.number)

    @precondition(lambda self: self.last_request is not None)
    @rule()
    def send_again(self) -> None:
        """The last scan or decision that succeeded is sent again, as a phone does when
        its reply was lost: unless something else ended the challenge meanwhile, the same
        answer and nothing counted."""
        repeat, self.last_request = self.last_request, None
        assert repeat is not None
        repeat()

    # --- rules: adversaries -----------------------------------------------------------------

    @rule(data=st.data(), device=st.sampled_from(sorted(DEVICE_OWNERS)),
          age=st.integers(min_value=0, max_value=3), offline=st.booleans())
    def scan_any_code(self, data: st.DataObject, device: str, age: int, offline: bool) -> None:
        """Any device scans the code on screen (``age`` 0) or an older, rotated-out one,
        checking it offline or not (a tampered app)."""
        challenge = self._pick(data)
        self._scan(challenge, challenge.codes[max(len(challenge.codes) - 1 - age, 0)], device,
                   offline=offline)

    @rule(data=st.data(), device=st.sampled_from(sorted(DEVICE_OWNERS)),
          forgery=st.sampled_from(FORGERIES), change=st.sampled_from(FIELD_CHANGES),
          current_nonce=st.booleans(), offline=st.booleans())
    def scan_forged_code(self, data: st.DataObject, device: str, forgery: str, change: str,
                         current_nonce: bool, offline: bool) -> None:
        """A code the server must refuse although it may read like the one on screen:
        ``current_nonce`` gives it the verification code of the code on screen (where the
        forger can choose), ``change`` is the claim a field_mismatch changes."""
        challenge = self._pick(data)
        self.touched.add(challenge.id)
        phone = self.phones[device]
        if forgery in ("unknown_key", "bad_signature"):
            text = self._resigned(challenge.codes[-1].text, reuse_kid=forgery == "bad_signature")
            error: ErrorKey = ((UnknownKey, "unknown_key") if forgery == "unknown_key"
                               else (BadSignature, "bad_signature"))
            # The phone's offline check refuses it too (an unknown key after fetching the
            # server's keys once more): nothing reaches the server then.
            expect = self.m.expect_unverifiable_code(error=error, checked_offline=offline)
            if offline:
                self._run(lambda: phone.scan_text(text), expect, audit_event="confirm.scan")
            else:
                self._device_request(device, lambda: phone.scan_text(text, verify_offline=False),
                                     lambda: expect, audit_event="confirm.scan",
                                     success_reason="scanned")
            return
        code = self._reissued(challenge, forgery=forgery, change=change,
                              current_nonce=current_nonce)
        # Its signature verifies (this server's key, or one it trusts): the phone's offline
        # check passes, and only the server can tell.
        self._device_request(
            device, lambda: phone.scan_text(code.text, verify_offline=offline),
            lambda: self.m.expect_mismatched_scan(challenge, code, device, error=forgery),
            audit_event="confirm.scan", success_reason="scanned")

    @precondition(lambda self: self._showing())
    @rule(data=st.data(), attempts=st.integers(min_value=1, max_value=MAX_FAILURES + 1))
    def another_user_keeps_trying(self, data: st.DataObject, attempts: int) -> None:
        """Bob's phone scans the code on alice's page again and again (a relayed QR):
        each a failure that counts, until the challenge locks."""
        challenge = data.draw(st.sampled_from(self._showing()), label="challenge")
        for _ in range(attempts):
            self._scan(challenge, challenge.codes[-1], "b1", offline=False)

    @precondition(lambda self: self._scanned())
    @rule(data=st.data(), offline=st.booleans())
    def another_phone_scans(self, data: st.DataObject, offline: bool) -> None:
        """A phone other than the one that scanned scans the same code (it was relayed,
        or photographed over the user's shoulder)."""
        challenge = data.draw(st.sampled_from(self._scanned()), label="challenge")
        device = data.draw(st.sampled_from(sorted(set(DEVICE_OWNERS) - {challenge.device})),
                           label="device")
        self._scan(challenge, challenge.codes[-1], device, offline=offline)

    @precondition(lambda self: self._scanned())
    @rule(data=st.data(), decision=st.sampled_from(Decision), number=NUMBER_CHOICE,
          offset=WRONG_OFFSET)
    def another_phone_decides(self, data: st.DataObject, decision: Decision, number: str,
                              offset: int) -> None:
        """A phone other than the one that scanned decides: the user's other phone,
        another user's, a frozen or an unbound one."""
        challenge = data.draw(st.sampled_from(self._scanned()), label="challenge")
        device = data.draw(st.sampled_from(sorted(set(DEVICE_OWNERS) - {challenge.device})),
                           label="device")
        self._decide(challenge, device, decision, self.m.number(challenge, number, offset))

    @rule(data=st.data(), device=st.sampled_from(sorted(DEVICE_OWNERS)),
          decision=st.sampled_from(Decision), number=NUMBER_CHOICE, offset=WRONG_OFFSET)
    def decide_any(self, data: st.DataObject, device: str, decision: Decision, number: str,
                   offset: int) -> None:
        """Any device decides."""
        challenge = self._pick(data)
        self._decide(challenge, device, decision, self.m.number(challenge, number, offset))

    # --- requests of phones ---------------------------------------------------------------

    def _scan(self, challenge: ModelChallenge, code: ModelCode, device: str, *,
              offline: bool) -> bool:
        """Whether the challenge was scanned (or the scan recognised as a repeat)."""
        self.touched.add(challenge.id)
        phone = self.phones[device]
        if offline and not self.m.readable(code):
            # The phone's own check: nothing is sent.
            self._run(lambda: phone.scan_text(code.text),
                      Expect(errors=((Expired, "expired"),), audited=False, local=True),
                      audit_event="confirm.scan")
            return False
        context = self._device_request(
            device, lambda: phone.scan_text(code.text, verify_offline=offline),
            lambda: self.m.expect_scan(challenge, code, device),
            audit_event="confirm.scan", success_reason="scanned")
        if context is None:
            return False
        self._check_scan_answer(challenge, device, code, context)
        self.last_request = lambda: self._scan(challenge, code, device, offline=offline)
        return True

    def _check_scan_answer(self, challenge: ModelChallenge, device: str, code: ModelCode,
                           context: dict[str, Any]) -> None:
        # The phone shows what the server verified: this challenge, this user's operation.
        assert (context["challenge_id"], context["login"], context["operation"],
                context["service"]["business_id"], context["requester"]["ip"],
                context["number_matching"], context["expires_at"]) == (
            challenge.id, self.logins["alice"], "transfer", "web", REQUESTER_IP,
            challenge.number is not None, challenge.expires_at)
        # A repeat gets the very answer the first scan got.
        first = self.answers.setdefault(("scan", challenge.id, device, str(code.seq)), context)
        assert context == first

    def _decide(self, challenge: ModelChallenge, device: str, decision: Decision,
                sent: int | None) -> None:
        self.touched.add(challenge.id)
        phone = self.phones[device]
        answer = self._device_request(
            device,
            lambda: phone.decide(challenge.id, approve=decision == Decision.APPROVE,
                                 number=sent),
            lambda: self.m.expect_decision(challenge, device, decision, sent),
            audit_event=f"confirm.{decision.value}",
            success_reason="approved" if decision == Decision.APPROVE else "denied_by_user")
        if answer is None:
            return
        assert (answer["challenge_id"], answer["state"], answer["reason"], answer["number"]) == (
            challenge.id, challenge.state, challenge.reason, None)
        # A repeat gets the very answer the first decision got.
        assert answer == self.answers.setdefault(("decide", challenge.id, device), answer)
        self.last_request = lambda: self._decide(challenge, device, decision, sent)

    def _resigned(self, text: str, *, reuse_kid: bool) -> str:
        """The genuine claims of ``text``, signed by a key the server never had, under that
        key's id or under the server's active one."""
        foreign = ec.generate_private_key(ec.SECP256R1())
        genuine = parse_sign1(base45.b45decode(text[4:]))
        kid = self.rt.keyring.active_kid if reuse_kid else kid_for(foreign.public_key())
        forged: bytes = base45.b45encode(sign1(payload=genuine.payload, private_key=foreign,
                                               kid=kid))
        return "QG1:" + forged.decode()

    def _reissued(self, challenge: ModelChallenge, *, forgery: str, change: str,
                  current_nonce: bool) -> ModelCode:
        """A fresh code for ``challenge`` from the other deployment (``wrong_issuer``), or
        from this server's own keyring over a changed claim (``field_mismatch``)."""
        with self.rt.read() as conn:
            view = repository.load(conn, challenge.id).view()
        now = int(self.m.now)
        view = dataclasses.replace(view, expires_at=now + CODE_TTL)
        if not current_nonce:
            view = dataclasses.replace(view, verification_code=os.urandom(8))
        number_matching = view.number is not None
        keyring: KeyRing = self.rt.keyring
        issuer = self.rt.settings.issuer
        if forgery == "wrong_issuer":
            keyring, issuer = self.world.branch.keyring, self.world.branch.settings.issuer
        elif change == "number_matching":
            number_matching = not number_matching
        else:
            changes: dict[str, dict[str, Any]] = {
                "org": {"org_id": view.org_id + 1000},
                "business": {"business_id": "web-lite"},
                "login": {"login": self.logins["bob"]},
                "operation": {"operation": "password_change"},
                "amount": {"amount": "2500.00"},
                "url": {"url": "https://bank.example.evil.example/confirm"},
            }
            view = dataclasses.replace(view, **changes[change])
        text = issue_code(challenge=view, number_matching=number_matching, issuer=issuer,
                          now=now, ttl=CODE_TTL, keyring=keyring)
        return ModelCode(text, challenge.seq if current_nonce else None, now + CODE_TTL)

    # --- rules: the operator and time -------------------------------------------------------

    # Frozen only while it holds a scanned challenge (the interesting moment), so that it
    # does not spend most of an example refused.
    @precondition(lambda self: self.m.status[TOGGLED] == "frozen" or any(
        ch.device == TOGGLED and ch.state == "scanned" for ch in self.model))
    @rule()
    def toggle_freeze(self) -> None:
        """An operator freezes one of alice's phones in the middle of a flow, or unfreezes
        it."""
        frozen = self.m.status[TOGGLED] == "active"
        self._set_frozen(TOGGLED, frozen=frozen)
        self.m.status[TOGGLED] = "frozen" if frozen else "active"

    @rule(seconds=ADVANCE_HTTP)
    def advance_clock(self, seconds: int) -> None:
        self._advance(seconds)

    def _edges(self) -> list[float]:
        """Moments still ahead where something stops being valid: a challenge (its
        expiry), the code on its page (its expiry plus the decoder's leeway: the last
        second it reads), a window of refused device requests (when the next one is
        written again)."""
        edges = [t for ch in self.model if ch.state in OPEN
                 for t in (ch.expires_at, ch.codes[-1].expires_at + CODE_LEEWAY)]
        edges += [started + WINDOW_SECONDS for started, _ in self.windows.values()]
        return sorted(t for t in set(edges) if t >= self.m.now)

    @precondition(lambda self: self._edges())
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1]))
    def advance_to_an_edge(self, data: st.DataObject, offset: int) -> None:
        """Time moves to a second before, at, or a second after such a moment, where
        off-by-one errors live."""
        self._advance_to(data.draw(st.sampled_from(self._edges()), label="edge") + offset)

    def _advance_to(self, moment: float) -> None:
        """Time moves on to ``moment``, if it lies ahead."""
        self._advance(max(moment - self.m.now, 0))

    def _advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        # Time changes what readers see of every open challenge.
        self.touched.update(ch.id for ch in self.model if ch.state in OPEN)

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def the_server_and_the_browser_agree_with_the_model(self) -> None:
        # In this order: the browser's view is checked against the model after the model
        # took in an expiry the server wrote.
        self._stored_challenges_match_the_model()
        self._the_browser_was_told_the_stored_state()
        self._each_challenge_is_decided_at_most_once()
        self._the_browser_sees_the_model()
        self._check_audit_tail()

    def _stored_challenges_match_the_model(self) -> None:
        check_stored_challenges(self.m, self.rt, terminal=self.terminal,
                                device_name=self.names.get)

    def _the_browser_was_told_the_stored_state(self) -> None:
        check_browsers_told(self.m, self.world.bus.hints)

    def _each_challenge_is_decided_at_most_once(self) -> None:
        check_decided_at_most_once(self.m, self.rt)

    def _the_browser_sees_the_model(self) -> None:
        """The waiting page's two ways of reading, with its browser token: the state
        (polling) and the first event of the stream, which reports the state on connect."""
        for ch in self.model:
            if ch.id not in self.touched:
                continue
            browser = self.browsers[ch.id]
            state = self.m.effective_state(ch)
            status = browser.status()
            assert (status["state"], status["reason"], status["number"]) == (
                state, ch.reason, ch.number), f"{ch!r}: the browser reads {status}"
            with closing(browser.events()) as events:
                event = next(events)
            assert (event["state"], event["reason"], event["code_seq"]) == (
                state, ch.reason, ch.seq), f"{ch!r}: the event stream says {event}"
        self.touched.clear()

    def _check_audit_tail(self) -> None:
        """The audit entries appended since the last check (``verify_chain``'s checks, for
        the new stretch only): numbered on from the last one checked, each linked to the
        one before and hashing to what it carries, the last one the head."""
        seq, prev = self.world.chained
        with self.rt.read() as conn:
            head_seq, head_hash = conn.execute(HEAD).one()
            rows = conn.execute(TAIL, {"after": seq}).all()
        for row in rows:
            assert row.seq == seq + 1, f"audit entry {seq + 1} is missing"
            assert bytes(row.prev_hash) == prev, f"audit entry {row.seq} does not link"
            assert bytes(row.hash) == digest_of(row, prev_hash=prev), (
                f"audit entry {row.seq} does not hash to what it carries")
            seq, prev = row.seq, bytes(row.hash)
        assert (seq, prev) == (head_seq, bytes(head_hash)), "the audit head is not the last entry"
        self.world.chained = (seq, prev)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ApiError):
        return f"{error.status} {error.code}"
    if isinstance(error, QrgateError):
        return f"{type(error).__name__}({error.code}) raised by the phone"
    return "success" if error is None else repr(error)


def _pem(path: Path, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> Path:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    else:
        data = key.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(data)
    return path


@pytest.fixture
def branch(tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    """Another deployment (its own data directory and QRGATE_ISSUER, its key from
    QRGATE_SIGNING_KEY_FILE), and its public key as a PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    signing = _pem(tmp_path / "branch-signing.pem", key)
    rt = build_runtime(Settings(data_dir=tmp_path / "branch", issuer=BRANCH_ISSUER,
                                env={ENV_SIGNING_KEY_FILE: str(signing)}))
    try:
        yield rt, _pem(tmp_path / "branch-public.pem", key.public_key())
    finally:
        rt.close()


@pytest.mark.timeout(FAILING_RUN_TIMEOUT)
def test_confirm_state_machine_http(
    stack_factory: Callable[..., Stack], branch: tuple[Runtime, Path], database_url: str
) -> None:
    branch_rt, branch_public = branch
    stack = stack_factory(
        confirm_ttl=CONFIRM_TTL, code_ttl=CODE_TTL, max_failures=MAX_FAILURES,
        # The user-level count of failed proofs is its own test (test_rejections).
        user_max_failures=100, access_log=False,
        env={ENV_VERIFY_KEY_FILES: str(branch_public)},
    )
    bus = RecordingBus(stack.rt.events)
    stack.rt.events = bus
    with httpx.HTTPTransport() as transport:
        world = World(stack=stack, bus=bus, branch=branch_rt, transport=transport)
        world.verify_audit()
        run_state_machine_as_test(
            lambda: HttpConfirmMachine(world),
            settings=SQLITE_SETTINGS if database_url.startswith("sqlite") else POSTGRES_SETTINGS,
        )
        world.verify_audit()
