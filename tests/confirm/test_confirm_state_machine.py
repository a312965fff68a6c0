"""Scheme C's service layer as a state machine.

Hypothesis drives ``operations.start`` and ``verification.scan / decide / rotate_code /
cancel`` together with a fake clock against a real database, and checks every outcome
against the model in ``support.confirm_model`` (written from SPEC section C and the order
of checks in ``qrgate.core.confirm``; ``test_confirm_state_machine_http.py`` checks a
running server over HTTP against the same model). Each example gets a fresh database: a
copy of a migrated SQLite file, and also (when ``QRGATE_TEST_DATABASE_URL`` is set) a fresh
PostgreSQL schema.

The model tracks the *stored* state. Expiry is lazy in storage, so where a correct server
may or may not have written ``expired`` yet, the model accepts either (see
``ConfirmModel.adopt_lazy_expiry``); it never accepts any other change of a challenge that a
reader already sees as terminal.
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
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from qrgate.accounts import directory
from qrgate.accounts.provision import provision
from qrgate.config import Settings
from qrgate.confirm import operations, verification
from qrgate.core.confirm import Decision
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.errors import Forbidden, QrgateError
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage.audit import verify_audit
from qrgate.storage.db import create_engine_for
from qrgate.storage.models import devices
from qrgate.storage.schema import upgrade
from support.confirm_model import (
    ADVANCE,
    CODE_TTL,
    CONFIRM_TTL,
    ENTRY,
    HEAD_SEQ,
    MAX_CHALLENGES,
    MAX_FAILURES,
    MAX_OPEN_CHALLENGES,
    NEW_CHALLENGE,
    NUMBER_CHOICE,
    WRONG_OFFSET,
    ConfirmModel,
    Expect,
    ModelChallenge,
    ModelCode,
    RecordingBus,
    check_browsers_told,
    check_decided_at_most_once,
    check_stored_challenges,
)

START = 1_800_000_000.0
# a3 belongs to alice but was unbound: it must never win anything.
DEVICE_OWNERS = {"a1": "alice", "a2": "alice", "b1": "bob", "a3": "alice"}
DEVICE_STATUS = {"a1": "active", "a2": "active", "b1": "active", "a3": "unbound"}

# Verifying the whole chain after every step made it the slowest check; every few steps
# and at teardown still pins a broken entry to a short stretch of steps.
AUDIT_CHECK_EVERY = 5


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
        self.m = ConfirmModel(clock=self.clock, owners=DEVICE_OWNERS,
                              status=dict(DEVICE_STATUS))
        self.model: list[ModelChallenge] = self.m.challenges
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

    # --- running an operation -----------------------------------------------------------

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
            entry = conn.execute(ENTRY, {"seq": after}).one()
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
                  and self.m.open_challenges() < MAX_OPEN_CHALLENGES)
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
        return self.m.started(challenge_id=started.challenge.id,
                              browser_token=started.browser_token, number=number,
                              code=started.code)

    # Honest and adversarial variants of scan and decide are separate rules: it doubles
    # the weight of the steps that move a flow forward, and swarm testing (hypothesis
    # turns random subsets of rules off per example) then also yields runs of pure
    # happy paths that reach approvals.

    # The page keeps a readable code on screen (it rotates before a code expires), so the
    # honest scan waits for one; ``scan_any_code`` covers stale codes.
    @precondition(lambda self: any(ch.state == "pending" and not self.m.expired(ch)
                                   and self.m.readable(ch.codes[-1]) for ch in self.model))
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
        expect = self.m.expect_scan(challenge, code, device)
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

    @precondition(lambda self: self.m.some_open("pending"))
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
        result = self._run(
            lambda: verification.rotate_code(self.rt, challenge_id=challenge.id,
                                             browser_token=challenge.browser_token),
            self.m.expect_rotate(challenge), audit_event="confirm.rotate",
            success_reason="rotated",
        )
        if result is not None:
            row, code = result
            self.m.rotated(challenge, code)
            assert row.code_seq == challenge.seq

    @precondition(lambda self: self.m.some_open("scanned"))
    @rule(challenge=scanned, decision=st.sampled_from(Decision), number=NUMBER_CHOICE,
          offset=WRONG_OFFSET)
    def decide_as_scanner(self, challenge: ModelChallenge, decision: Decision, number: str,
                          offset: int) -> None:
        """The phone that scanned decides, with the number the browser shows, a mistyped
        one or none."""
        assert challenge.device is not None
        self._decide(challenge, challenge.device, decision,
                     self.m.number(challenge, number, offset))

    @rule(challenge=challenges, device=st.sampled_from(sorted(DEVICE_OWNERS)),
          decision=st.sampled_from(Decision), number=NUMBER_CHOICE, offset=WRONG_OFFSET)
    def decide_any(self, challenge: ModelChallenge, device: str, decision: Decision,
                   number: str, offset: int) -> None:
        """Any device decides."""
        self._decide(challenge, device, decision, self.m.number(challenge, number, offset))

    def _decide(self, challenge: ModelChallenge, device: str, decision: Decision,
                sent: int | None) -> None:
        expect = self.m.expect_decision(challenge, device, decision, sent)
        self._run(
            lambda: verification.decide(self.rt, challenge_id=challenge.id,
                                        device=self.devices[device], decision=decision,
                                        number=sent),
            expect, audit_event=f"confirm.{decision.value}",
            success_reason="approved" if decision == Decision.APPROVE else "denied_by_user",
        )

    # Cancelling finished challenges over and over would crowd out everything else.
    @precondition(lambda self: self.m.some_open("pending") or self.m.some_open("scanned"))
    @rule(challenge=challenges)
    def cancel(self, challenge: ModelChallenge) -> None:
        self._run(
            lambda: verification.cancel(self.rt, app=self.app, challenge_id=challenge.id),
            self.m.expect_cancel(challenge), audit_event="confirm.cancel",
            success_reason="cancelled",
        )

    @rule(seconds=ADVANCE)
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def stored_challenges_match_the_model(self) -> None:
        check_stored_challenges(self.m, self.rt, terminal=self.terminal,
                                device_name=lambda device_id: device_id)

    @invariant()
    def the_browser_was_told_the_stored_state(self) -> None:
        check_browsers_told(self.m, self.bus.hints)

    @invariant()
    def each_challenge_is_decided_at_most_once(self) -> None:
        check_decided_at_most_once(self.m, self.rt)

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
