"""The TOTP verifier's attempt counters, through the API: a wrong or replayed password
counts against the challenge (which locks at the budget), a wrong one against the user too
(who locks across challenges), and an approval resets the user's count. Found unpinned by
mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind
from support.stack import Stack

TOTP_ONLY = AppPolicy(number_matching=NumberMatching.OFF, default_verifier=VerifierKind.TOTP)


def totp_for(stack: Stack, login: str) -> pyotp.TOTP:
    uri = stack.rp.setup_totp(login)["uri"]
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])


def wrong(totp: pyotp.TOTP, stack: Stack) -> str:
    return "000000" if totp.at(stack.clock()) != "000000" else "111111"


def refusal(stack: Stack, challenge_id: str, otp: str) -> str:
    with pytest.raises(ApiError) as caught:
        stack.rp.submit_otp(challenge_id, otp)
    return caught.value.code


def test_wrong_passwords_lock_the_challenge_at_the_budget(stack_factory: object) -> None:
    stack: Stack = stack_factory(TOTP_ONLY, max_failures=3)  # type: ignore[operator]
    totp = totp_for(stack, "carol")
    started, browser = stack.start("carol")
    assert started["verifier"] == "totp"
    for _ in range(3):
        assert refusal(stack, started["challenge_id"], wrong(totp, stack)) == "wrong_otp"
    assert browser.status()["state"] == "rejected"
    assert refusal(stack, started["challenge_id"], totp.at(stack.clock())) == "locked"


def test_replayed_passwords_count_against_the_challenge(stack_factory: object) -> None:
    stack: Stack = stack_factory(TOTP_ONLY, max_failures=2)  # type: ignore[operator]
    totp = totp_for(stack, "carol")
    first, _ = stack.start("carol")
    otp = totp.at(stack.clock())
    stack.rp.submit_otp(first["challenge_id"], otp)
    second, browser = stack.start("carol")
    for _ in range(2):
        assert refusal(stack, second["challenge_id"], otp) == "otp_replayed"
    assert browser.status()["state"] == "rejected"


def test_wrong_passwords_lock_the_user_across_challenges(stack_factory: object) -> None:
    stack: Stack = stack_factory(  # type: ignore[operator]
        TOTP_ONLY, max_failures=5, user_max_failures=3)
    totp = totp_for(stack, "carol")
    for _ in range(3):
        started, _ = stack.start("carol")
        assert refusal(stack, started["challenge_id"], wrong(totp, stack)) == "wrong_otp"
    with pytest.raises(ApiError) as caught:
        stack.start("carol")
    assert caught.value.code == "user_locked"


def test_replays_do_not_lock_the_user(stack_factory: object) -> None:
    stack: Stack = stack_factory(  # type: ignore[operator]
        TOTP_ONLY, max_failures=5, user_max_failures=2)
    totp = totp_for(stack, "carol")
    first, _ = stack.start("carol")
    otp = totp.at(stack.clock())
    stack.rp.submit_otp(first["challenge_id"], otp)
    for _ in range(2):
        started, _ = stack.start("carol")
        assert refusal(stack, started["challenge_id"], otp) == "otp_replayed"
    assert stack.start("carol")[0]["verifier"] == "totp"


def test_an_approval_resets_the_users_count(stack_factory: object) -> None:
    stack: Stack = stack_factory(  # type: ignore[operator]
        TOTP_ONLY, max_failures=5, user_max_failures=2)
    totp = totp_for(stack, "carol")
    started, _ = stack.start("carol")
    assert refusal(stack, started["challenge_id"], wrong(totp, stack)) == "wrong_otp"
    assert stack.rp.submit_otp(started["challenge_id"], totp.at(stack.clock()))[
        "state"] == "approved"
    stack.clock.advance(30)
    started, _ = stack.start("carol")
    assert refusal(stack, started["challenge_id"], wrong(totp, stack)) == "wrong_otp"
    assert stack.start("carol")[0]["verifier"] == "totp"
