"""Scheme E refusals, each with its own code, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.errors import Rejected
from qrgate.storage.audit import search_audit
from qrgate.txsign import tokens
from support.race import race
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys


def api_error(action: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value


def test_wrong_response(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    right = alice.sign(started["challenge_code"])
    wrong = f"{(int(right) + 1) % 10**8:08d}"
    error = api_error(lambda: platform.respond(started["transaction_id"], wrong))
    assert (error.status, error.code) == (401, "wrong_response")
    # The right response still works: one wrong guess does not end the transaction.
    assert platform.respond(started["transaction_id"], right)["state"] == "signed"


def test_replayed_response(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    response = alice.sign(started["challenge_code"])
    signed = platform.respond(started["transaction_id"], response)
    # The platform's retry gets the same answer; another response is refused.
    assert platform.respond(started["transaction_id"], response) == signed
    other = str((int(response) + 1) % 10**8).zfill(8)
    error = api_error(lambda: platform.respond(started["transaction_id"], other))
    assert (error.status, error.code) == (409, "already_decided")
    # The same response on a new transaction with the very same text is worthless too.
    again = platform.start("alice")
    error = api_error(lambda: platform.respond(again["transaction_id"], response))
    assert error.code == "wrong_response"


def test_response_for_another_transaction(stack: Stack) -> None:
    """One changed byte of the comment changes the challenge, so the response fails."""
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    shown = platform.start("alice", comment="pay invoice 2026-117")
    other = platform.start("alice", comment="pay invoice 2026-118")
    response = alice.sign(shown["challenge_code"])
    error = api_error(lambda: platform.respond(other["transaction_id"], response))
    assert (error.status, error.code) == (401, "wrong_response")
    assert platform.call("GET", f"/v1/txsign/transactions/{other['transaction_id']}")[
        "state"] == "pending"


def test_token_of_another_user(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    started = platform.start("alice")
    # Bob's token refuses to sign a transaction of alice's account ...
    with pytest.raises(Rejected, match="another account") as refused:
        bob.sign(started["challenge_code"])
    assert refused.value.code == "wrong_user"
    # ... and a response naming bob's token for alice's transaction is refused.
    forced = bob._respond(started["question"])
    error = api_error(lambda: platform.respond(started["transaction_id"], forced,
                                               token_id=bob.token_id))
    assert (error.status, error.code) == (403, "wrong_user")
    error = api_error(lambda: platform.respond(started["transaction_id"], forced))
    assert error.code == "wrong_response"


def test_expired_challenge(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    response = alice.sign(started["challenge_code"])
    stack.clock.advance(301)
    error = api_error(lambda: platform.respond(started["transaction_id"], response))
    assert (error.status, error.code) == (410, "expired")
    state = platform.call("GET", f"/v1/txsign/transactions/{started['transaction_id']}")
    assert state["state"] == "expired"


def test_lockout_after_repeated_failures(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    limit = stack.rt.settings.max_failures
    for _ in range(limit):
        started = platform.start("alice")
        api_error(lambda s=started: platform.respond(s["transaction_id"], "00000000"))
    # The token is locked: new transactions for alice are refused until an operator acts.
    error = api_error(lambda: platform.start("alice"))
    assert (error.status, error.code) == (423, "token_locked")
    assert alice.token_id  # the token itself still exists, only locked


def test_transaction_locks_after_repeated_wrong_responses(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    started = platform.start("alice")
    for _ in range(stack.rt.settings.max_failures):
        api_error(lambda: platform.respond(started["transaction_id"], "12345678"))
    state = platform.call("GET", f"/v1/txsign/transactions/{started['transaction_id']}")
    assert (state["state"], state["reason"]) == ("rejected", "locked")


def test_enrolment_code_is_dead_after_activation(stack: Stack) -> None:
    platform = Platform(stack)
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": "alice"})
    SoftToken.enrol(enrolment["code"], server_keys=server_keys(stack), clock=stack.clock)
    error = api_error(lambda: SoftToken.enrol(enrolment["code"], server_keys=server_keys(stack),
                                              clock=stack.clock))
    assert (error.status, error.code) == (409, "already_activated")
    error = api_error(lambda: platform.call("POST", "/v1/txsign/tokens", json={"login": "alice"}))
    assert error.code == "token_exists"


def test_the_same_response_on_two_nodes_at_once_signs_once(stack_factory: Any) -> None:
    """Copies of one response (a retry, or a platform behind two nodes) get the same
    answer; the transaction is signed once and the token counts no failure."""
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    platform_a, platform_b = Platform(first), Platform(second)
    alice = enrolled_token(first, platform_a, "alice")
    for _ in range(3):
        started = platform_a.start("alice")
        response = alice.sign(started["challenge_code"])
        transaction_id = started["transaction_id"]
        results = race([
            lambda t=transaction_id, r=response: platform_a.respond(t, r),
            lambda t=transaction_id, r=response: platform_b.respond(t, r),
        ])
        assert [r["state"] for r in results] == ["signed", "signed"], results
        assert results[0]["chain_code"] == results[1]["chain_code"]
        with first.rt.read() as conn:
            signed = search_audit(conn, challenge_id=transaction_id, event="txsign.respond")
            (token,) = tokens.list_tokens(conn, user_id=signed[0]["user_id"])
        assert [entry["reason"] for entry in signed] == ["signed"]
        assert token.failures == 0 and token.status == "active"
