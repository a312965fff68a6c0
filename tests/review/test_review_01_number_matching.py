"""Review 1: a challenge routed to TOTP must never show, accept or approve a QR code, else
whoever holds its browser token gets a signed code approved without any number."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from qrgate.core.confirm import issue_code
from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind
from support.stack import Stack


@pytest.fixture
def totp_routed(stack_factory: object) -> Stack:
    stack: Stack = stack_factory(AppPolicy(number_matching=NumberMatching.ALWAYS,
                                           verifiers_by_operation={"transfer": VerifierKind.TOTP}))
    stack.enrolled_phone()
    stack.rp.setup_totp("alice")
    return stack


def test_review_1_totp_routed_challenge_never_rotates_a_code(totp_routed: Stack) -> None:
    started, browser = totp_routed.start()
    assert started["verifier"] == "totp" and started["code"] is None
    for fetch in (browser.rotate, browser.qr_png, browser.qr_svg):
        with pytest.raises(ApiError) as caught:
            fetch()
        assert caught.value.status == 403
        assert caught.value.code in ("wrong_verifier", "not_pending")
    assert browser.status()["state"] == "pending"


def test_review_1_a_leaked_code_of_a_totp_challenge_is_refused_at_scan(
        totp_routed: Stack) -> None:
    """Even a code signed for such a challenge (say, by an older server) never scans."""
    phone = totp_routed.phone()
    phone.enrol(totp_routed.rp.start_enrolment("alice")["code"],
                password="correct horse battery")
    started, _ = totp_routed.start()
    with totp_routed.rt.read() as conn:
        row = repository.load(conn, started["challenge_id"])
    forged = issue_code(challenge=dataclasses.replace(row.view(), verifier=VerifierKind.QR),
                        number_matching=False, issuer=totp_routed.rt.settings.issuer,
                        now=int(totp_routed.clock()), ttl=30, keyring=totp_routed.rt.keyring)
    with pytest.raises(ApiError) as caught:
        phone.scan_text(forged)
    assert (caught.value.status, caught.value.code) == (403, "wrong_verifier")
    assert totp_routed.rp.get_challenge(started["challenge_id"])["state"] == "pending"


def test_review_1_the_totp_challenge_is_decided_by_its_password(totp_routed: Stack) -> None:
    setup = totp_routed.rp.setup_totp("alice")
    totp = pyotp.TOTP(parse_qs(urlparse(setup["uri"]).query)["secret"][0])
    started, browser = totp_routed.start()
    assert totp_routed.rp.submit_otp(started["challenge_id"],
                                     totp.at(totp_routed.clock()))["state"] == "approved"
    assert browser.status()["state"] == "approved"
