"""The app lock through the API, on both databases: a PIN and a platform authenticator
(``support.authenticator``, a software one) registered by the phone, approvals refused
without an unlock when the application's policy requires it, wrong PINs counted and
bounded, and changes of the lock unlocked too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from qrgate.clients.phone import PhoneSimulator
from qrgate.core.app_lock import LockChange, change_message, decision_message
from qrgate.core.policy import AppPolicy, NumberMatching
from support import fresh
from support.authenticator import SoftAuthenticator, b64u, pin_key, pin_unlock
from support.stack import Stack

LOCKED = AppPolicy(number_matching=NumberMatching.OFF, require_app_lock=True)
PIN = "246810"


@pytest.fixture
def locked(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory(LOCKED, max_pin_failures=3)


def scanned(stack: Stack, phone: PhoneSimulator, login: str) -> dict[str, Any]:
    started, _ = stack.start(login)
    return phone.scan_text(started["code"])


def decide(phone: PhoneSimulator, challenge_id: str, unlock: dict[str, Any] | None = None,
           decision: str = "approve") -> httpx.Response:
    body: dict[str, Any] = {"decision": decision}
    if unlock is not None:
        body["unlock"] = unlock
    return phone._signed("POST", f"/v1/confirm/challenges/{challenge_id}/decision", body)


def approve_with_pin(phone: PhoneSimulator, challenge_id: str, key: bytes) -> httpx.Response:
    message = decision_message(challenge_id=challenge_id, decision="approve", number=None)
    return decide(phone, challenge_id, pin_unlock(key, message))


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def set_pin(phone: PhoneSimulator, key: bytes,
            unlock: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"key": b64u(key)}
    if unlock is not None:
        body["unlock"] = unlock
    return phone._signed("PUT", "/v1/devices/me/lock/pin", body)


def add_fingerprint(stack: Stack, phone: PhoneSimulator, key: bytes,
                    authenticator: SoftAuthenticator | None = None) -> SoftAuthenticator:
    authenticator = authenticator or SoftAuthenticator(origin=stack.rt.settings.public_url)
    options = phone.call("POST", "/v1/devices/me/lock/webauthn/options")
    assert options["authenticatorSelection"]["userVerification"] == "required"
    credential = authenticator.create(options)
    assert phone.device_id is not None
    message = change_message(device_id=phone.device_id, change=LockChange.ADD_WEBAUTHN,
                             material=authenticator.credential_id)
    phone.call("POST", "/v1/devices/me/lock/webauthn",
               {"credential": credential, "unlock": pin_unlock(key, message)})
    return authenticator


def test_without_the_policy_approvals_need_no_unlock(stack: Stack) -> None:
    login, phone = fresh.user_with_phone(stack)
    context = scanned(stack, phone, login)
    assert context["unlock_required"] is False
    assert decide(phone, context["challenge_id"]).json()["state"] == "approved"


def test_the_policy_refuses_an_approval_without_unlock_but_never_a_denial(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    context = scanned(locked, phone, login)
    assert context["unlock_required"] is True
    refused(decide(phone, context["challenge_id"]), 403, "app_lock_required")
    # A PIN proof from a phone that never set a PIN.
    refused(approve_with_pin(phone, context["challenge_id"], bytes(32)), 403, "lock_not_set_up")
    assert decide(phone, context["challenge_id"], decision="deny").json()["state"] == "denied"


def test_a_pin_unlock_approves_only_its_own_decision(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key = pin_key(phone, PIN)
    assert set_pin(phone, key).json() == {"pin": True, "webauthn": False, "credential_id": None,
                                          "pin_failures": 0, "pin_locked": False}
    first, second = scanned(locked, phone, login), scanned(locked, phone, login)
    # The proof of one decision does not approve another challenge.
    message = decision_message(challenge_id=first["challenge_id"], decision="approve",
                               number=None)
    refused(decide(phone, second["challenge_id"], pin_unlock(key, message)), 401, "wrong_pin")
    approved = approve_with_pin(phone, first["challenge_id"], key)
    assert approved.json()["state"] == "approved"
    # A retry of the very same approval gets the same answer and counts nothing.
    again = approve_with_pin(phone, first["challenge_id"], key)
    assert again.json() == approved.json()
    assert phone.call("GET", "/v1/devices/me/lock")["pin_failures"] == 0


def test_wrong_pins_are_counted_reset_by_the_right_one_and_bounded(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key, wrong = pin_key(phone, PIN), pin_key(phone, "000000")
    set_pin(phone, key).raise_for_status()
    refused(approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"], wrong),
            401, "wrong_pin")
    assert phone.call("GET", "/v1/devices/me/lock")["pin_failures"] == 1
    assert approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"],
                            key).json()["state"] == "approved"
    assert phone.call("GET", "/v1/devices/me/lock")["pin_failures"] == 0
    for _ in range(3):  # max_pin_failures
        refused(approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"], wrong),
                401, "wrong_pin")
    state = phone.call("GET", "/v1/devices/me/lock")
    assert (state["pin_failures"], state["pin_locked"]) == (3, True)
    # Now even the right PIN is refused, and guessing stops counting.
    refused(approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"], key),
            423, "pin_locked")
    refused(set_pin(phone, key, pin_unlock(key, change_message(
        device_id=str(phone.device_id), change=LockChange.SET_PIN, material=key))),
        423, "pin_locked")
    assert phone.call("GET", "/v1/devices/me/lock")["pin_failures"] == 3


def test_the_fingerprint_unlocks_and_sets_a_new_pin_after_a_locked_one(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key = pin_key(phone, PIN)
    set_pin(phone, key).raise_for_status()
    authenticator = add_fingerprint(locked, phone, key)
    state = phone.call("GET", "/v1/devices/me/lock")
    assert (state["pin"], state["webauthn"]) == (True, True)

    context = scanned(locked, phone, login)
    message = decision_message(challenge_id=context["challenge_id"], decision="approve",
                               number=None)
    assert decide(phone, context["challenge_id"],
                  authenticator.assert_(message)).json()["state"] == "approved"

    # Three wrong PINs lock the PIN; the fingerprint still approves and sets a new one.
    wrong = pin_key(phone, "111111")
    for _ in range(3):
        refused(approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"], wrong),
                401, "wrong_pin")
    new_key = pin_key(phone, "135790")
    assert phone.device_id is not None
    change = change_message(device_id=phone.device_id, change=LockChange.SET_PIN,
                            material=new_key)
    assert set_pin(phone, new_key, authenticator.assert_(change)).json()["pin_locked"] is False
    assert approve_with_pin(phone, scanned(locked, phone, login)["challenge_id"],
                            new_key).json()["state"] == "approved"


def test_assertions_that_do_not_prove_an_unlock_are_refused(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key = pin_key(phone, PIN)
    set_pin(phone, key).raise_for_status()
    authenticator = add_fingerprint(locked, phone, key)
    context = scanned(locked, phone, login)
    challenge_id = context["challenge_id"]
    message = decision_message(challenge_id=challenge_id, decision="approve", number=None)
    other = decision_message(challenge_id=challenge_id, decision="deny", number=None)

    authenticator.user_verified = False  # touched, but no fingerprint or face
    refused(decide(phone, challenge_id, authenticator.assert_(message)), 403,
            "bad_unlock_proof")
    authenticator.user_verified = True
    refused(decide(phone, challenge_id, authenticator.assert_(other)), 403, "bad_unlock_proof")
    refused(decide(phone, challenge_id, authenticator.assert_(
        message, credential_id=b"another credential")), 403, "bad_unlock_proof")
    stranger = SoftAuthenticator(origin=locked.rt.settings.public_url,
                                 credential_id=authenticator.credential_id)
    refused(decide(phone, challenge_id, stranger.assert_(message)), 403, "bad_unlock_proof")
    good = authenticator.assert_(message, count=10)
    replayed_count = authenticator.assert_(message, count=10)
    assert decide(phone, challenge_id, good).json()["state"] == "approved"
    # The sign count only moves forward: a clone's older count is refused.
    refused(decide(phone, scanned(locked, phone, login)["challenge_id"], replayed_count),
            403, "bad_unlock_proof")


def test_registering_a_fingerprint_needs_a_pin_user_verification_and_our_challenge(
        locked: Stack) -> None:
    _, phone = fresh.user_with_phone(locked)
    refused(phone._signed("POST", "/v1/devices/me/lock/webauthn/options"), 403,
            "lock_not_set_up")
    key = pin_key(phone, PIN)
    set_pin(phone, key).raise_for_status()
    assert phone.device_id is not None
    unverified = SoftAuthenticator(origin=locked.rt.settings.public_url, user_verified=False)
    options = phone.call("POST", "/v1/devices/me/lock/webauthn/options")
    message = change_message(device_id=phone.device_id, change=LockChange.ADD_WEBAUTHN,
                             material=unverified.credential_id)
    response = phone._signed("POST", "/v1/devices/me/lock/webauthn", {
        "credential": unverified.create(options), "unlock": pin_unlock(key, message)})
    refused(response, 403, "bad_unlock_proof")
    # Options handed to another phone do not register on this one.
    _, other_phone = fresh.user_with_phone(locked)
    set_pin(other_phone, pin_key(other_phone, PIN)).raise_for_status()
    foreign = other_phone.call("POST", "/v1/devices/me/lock/webauthn/options")
    verified = SoftAuthenticator(origin=locked.rt.settings.public_url)
    message = change_message(device_id=phone.device_id, change=LockChange.ADD_WEBAUTHN,
                             material=verified.credential_id)
    refused(phone._signed("POST", "/v1/devices/me/lock/webauthn", {
        "credential": verified.create(foreign), "unlock": pin_unlock(key, message)}),
        403, "bad_unlock_proof")
    # Expired options.
    locked.clock.advance(301)
    refused(phone._signed("POST", "/v1/devices/me/lock/webauthn", {
        "credential": verified.create(options), "unlock": pin_unlock(key, message)}),
        403, "bad_unlock_proof")


def test_changing_or_removing_the_lock_takes_an_unlock(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key, thief = pin_key(phone, PIN), pin_key(phone, "999999")
    set_pin(phone, key).raise_for_status()
    assert phone.device_id is not None
    # Whoever holds the unlocked phone cannot replace the PIN it has.
    refused(set_pin(phone, thief), 403, "app_lock_required")
    refused(set_pin(phone, thief, pin_unlock(thief, change_message(
        device_id=phone.device_id, change=LockChange.SET_PIN, material=thief))), 401, "wrong_pin")
    refused(phone._signed("POST", "/v1/devices/me/lock/off", {"unlock": pin_unlock(
        key, change_message(device_id=phone.device_id, change=LockChange.SET_PIN))}),
        401, "wrong_pin")
    off = phone.call("POST", "/v1/devices/me/lock/off", {"unlock": pin_unlock(
        key, change_message(device_id=phone.device_id, change=LockChange.TURN_OFF))})
    assert (off["pin"], off["webauthn"], off["pin_failures"]) == (False, False, 0)
    refused(phone._signed("POST", "/v1/devices/me/lock/off", {"unlock": pin_unlock(
        key, change_message(device_id=phone.device_id, change=LockChange.TURN_OFF))}),
        403, "lock_not_set_up")
    refused(decide(phone, scanned(locked, phone, login)["challenge_id"]), 403,
            "app_lock_required")


@pytest.mark.parametrize("unlock", [
    {"method": "pin"},
    {"method": "pin", "proof": "A" * 42},
    {"method": "pin", "proof": "A" * 42 + "B"},
    {"method": "fingerprint", "proof": "A" * 43},
    {"method": "webauthn", "credential_id": "A", "authenticator_data": "AA",
     "client_data_json": "AA", "signature": "AA"},
    {"method": "webauthn", "credential_id": "AA", "authenticator_data": "AA",
     "client_data_json": "AA", "signature": "AA", "extra": 1},
    "pin",
])
def test_malformed_unlocks_are_invalid_requests(locked: Stack, unlock: Any) -> None:
    login, phone = fresh.user_with_phone(locked)
    context = scanned(locked, phone, login)
    refused(decide(phone, context["challenge_id"], unlock), 422, "invalid_request")


def test_garbled_webauthn_fields_are_refused_not_failed(locked: Stack) -> None:
    login, phone = fresh.user_with_phone(locked)
    key = pin_key(phone, PIN)
    set_pin(phone, key).raise_for_status()
    authenticator = add_fingerprint(locked, phone, key)
    context = scanned(locked, phone, login)
    unlock = {"method": "webauthn", "credential_id": b64u(authenticator.credential_id),
              "authenticator_data": "AAAA", "client_data_json": "e30", "signature": "AAAA"}
    refused(decide(phone, context["challenge_id"], unlock), 403, "bad_unlock_proof")
