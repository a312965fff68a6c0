"""The second verifier (TOTP, RFC 6238) and the routing between verifiers (SPEC 603)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind
from support.stack import Stack


def _totp(stack: Stack, login: str) -> pyotp.TOTP:
    setup = stack.rp.setup_totp(login)
    assert setup["qr_svg"].startswith("<svg") or "<svg" in setup["qr_svg"][:200]
    secret = parse_qs(urlparse(setup["uri"]).query)["secret"][0]
    return pyotp.TOTP(secret)


def test_user_preference_routes_to_totp(stack: Stack) -> None:
    stack.enrolled_phone("alice")
    totp = _totp(stack, "alice")
    assert stack.start("alice")[0]["verifier"] == "qr"
    stack.rp.set_preferred_verifier("alice", "totp")
    started, browser = stack.start("alice")
    assert started["verifier"] == "totp" and started["code"] is None
    with pytest.raises(ApiError) as caught:
        wrong = "000000" if totp.at(stack.clock()) != "000000" else "111111"
        stack.rp.submit_otp(started["challenge_id"], wrong)
    assert caught.value.code == "wrong_otp"
    result = stack.rp.submit_otp(started["challenge_id"], totp.at(stack.clock()))
    assert result["state"] == "approved"
    assert browser.status()["state"] == "approved"


def test_a_time_step_is_accepted_once(stack: Stack) -> None:
    totp = _totp(stack, "carol")
    first, _ = stack.start("carol")
    second, _ = stack.start("carol")
    assert first["verifier"] == second["verifier"] == "totp"
    otp = totp.at(stack.clock())
    stack.rp.submit_otp(first["challenge_id"], otp)
    with pytest.raises(ApiError) as caught:
        stack.rp.submit_otp(second["challenge_id"], otp)
    assert caught.value.code == "otp_replayed"
    stack.clock.advance(30)
    result = stack.rp.submit_otp(second["challenge_id"], totp.at(stack.clock()))
    assert result["state"] == "approved"


def test_operation_mapping_and_explicit_request(stack_factory: object) -> None:
    policy = AppPolicy(number_matching=NumberMatching.OFF,
                       verifiers_by_operation={"login": VerifierKind.TOTP})
    stack: Stack = stack_factory(policy)  # type: ignore[operator]
    stack.enrolled_phone("alice")
    _totp(stack, "alice")
    assert stack.start("alice", operation="login", amount=None, currency=None)[0][
        "verifier"] == "totp"
    assert stack.start("alice", operation="transfer")[0]["verifier"] == "qr"
    assert stack.start("alice", operation="login", amount=None, currency=None,
                       verifier="qr")[0]["verifier"] == "qr"
    with pytest.raises(ApiError) as caught:
        stack.start("bob", verifier="totp")
    assert caught.value.code == "verifier_unavailable"


def test_qr_challenge_refuses_otp(stack: Stack) -> None:
    stack.enrolled_phone("alice")
    started, _ = stack.start("alice")
    with pytest.raises(ApiError) as caught:
        stack.rp.submit_otp(started["challenge_id"], "123456")
    assert caught.value.code == "wrong_verifier"
