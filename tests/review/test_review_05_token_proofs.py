"""Review 5: every proof of an OCRA token counts, activation and resync included, and locks
like the rest; suites the platform could never use are refused at enrolment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.core import ocra
from qrgate.errors import InvalidField, NotFound
from qrgate.txsign import tokens
from qrgate.txsign.tokens import TokenEnrolment, activation_question, read_enrolment_code
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys


def wrong(response: str) -> str:
    return str((int(response) + 1) % 10 ** len(response)).zfill(len(response))


def enrolled_by_hand(stack: Stack) -> tuple[dict[str, Any], TokenEnrolment, str]:
    """A token enrolment for alice, read as her phone reads it, and the right answer to
    its activation question."""
    enrolment = Platform(stack).call("POST", "/v1/txsign/tokens", json={"login": "alice"})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(stack), now=stack.clock())
    right = ocra.respond(suite=ocra.parse_suite(read.suite), key=read.secret,
                         question=activation_question(read.token_id), counter=read.counter)
    return enrolment, read, right


def test_review_5_wrong_activations_lock_the_token(stack: Stack) -> None:
    _, read, right = enrolled_by_hand(stack)
    url = f"/v1/txsign/tokens/{read.token_id}/activate"
    answers = [httpx.post(stack.base_url + url, json={"response": wrong(right)})
               for _ in range(30)]
    codes = [answer.json()["code"] for answer in answers]
    limit = stack.rt.settings.max_failures
    assert codes[:limit] == ["wrong_response"] * limit
    assert set(codes[limit:]) == {"token_locked"}
    late = httpx.post(stack.base_url + url, json={"response": right})
    assert (late.status_code, late.json()["code"]) == (423, "token_locked")
    with stack.rt.read() as conn:
        assert tokens.get_token(conn, read.token_id).status == "locked"
    # Never activated, so never unlocked: it never proved it holds the secret.
    with stack.rt.engine.begin() as conn, pytest.raises(NotFound):
        tokens.set_status(conn, token_id=read.token_id, status="active")


def test_review_5_wrong_resyncs_lock_the_token(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    questions = ["1" * 64, "2" * 64]
    right = [alice._respond(questions[0]), alice._respond(questions[1])]
    url = f"/v1/txsign/tokens/{alice.token_id}/resync"
    codes = [platform.http.post(url, json={"questions": questions,
                                           "responses": [wrong(right[0]), right[1]]}
                                ).json()["code"] for _ in range(20)]
    limit = stack.rt.settings.max_failures
    assert codes[:limit] == ["resync_failed"] * limit
    assert set(codes[limit:]) == {"token_locked"}
    with stack.rt.read() as conn:
        assert tokens.get_token(conn, alice.token_id).status == "locked"


UNUSABLE_SUITES = ["OCRA-1:HOTP-SHA256-8:C-QH64-PSHA1", "OCRA-1:HOTP-SHA256-8:QH64-S064",
                   "OCRA-1:HOTP-SHA1-6:QN08"]


@pytest.mark.parametrize("suite", UNUSABLE_SUITES)
def test_review_5_suites_the_platform_cannot_use_are_refused(stack: Stack, suite: str) -> None:
    """By the API's input type, and by the token module for every other way in (the
    command line)."""
    response = Platform(stack).http.post("/v1/txsign/tokens",
                                         json={"login": "alice", "suite": suite})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    with pytest.raises(InvalidField) as caught:
        tokens.check_suite(suite)
    assert caught.value.code == "bad_ocra_suite"


def test_review_5_every_suite_the_api_takes_is_usable(stack: Stack) -> None:
    platform = Platform(stack)
    for login, suite in (("alice", "OCRA-1:HOTP-SHA512-10:C-QH64"),
                         ("bob", "OCRA-1:HOTP-SHA1-6:QH64-T30S")):
        token = enrolled_token(stack, platform, login, suite=suite)
        stack.clock.advance(30)  # a time step is used once: activation took this one
        started = platform.start(login)
        assert platform.respond(started["transaction_id"],
                                token.sign(started["challenge_code"]))["state"] == "signed"


def test_review_5_activation_repeated_by_the_same_app_is_one_activation(stack: Stack) -> None:
    """The activating app's retry gets the same answer; a copy of the QR used elsewhere
    is told the token is already activated."""
    enrolment, read, right = enrolled_by_hand(stack)
    url = f"{stack.base_url}/v1/txsign/tokens/{read.token_id}/activate"
    body: dict[str, Any] = {"response": right, "client_id": "phone-install-0123456789"}
    first, retry = httpx.post(url, json=body), httpx.post(url, json=body)
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json()
    copy = httpx.post(url, json={**body, "client_id": "someone-else-0123456789"})
    assert (copy.status_code, copy.json()["code"]) == (409, "already_activated")
    with pytest.raises(ApiError) as caught:
        SoftToken.enrol(enrolment["code"], server_keys=server_keys(stack), clock=stack.clock)
    assert caught.value.code == "already_activated"
