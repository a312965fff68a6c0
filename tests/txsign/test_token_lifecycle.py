"""An OCRA token's life outside a signature, through the API: an activation or a resync
resent after a lost reply is the same answer (never a failure), the same proof later is a
replay; a freeze ends the user's waiting transactions and nobody else's; a transaction
closes at its expiry instant. Found unpinned by mutation testing (scripts/mutation.sh).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qrgate.accounts import directory
from qrgate.clients.token import SoftToken
from qrgate.errors import InvalidField
from qrgate.freeze import FROZEN_REASON, set_user_frozen
from qrgate.storage.audit import search_audit
from qrgate.txsign import platform as transactions
from qrgate.txsign import tokens
from qrgate.txsign.tokens import activation_question, read_enrolment_code
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys

QUESTIONS = ("1" * 64, "2" * 64)
APP, COPY = "app-install-0001", "app-install-0002"  # client ids: 16 to 64 of [A-Za-z0-9_-]


def stored_token(stack: Stack, token_id: str) -> tokens.TokenRecord:
    with stack.rt.read() as conn:
        return tokens.get_token(conn, token_id)


def stored_transaction(stack: Stack, transaction_id: str) -> Any:
    with stack.rt.read() as conn:
        return transactions.load(conn, transaction_id)


def problem(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["code"]


# --- activation -------------------------------------------------------------------------


def activate(stack: Stack, token_id: str, response: str, client_id: str) -> httpx.Response:
    return httpx.post(f"{stack.base_url}/v1/txsign/tokens/{token_id}/activate",
                      json={"response": response, "client_id": client_id})


def activated_by_hand(stack: Stack) -> tuple[SoftToken, str]:
    """Alice's token activated as her app does it, with client id APP; the app's
    token (its counter past the activation) and the activation answer."""
    platform = Platform(stack)
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": "alice"})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(stack), now=stack.clock())
    token = SoftToken(token_id=read.token_id, secret=read.secret, suite=read.suite,
                      counter=read.counter, server_url=stack.base_url, login=read.login,
                      server_keys=server_keys(stack), clock=stack.clock)
    answer = token._respond(activation_question(read.token_id))
    activated = activate(stack, read.token_id, answer, APP)
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    return token, answer


def test_an_activation_resent_by_its_app_is_the_same_activation(stack: Stack) -> None:
    token, answer = activated_by_hand(stack)
    first = stored_token(stack, token.token_id)
    again = activate(stack, token.token_id, answer, APP)
    assert again.status_code == 200 and again.json()["status"] == "active"
    assert stored_token(stack, token.token_id) == first
    # A copy of the enrolment QR computes the same answer, but is another app.
    assert problem(activate(stack, token.token_id, answer, COPY)) == (
        409, "already_activated")
    assert stored_token(stack, token.token_id).failures == 0


def test_an_activation_resent_after_the_token_signed_is_refused(stack: Stack) -> None:
    token, answer = activated_by_hand(stack)
    platform = Platform(stack)
    started = platform.start("alice")
    assert platform.respond(started["transaction_id"],
                            token.sign(started["challenge_code"]))["state"] == "signed"
    assert problem(activate(stack, token.token_id, answer, APP)) == (
        409, "already_activated")


# --- resynchronisation ------------------------------------------------------------------


def drifted(stack: Stack, platform: Platform) -> Any:
    token = enrolled_token(stack, platform, "alice")
    token.counter += 40  # responses computed on the phone and never sent
    return token


def resync(platform: Platform, token_id: str, responses: tuple[str, str]) -> httpx.Response:
    return platform.http.post(f"/v1/txsign/tokens/{token_id}/resync",
                              json={"questions": list(QUESTIONS), "responses": list(responses)})


def test_a_drifted_token_resynchronises_past_its_two_responses(stack: Stack) -> None:
    platform = Platform(stack)
    token = drifted(stack, platform)
    counter_before = stored_token(stack, token.token_id).counter
    responses = (token._respond(QUESTIONS[0]), token._respond(QUESTIONS[1]))
    answer = resync(platform, token.token_id, responses)
    assert answer.status_code == 200 and answer.json()["status"] == "active"
    assert stored_token(stack, token.token_id).counter == token.counter > counter_before + 40
    started = platform.start("alice")
    signed = platform.respond(started["transaction_id"], token.sign(started["challenge_code"]))
    assert signed["state"] == "signed"


def test_a_resync_resent_is_the_same_resync_and_no_failure(stack: Stack) -> None:
    platform = Platform(stack)
    token = drifted(stack, platform)
    responses = (token._respond(QUESTIONS[0]), token._respond(QUESTIONS[1]))
    first = resync(platform, token.token_id, responses)
    again = resync(platform, token.token_id, responses)
    assert again.status_code == 200 and again.json() == first.json()
    assert stored_token(stack, token.token_id).failures == 0
    assert stored_token(stack, token.token_id).counter == token.counter
    # Swapped, they are not what the resync accepted.
    assert problem(resync(platform, token.token_id, responses[::-1]))[1] == "resync_failed"


def test_a_resync_resent_after_a_signature_no_longer_resynchronises(stack: Stack) -> None:
    platform = Platform(stack)
    token = drifted(stack, platform)
    responses = (token._respond(QUESTIONS[0]), token._respond(QUESTIONS[1]))
    assert resync(platform, token.token_id, responses).status_code == 200
    started = platform.start("alice")
    platform.respond(started["transaction_id"], token.sign(started["challenge_code"]))
    counter = stored_token(stack, token.token_id).counter
    assert problem(resync(platform, token.token_id, responses)) == (401, "resync_failed")
    assert stored_token(stack, token.token_id).counter == counter


# --- a freeze and the expiry --------------------------------------------------------------


def user_id(stack: Stack, transaction_id: str) -> int:
    return int(stored_transaction(stack, transaction_id).user_id)


def test_a_freeze_ends_the_users_waiting_transactions_and_nobody_elses(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    signed = platform.start("alice")
    platform.respond(signed["transaction_id"], alice.sign(signed["challenge_code"]))
    waiting = platform.start("alice")
    bobs = platform.start("bob")
    with stack.rt.engine.begin() as conn:
        set_user_frozen(stack.rt, conn, user_id=user_id(stack, waiting["transaction_id"]),
                        frozen=True, now=stack.clock())
    ended = stored_transaction(stack, waiting["transaction_id"])
    assert (ended.state, ended.reason) == ("rejected", FROZEN_REASON)
    assert stored_transaction(stack, signed["transaction_id"]).state == "signed"
    assert stored_transaction(stack, bobs["transaction_id"]).state == "pending"


def test_a_freeze_leaves_an_expired_transaction_expired(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    stack.clock.advance(3600)
    with stack.rt.engine.begin() as conn:
        set_user_frozen(stack.rt, conn, user_id=user_id(stack, started["transaction_id"]),
                        frozen=True, now=stack.clock())
    assert stored_transaction(stack, started["transaction_id"]).effective_state(
        stack.clock()) == "expired"


@pytest.mark.parametrize("late", [0, 1])
def test_a_response_at_or_after_the_expiry_closes_the_transaction(
        stack: Stack, late: float) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    response = alice.sign(started["challenge_code"])
    row = stored_transaction(stack, started["transaction_id"])
    stack.clock.advance(row.expires_at - stack.clock() + late)
    answer = platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                                json={"response": response})
    assert problem(answer)[1] == "expired"
    closed = stored_transaction(stack, started["transaction_id"])
    assert (closed.state, closed.reason) == ("expired", "expired")
    with stack.rt.read() as conn:
        assert not directory.get_user(conn, closed.user_id).frozen


def wrong(response: str) -> str:
    return f"{(int(response) + 1) % 10 ** len(response):0{len(response)}d}"


def test_a_resync_resent_with_one_response_changed_is_no_retry(stack: Stack) -> None:
    platform = Platform(stack)
    token = drifted(stack, platform)
    responses = (token._respond(QUESTIONS[0]), token._respond(QUESTIONS[1]))
    assert resync(platform, token.token_id, responses).status_code == 200
    for changed in ((responses[0], wrong(responses[1])), (wrong(responses[0]), responses[1])):
        assert problem(resync(platform, token.token_id, changed)) == (401, "resync_failed")
    assert stored_token(stack, token.token_id).failures == 2


def test_a_resync_resent_to_a_locked_token_is_refused(stack: Stack) -> None:
    platform = Platform(stack)
    token = drifted(stack, platform)
    responses = (token._respond(QUESTIONS[0]), token._respond(QUESTIONS[1]))
    assert resync(platform, token.token_id, responses).status_code == 200
    for _ in range(stack.rt.settings.max_failures):
        started = platform.start("alice")
        platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                           json={"response": wrong(token.sign(started["challenge_code"]))})
    assert stored_token(stack, token.token_id).status == "locked"
    assert problem(resync(platform, token.token_id, responses)) == (423, "token_locked")


def test_a_time_based_token_recognises_its_activation_resent(stack: Stack) -> None:
    platform = Platform(stack)
    enrolment = platform.call("POST", "/v1/txsign/tokens",
                              json={"login": "alice", "suite": "OCRA-1:HOTP-SHA256-8:QH64-T1M"})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(stack), now=stack.clock())
    token = SoftToken(token_id=read.token_id, secret=read.secret, suite=read.suite,
                      counter=read.counter, server_url=stack.base_url, login=read.login,
                      server_keys=server_keys(stack), clock=stack.clock)
    answer = token._respond(activation_question(read.token_id))
    assert activate(stack, read.token_id, answer, APP).status_code == 200
    stack.clock.advance(5)  # the same minute: the same time step
    again = activate(stack, read.token_id, answer, APP)
    assert again.status_code == 200 and again.json()["status"] == "active"
    assert stored_token(stack, read.token_id).failures == 0


def test_a_failure_counts_against_the_users_token_only(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    started = platform.start("alice")
    answer = platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                                json={"response": wrong(alice.sign(started["challenge_code"]))})
    assert problem(answer) == (401, "wrong_response")
    assert stored_token(stack, alice.token_id).failures == 1
    assert stored_token(stack, bob.token_id).failures == 0


def test_the_audit_says_which_failure_locked_the_token(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    limit = stack.rt.settings.max_failures
    locked_flags = []
    for _ in range(limit):
        started = platform.start("alice")
        platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                           json={"response": wrong(alice.sign(started["challenge_code"]))})
        with stack.rt.read() as conn:
            entry = search_audit(conn, challenge_id=started["transaction_id"], limit=1)[0]
        row = stored_transaction(stack, started["transaction_id"])
        assert (entry["event"], entry["scheme"], entry["reason"]) == (
            "txsign.respond", "txsign", "wrong_response")
        assert (entry["org_id"], entry["app_id"], entry["user_id"]) == (
            row.org_id, row.app_id, row.user_id)
        locked_flags.append(bool((entry["detail"] or {}).get("token_locked")))
    assert locked_flags == [False] * (limit - 1) + [True]
    assert stored_token(stack, alice.token_id).status == "locked"


def test_a_freeze_at_the_expiry_instant_leaves_the_transaction_expired(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    row = stored_transaction(stack, started["transaction_id"])
    stack.clock.advance(row.expires_at - stack.clock())
    with stack.rt.engine.begin() as conn:
        set_user_frozen(stack.rt, conn, user_id=row.user_id, frozen=True, now=stack.clock())
    after = stored_transaction(stack, started["transaction_id"])
    assert after.reason != FROZEN_REASON
    assert after.effective_state(stack.clock()) == "expired"


# --- one token's life never touches another's ---------------------------------------------


def pending_token(stack: Stack, platform: Platform, login: str) -> tuple[SoftToken, str]:
    """A token enrolled and not activated yet, and its activation answer."""
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": login})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(stack), now=stack.clock())
    token = SoftToken(token_id=read.token_id, secret=read.secret, suite=read.suite,
                      counter=read.counter, server_url=stack.base_url, login=read.login,
                      server_keys=server_keys(stack), clock=stack.clock)
    return token, token._respond(activation_question(read.token_id))


def test_locking_a_token_locks_that_token_only(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    for _ in range(stack.rt.settings.max_failures):
        started = platform.start("alice")
        platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                           json={"response": wrong(alice.sign(started["challenge_code"]))})
    assert stored_token(stack, alice.token_id).status == "locked"
    assert stored_token(stack, bob.token_id).status == "active"
    # Alice has no usable token now: her transactions say why; Bob's still start.
    refused = platform.http.post("/v1/txsign/transactions",
                                 json={"account": "alice", "demand": "pay 1.00 EUR"})
    assert problem(refused) == (423, "token_locked")
    assert platform.start("bob")["state"] == "pending"


def test_activating_a_token_activates_that_token_only(stack: Stack) -> None:
    platform = Platform(stack)
    alice, alice_answer = pending_token(stack, platform, "alice")
    bob, _ = pending_token(stack, platform, "bob")
    assert activate(stack, alice.token_id, alice_answer, APP).json()["status"] == "active"
    assert stored_token(stack, bob.token_id).status == "pending"


def test_another_users_locked_token_does_not_speak_for_a_user_without_one(
        stack: Stack) -> None:
    platform = Platform(stack)
    bob = enrolled_token(stack, platform, "bob")
    for _ in range(stack.rt.settings.max_failures):
        started = platform.start("bob")
        platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                           json={"response": wrong(bob.sign(started["challenge_code"]))})
    refused = platform.http.post("/v1/txsign/transactions",
                                 json={"account": "alice", "demand": "pay 1.00 EUR"})
    assert problem(refused) == (404, "no_token")


def test_a_token_starts_at_counter_zero_and_activates_until_its_expiry_instant(
        stack: Stack) -> None:
    platform = Platform(stack)
    token, answer = pending_token(stack, platform, "alice")
    assert token.counter == 1  # the activation answered with counter 0
    record = stored_token(stack, token.token_id)
    assert record.counter == 0
    stack.clock.advance(record.enrol_expires_at - stack.clock())  # exactly the expiry
    assert problem(activate(stack, token.token_id, answer, APP)) == (410, "expired")


@pytest.mark.parametrize("suite", ["OCRA-1:HOTP-SHA256-8:C-QA64", "OCRA-1:HOTP-SHA256-8:C-QN08",
                                   "OCRA-1:HOTP-SHA256-8:C-QH32",
                                   "OCRA-1:HOTP-SHA256-8:C-QH64-PSHA1"])
def test_only_qh64_suites_without_pin_sign_transactions(suite: str) -> None:
    with pytest.raises(InvalidField) as refused:
        tokens.check_suite(suite)
    assert refused.value.code == "bad_ocra_suite"


def test_a_started_transaction_is_audited_with_its_owners(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    row = stored_transaction(stack, started["transaction_id"])
    with stack.rt.read() as conn:
        (entry,) = search_audit(conn, event="txsign.start", challenge_id=row.id)
        alice = directory.find_user(conn, org_id=row.org_id, login="alice")
    assert (entry["scheme"], entry["reason"]) == ("txsign", "started")
    assert (entry["org_id"], entry["app_id"], entry["user_id"]) == (
        row.org_id, row.app_id, alice.id)
    assert row.user_id == alice.id and row.state == "pending" and row.attempts == 0


def test_a_token_locked_before_activation_leaves_the_user_with_no_token(
        stack: Stack) -> None:
    """It never proved its secret: the user needs a new token, not an unlock."""
    platform = Platform(stack)
    token, answer = pending_token(stack, platform, "alice")
    for _ in range(stack.rt.settings.max_failures):
        activate(stack, token.token_id, wrong(answer), APP)
    assert stored_token(stack, token.token_id).status == "locked"
    refused = platform.http.post("/v1/txsign/transactions",
                                 json={"account": "alice", "demand": "pay 1.00 EUR"})
    assert problem(refused) == (404, "no_token")


def test_a_signed_transaction_records_the_token_that_signed_it(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    platform.respond(started["transaction_id"], alice.sign(started["challenge_code"]))
    row = stored_transaction(stack, started["transaction_id"])
    assert (row.state, row.token_id) == ("signed", alice.token_id)
