"""A relying party cancels its own open challenges (``qrgate.confirm.verification.cancel``):
pending or scanned, never one already decided or expired, and never another
organisation's, which it is told does not exist. Outside tests/confirm's state machine
nothing pinned these; found by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import pytest

from qrgate.accounts.provision import provision
from qrgate.clients.relying_party import ApiError, QrgateClient
from support.stack import Stack


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code


def test_a_pending_challenge_is_cancelled(stack: Stack) -> None:
    stack.enrolled_phone()
    started, browser = stack.start()
    assert stack.rp.cancel(started["challenge_id"])["state"] == "rejected"
    assert browser.status()["state"] == "rejected"
    assert refusal(stack.rp.cancel, started["challenge_id"]) == "already_decided"


def test_a_scanned_challenge_is_cancelled_and_the_phone_cannot_approve(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    phone.scan_png(browser.qr_png())
    assert stack.rp.cancel(started["challenge_id"])["state"] == "rejected"
    assert refusal(phone.decide, started["challenge_id"], approve=True) == "already_decided"


def test_a_decided_challenge_is_not_cancelled(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    phone.scan_png(browser.qr_png())
    phone.decide(started["challenge_id"], approve=True)
    assert refusal(stack.rp.cancel, started["challenge_id"]) == "already_decided"
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "approved"


def test_an_expired_challenge_is_not_cancelled(stack: Stack) -> None:
    stack.enrolled_phone()
    started, browser = stack.start()
    stack.clock.advance(3600)
    assert refusal(stack.rp.cancel, started["challenge_id"]) == "expired"
    assert browser.status()["state"] == "expired"


def test_another_organisation_cannot_cancel(stack: Stack) -> None:
    other = provision(stack.rt, org_slug="other", org_name="Other", business_id="shop",
                      app_name="Shop", users={"mallory": None})
    stack.enrolled_phone()
    started, browser = stack.start()
    with QrgateClient(stack.base_url, api_key=other.api_key) as intruder:
        assert refusal(intruder.cancel, started["challenge_id"]) == "challenge_not_found"
    assert browser.status()["state"] == "pending"
