"""Device registration (patent claims 3 and 12): one-time, confirmed, bounded attempts."""

from __future__ import annotations

import pytest

from qrgate.accounts import directory
from qrgate.clients.relying_party import ApiError
from support.stack import PASSWORD, Stack


def test_enrol_with_a_code_shown_once(stack: Stack) -> None:
    enrolment = stack.rp.start_enrolment("carol")  # carol has no password
    phone = stack.phone()
    with pytest.raises(ApiError) as caught:
        phone.enrol(enrolment["code"], password="anything at all")
    assert caught.value.code == "bad_credentials"
    result = phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
    assert result["login"] == "carol" and result["status"] == "active"


def test_enrolment_code_is_single_use(stack: Stack) -> None:
    enrolment = stack.rp.start_enrolment("alice")
    stack.phone().enrol(enrolment["code"], password=PASSWORD)
    with pytest.raises(ApiError) as caught:
        stack.phone().enrol(enrolment["code"], password=PASSWORD)
    assert (caught.value.status, caught.value.code) == (409, "replayed")


def test_wrong_confirmations_lock_the_enrolment(stack: Stack) -> None:
    enrolment = stack.rp.start_enrolment("alice")
    phone = stack.phone()
    for _ in range(stack.rt.settings.max_failures):
        with pytest.raises(ApiError):
            phone.enrol(enrolment["code"], password="wrong password")
    with pytest.raises(ApiError) as caught:
        phone.enrol(enrolment["code"], password=PASSWORD)
    assert (caught.value.status, caught.value.code) == (423, "locked")


def test_enrolment_expires(stack: Stack) -> None:
    enrolment = stack.rp.start_enrolment("alice")
    stack.clock.advance(stack.rt.settings.enrol_ttl + 10)
    with pytest.raises(ApiError) as caught:
        stack.phone().enrol(enrolment["code"], password=PASSWORD)
    assert caught.value.code == "expired"


def test_unbound_device_cannot_scan(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    stack.enrolled_phone("alice", name="spare")
    phone.unbind()
    started, _ = stack.start("alice")
    with pytest.raises(ApiError) as caught:
        phone.scan_text(started["code"])
    assert (caught.value.status, caught.value.code) == (401, "device_unbound")


def test_frozen_user_cannot_start(stack: Stack) -> None:
    stack.enrolled_phone("alice")
    with stack.rt.engine.begin() as conn:
        user = directory.find_user(conn, org_id=1, login="alice")
        directory.set_frozen(conn, user_id=user.id, frozen=True, now=stack.clock())
    with pytest.raises(ApiError) as caught:
        stack.start("alice")
    assert (caught.value.status, caught.value.code) == (423, "frozen")
