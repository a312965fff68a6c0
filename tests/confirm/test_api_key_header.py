"""How a relying party presents its API key (``qrgate.http.auth.api_key_from``): the
``Authorization: Bearer <key>`` header, the scheme in any case; anything else is a missing
key, not a wrong one. And each refused decision leaves one log line that names the event
and the code. Found unpinned by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import logging

import httpx
import pytest

from support.stack import Stack


def answer(stack: Stack, authorization: str | None) -> tuple[int, str]:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(f"{stack.base_url}/v1/confirm/challenges", headers=headers)
    return response.status_code, response.json()["code"] if response.status_code != 200 else ""


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Basic {key}", "Token {key}", "{key}",
])
def test_anything_but_a_bearer_key_is_a_missing_key(stack: Stack,
                                                    authorization: str | None) -> None:
    value = None if authorization is None else authorization.format(key=stack.api_key)
    assert answer(stack, value) == (401, "missing_api_key")


@pytest.mark.parametrize("authorization", ["Bearer {key}", "bearer {key}", "BEARER {key}",
                                           "Bearer  {key}"])
def test_a_bearer_key_is_accepted(stack: Stack, authorization: str) -> None:
    assert answer(stack, authorization.format(key=stack.api_key)) == (200, "")


def test_a_bearer_with_a_wrong_key_is_a_bad_key(stack: Stack) -> None:
    assert answer(stack, "Bearer qg_nosuchkey.secret")[0] == 401
    assert answer(stack, "Bearer qg_nosuchkey.secret")[1] != "missing_api_key"


def test_a_refused_decision_is_logged_with_its_event_and_code(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack.enrolled_phone()
    started, _ = stack.start()
    stack.rp.cancel(started["challenge_id"])
    with caplog.at_level(logging.INFO, logger="qrgate.decisions"):
        refused = httpx.post(
            f"{stack.base_url}/v1/confirm/challenges/{started['challenge_id']}/cancel",
            headers={"Authorization": f"Bearer {stack.api_key}"})
    assert refused.json()["code"] == "already_decided"
    assert [r.getMessage() for r in caplog.records if r.name == "qrgate.decisions"] == [
        "confirm.cancel rejected: already_decided"]
