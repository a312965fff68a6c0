"""Failure budgets of scheme E, at their edge: ``QRGATE_MAX_FAILURES - 1`` wrong responses
to a transaction still let the right one sign it, as many wrong answers to a token's
activation question still let the right one activate it, and a token's count of failed
proofs across transactions goes back to zero when it signs. (The other side of each edge,
the lock itself, is in ``test_rejections`` and ``tests/review/test_review_05_*``.)

The budget is set below its default, so the limit the tests meet is the configured one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.core import ocra
from qrgate.txsign import platform as txplatform
from qrgate.txsign import tokens
from qrgate.txsign.tokens import activation_question, read_enrolment_code
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys

MAX_FAILURES = 3  # QRGATE_MAX_FAILURES (default 5)


@pytest.fixture
def stack(stack_factory: Any) -> Stack:
    built: Stack = stack_factory(max_failures=MAX_FAILURES)
    return built


def refused(action: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value.status, caught.value.code


def wrong(response: str) -> str:
    return str((int(response) + 1) % 10 ** len(response)).zfill(len(response))


def token_record(stack: Stack, token_id: str) -> tokens.TokenRecord:
    with stack.rt.read() as conn:
        return tokens.get_token(conn, token_id)


def test_a_transaction_signs_after_one_wrong_response_less_than_the_budget(
        stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    right = alice.sign(started["challenge_code"])
    for _ in range(MAX_FAILURES - 1):
        assert refused(lambda: platform.respond(started["transaction_id"], wrong(right))) == (
            401, "wrong_response")
    with stack.rt.read() as conn:
        row = txplatform.load(conn, started["transaction_id"])
    assert (row.state, row.attempts) == ("pending", MAX_FAILURES - 1)
    assert token_record(stack, alice.token_id).failures == MAX_FAILURES - 1
    signed = platform.respond(started["transaction_id"], right)
    assert signed["state"] == "signed" and signed["chain_code"]
    # The signature spent the token's failures too.
    record = token_record(stack, alice.token_id)
    assert (record.status, record.failures) == ("active", 0)


def test_a_tokens_failures_across_transactions_reset_when_it_signs(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    for _ in range(2):
        for _ in range(MAX_FAILURES - 1):  # each on a transaction of its own
            started = platform.start("alice")
            assert refused(lambda s=started: platform.respond(
                s["transaction_id"], "00000000")) == (401, "wrong_response")
        assert token_record(stack, alice.token_id).failures == MAX_FAILURES - 1
        started = platform.start("alice")
        assert platform.respond(started["transaction_id"],
                                alice.sign(started["challenge_code"]))["state"] == "signed"
        assert token_record(stack, alice.token_id).failures == 0


def test_a_token_activates_after_one_wrong_answer_less_than_the_budget(stack: Stack) -> None:
    enrolment = Platform(stack).call("POST", "/v1/txsign/tokens", json={"login": "alice"})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(stack), now=stack.clock())
    right = ocra.respond(suite=ocra.parse_suite(read.suite), key=read.secret,
                         question=activation_question(read.token_id), counter=read.counter)
    url = f"{stack.base_url}/v1/txsign/tokens/{read.token_id}/activate"
    for _ in range(MAX_FAILURES - 1):
        answer = httpx.post(url, json={"response": wrong(right)})
        assert (answer.status_code, answer.json()["code"]) == (401, "wrong_response")
    record = token_record(stack, read.token_id)
    assert (record.status, record.failures) == ("pending", MAX_FAILURES - 1)
    activated = httpx.post(url, json={"response": right})
    assert (activated.status_code, activated.json()["status"]) == (200, "active")
    assert token_record(stack, read.token_id).failures == 0
    # The activated token signs: the phone holds it from the same enrolment.
    token = SoftToken(token_id=read.token_id, secret=read.secret, suite=read.suite,
                      counter=read.counter + 1, server_url=read.server_url, login=read.login,
                      server_keys=server_keys(stack), clock=stack.clock)
    platform = Platform(stack)
    started = platform.start("alice")
    assert platform.respond(started["transaction_id"],
                            token.sign(started["challenge_code"]))["state"] == "signed"
