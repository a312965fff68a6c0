"""Review 6: a repeat of the same request by the same party gets the same answer and is
never counted as a failure; only another party's second scan still kills a challenge."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp

from qrgate.confirm import repository
from qrgate.storage.audit import search_audit
from qrgate.txsign import tokens
from support.stack import Stack
from support.txsign import Platform, enrolled_token


def reasons(stack: Stack, challenge_id: str) -> list[str]:
    with stack.rt.read() as conn:
        return [entry["reason"] for entry in search_audit(conn, challenge_id=challenge_id)]


def test_review_6_the_same_ocra_response_twice_is_one_signature(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    for _ in range(stack.rt.settings.max_failures + 2):
        started = platform.start("alice")
        response = alice.sign(started["challenge_code"])
        answers = [platform.respond(started["transaction_id"], response) for _ in range(3)]
        assert answers[0]["state"] == "signed" and answers.count(answers[0]) == 3
    with stack.rt.read() as conn:
        token = tokens.get_token(conn, alice.token_id)
    assert (token.status, token.failures) == ("active", 0)


def test_review_6_a_scan_retried_by_the_same_device_is_the_same_scan(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    first = phone.scan_text(started["code"])
    assert phone.scan_text(started["code"]) == first
    assert browser.status()["state"] == "scanned"
    assert phone.decide(started["challenge_id"], approve=True)["state"] == "approved"
    assert reasons(stack, started["challenge_id"]).count("scanned") == 1


def test_review_6_a_decision_retried_is_the_same_decision(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    first = phone.decide(started["challenge_id"], approve=False)
    assert phone.decide(started["challenge_id"], approve=False) == first
    assert reasons(stack, started["challenge_id"]).count("denied_by_user") == 1


def test_review_6_a_one_time_password_resent_is_not_a_failure(stack: Stack) -> None:
    setup = stack.rp.setup_totp("carol")
    totp = pyotp.TOTP(parse_qs(urlparse(setup["uri"]).query)["secret"][0])
    started, _ = stack.start("carol")
    otp = totp.at(stack.clock())
    first = stack.rp.submit_otp(started["challenge_id"], otp)
    assert stack.rp.submit_otp(started["challenge_id"], otp) == first
    with stack.rt.read() as conn:
        assert repository.load(conn, started["challenge_id"]).attempts == 0
