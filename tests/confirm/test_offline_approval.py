"""Offline approval (qrgate.confirm.offline) on both databases, through the API: the phone
cannot reach the server, shows a code made from the scanned QR and its offline secret, and
the waiting page (browser token) or the relying party (API key) sends it in."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select, update

from qrgate.accounts import directory
from qrgate.clients.browser import BrowserSession
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from qrgate.core.offline import offline_code
from qrgate.core.policy import AppPolicy, NumberMatching, VerifierKind
from qrgate.storage.audit import search_audit
from qrgate.storage.models import devices, webhook_events
from support.stack import PASSWORD, Stack

MATCHING = AppPolicy(number_matching=NumberMatching.ALWAYS)
NO_MATCHING = AppPolicy(number_matching=NumberMatching.OFF)


def refusal(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def another(number: int) -> int:
    return number % 89 + 10


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


def state_of(stack: Stack, challenge_id: str) -> dict[str, Any]:
    return stack.rp.get_challenge(challenge_id)


def attempts_of(stack: Stack, challenge_id: str) -> int:
    with stack.rt.read() as conn:
        return repository.load(conn, challenge_id).attempts


def user_failures(stack: Stack, login: str) -> int:
    with stack.rt.read() as conn:
        org_id = repository.history(conn, login=login, limit=1)[0].org_id
        return directory.find_user(conn, org_id=org_id, login=login).failed_attempts


def test_the_waiting_page_approves_with_the_code_and_the_number(
        stack_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    stack: Stack = stack_factory(MATCHING, webhook_allow_loopback=True)
    stack.rp.set_webhook("http://127.0.0.1:9/qrgate-hook")  # nobody listens: events stay
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    code = phone.offline_code(started["code"], number=started["number"])
    caplog.set_level(logging.DEBUG)

    approved = browser.send_offline_code(code)
    assert approved["state"] == "approved" and approved["reason"] == "approved_offline"
    assert browser.status()["state"] == "approved"

    with stack.rt.read() as conn:
        (entry,) = search_audit(conn, challenge_id=started["challenge_id"], limit=1)
        events = [row.data for row in conn.execute(
            select(webhook_events).where(webhook_events.c.type == "confirm.approved"))]
    assert (entry["event"], entry["reason"], entry["device_id"]) == (
        "confirm.offline", "approved_offline", phone.device_id)
    assert code not in str(entry)
    (event,) = [data for data in events if data["challenge_id"] == started["challenge_id"]]
    assert (event["reason"], event["device_id"]) == ("approved_offline", phone.device_id)
    assert code not in caplog.text

    # The answer was lost: the same code again gets the same approval, counting nothing.
    again = browser.send_offline_code(code)
    assert again["state"] == "approved"
    assert attempts_of(stack, started["challenge_id"]) == 0
    # The relying party forwarding it too.
    assert stack.rp.forward_offline_code(started["challenge_id"], code)["state"] == "approved"
    # But it is no key to anything else: a wrong code on the approved challenge is refused.
    assert refusal(browser.send_offline_code, wrong(code)).code == "already_decided"


def test_the_relying_party_forwards_a_code_without_number_matching(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    started, _ = stack.start("alice")
    assert started["number"] is None
    code = phone.offline_code(started["code"])
    approved = stack.rp.forward_offline_code(started["challenge_id"], code)
    assert approved["state"] == "approved"


def test_a_code_made_with_a_wrong_number_is_a_wrong_code_and_counts(stack_factory: Any) -> None:
    stack: Stack = stack_factory(MATCHING)
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    guessed = phone.offline_code(started["code"], number=another(started["number"]))
    error = refusal(browser.send_offline_code, guessed)
    assert (error.status, error.code) == (401, "wrong_offline_code")
    assert attempts_of(stack, started["challenge_id"]) == 1
    assert user_failures(stack, "alice") == 1
    # Still open: the right code approves, and the user's failures are forgiven.
    right = phone.offline_code(started["code"], number=started["number"])
    assert browser.send_offline_code(right)["state"] == "approved"
    assert user_failures(stack, "alice") == 0


def test_wrong_codes_lock_the_challenge_at_the_budget(stack_factory: Any) -> None:
    stack: Stack = stack_factory(MATCHING, max_failures=3)
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    right = phone.offline_code(started["code"], number=started["number"])
    for _ in range(3):
        assert refusal(browser.send_offline_code, wrong(right)).code == "wrong_offline_code"
    status = browser.status()
    assert (status["state"], status["reason"]) == ("rejected", "locked")
    assert refusal(browser.send_offline_code, right).code == "locked"


def test_a_code_of_another_challenge_does_not_approve(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    first, _ = stack.start("alice")
    _, browser = stack.start("alice")
    error = refusal(browser.send_offline_code, phone.offline_code(first["code"]))
    assert error.code == "wrong_offline_code"
    assert state_of(stack, first["challenge_id"])["state"] == "pending"


def test_any_of_the_users_phones_may_approve_until_one_scans(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    first = stack.enrolled_phone("alice", "first phone")
    second = stack.enrolled_phone("alice", "second phone")
    started, browser = stack.start("alice")
    assert browser.send_offline_code(second.offline_code(started["code"]))["state"] == "approved"

    # Once a phone scanned (its decision then failed), only that phone's code approves.
    started, browser = stack.start("alice")
    first.scan_text(started["code"])
    assert refusal(browser.send_offline_code,
                   second.offline_code(started["code"])).code == "wrong_offline_code"
    assert browser.send_offline_code(first.offline_code(started["code"]))["state"] == "approved"


def test_expired_and_decided_challenges_are_refused(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    code = phone.offline_code(started["code"])
    stack.clock.advance(3600)
    assert refusal(browser.send_offline_code, code).code == "expired"
    assert browser.status()["state"] == "expired"

    started, browser = stack.start("alice")
    code = phone.offline_code(started["code"])
    stack.rp.cancel(started["challenge_id"])
    assert refusal(browser.send_offline_code, code).code == "already_decided"


def test_a_service_that_requires_the_app_lock_takes_no_offline_code(
        stack_factory: Any) -> None:
    """The unlock is proven with an online decision; a typed code cannot show it."""
    stack: Stack = stack_factory(AppPolicy(number_matching=NumberMatching.OFF,
                                           require_app_lock=True))
    phone = stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    error = refusal(browser.send_offline_code, phone.offline_code(started["code"]))
    assert (error.status, error.code) == (403, "app_lock_required")
    assert state_of(stack, started["challenge_id"])["state"] == "pending"


def test_a_user_whose_phones_hold_no_offline_secret(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    with stack.rt.engine.begin() as conn:  # enrolled before offline secrets existed
        conn.execute(update(devices).where(devices.c.id == phone.device_id)
                     .values(offline_secret_enc=None))
    started, browser = stack.start("alice")
    error = refusal(browser.send_offline_code, "12345678")
    assert (error.status, error.code) == (409, "offline_unavailable")
    assert attempts_of(stack, started["challenge_id"]) == 0


def test_an_unbound_phone_no_longer_approves(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    spare = stack.enrolled_phone("alice", "spare")
    started, browser = stack.start("alice")
    code = phone.offline_code(started["code"])
    phone.unbind()
    assert refusal(browser.send_offline_code, code).code == "wrong_offline_code"
    assert browser.send_offline_code(spare.offline_code(started["code"]))["state"] == "approved"


def test_only_the_starting_browser_or_its_relying_party_may_send(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    phone = stack.enrolled_phone("alice")
    started, _ = stack.start("alice")
    code = phone.offline_code(started["code"])
    stranger = BrowserSession(stack.base_url, started["challenge_id"], "not-the-token")
    stack.closers.append(stranger.close)
    assert refusal(stranger.send_offline_code, code).code == "wrong_browser"
    assert refusal(stack.other.rp.forward_offline_code, started["challenge_id"],
                   code).code == "challenge_not_found"
    assert attempts_of(stack, started["challenge_id"]) == 0
    assert state_of(stack, started["challenge_id"])["state"] == "pending"


def test_a_totp_challenge_takes_no_offline_code(stack_factory: Any) -> None:
    stack: Stack = stack_factory(AppPolicy(number_matching=NumberMatching.OFF,
                                           default_verifier=VerifierKind.TOTP))
    stack.rp.setup_totp("alice")
    stack.enrolled_phone("alice")
    _, browser = stack.start("alice")
    assert refusal(browser.send_offline_code, "12345678").code == "wrong_verifier"


def test_malformed_codes_are_invalid_requests(stack_factory: Any) -> None:
    stack: Stack = stack_factory(NO_MATCHING)
    stack.enrolled_phone("alice")
    started, browser = stack.start("alice")
    for body in ({"code": "1234567"}, {"code": "123456789"}, {"code": 12345678},
                 {"code": "1234567a"}, {"code": "１２３４５６７８"}, {},
                 {"code": "12345678", "extra": 1}):
        response = browser._http.post(f"/v1/confirm/challenges/{started['challenge_id']}"
                                      "/offline-code", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid_request"
    assert attempts_of(stack, started["challenge_id"]) == 0


def test_the_simulator_computes_what_the_server_expects(stack_factory: Any) -> None:
    stack: Stack = stack_factory(MATCHING)
    phone = PhoneSimulator(stack.base_url, clock=stack.clock)
    stack.closers.append(phone.close)
    phone.enrol(stack.rp.start_enrolment("bob")["code"], password=PASSWORD)
    assert phone.offline_secret is not None and len(phone.offline_secret) == 32
    started, _ = stack.start("bob")
    challenge_id = bytes.fromhex(started["challenge_id"])
    assert phone.offline_code(started["code"], number=started["number"]) == offline_code(
        secret=phone.offline_secret, challenge_id=challenge_id, number=started["number"])
    with pytest.raises(Exception, match="number"):
        phone.offline_code(started["code"])
