"""Failure budgets of scheme C, at their edge: ``QRGATE_MAX_FAILURES - 1`` failed attempts
on a challenge still let the right device approve it, and ``QRGATE_USER_MAX_FAILURES - 1``
wrong numbers across a user's challenges still let a new one start; an approval resets the
user's count. (The other side of each edge, the lock itself, is in ``test_rejections``.)

The budgets are set below their defaults, so the limits the tests meet are the configured
ones, not numbers written into the code.
"""

from __future__ import annotations

from typing import Any

import pytest

from qrgate.accounts import directory
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from support.stack import Stack

MAX_FAILURES = 3  # QRGATE_MAX_FAILURES (default 5)
USER_MAX_FAILURES = 4  # QRGATE_USER_MAX_FAILURES (default 10)


@pytest.fixture
def stack(stack_factory: Any) -> Stack:
    built: Stack = stack_factory(max_failures=MAX_FAILURES,
                                 user_max_failures=USER_MAX_FAILURES)
    return built


def refused(action: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value.status, caught.value.code


def attempts(stack: Stack, challenge_id: str) -> int:
    with stack.rt.read() as conn:
        return repository.load(conn, challenge_id).attempts


def user_failures(stack: Stack, login: str) -> int:
    with stack.rt.read() as conn:
        return directory.find_user(conn, org_id=1, login=login).failed_attempts


def test_a_challenge_survives_one_failure_less_than_its_budget(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice", name="alice's phone")
    spare = stack.enrolled_phone("alice", name="alice's spare")
    bobs = stack.enrolled_phone("bob", name="bob's phone")
    started, browser = stack.start("alice")
    challenge_id = started["challenge_id"]
    # Wrong users scanning it, then (once alice's phone scanned) her other phone deciding.
    for _ in range(MAX_FAILURES - 2):
        assert refused(lambda: bobs.scan_text(started["code"])) == (403, "wrong_user")
    phone.scan_text(started["code"])
    assert refused(lambda: spare.decide(challenge_id, approve=True)) == (403, "wrong_device")
    assert attempts(stack, challenge_id) == MAX_FAILURES - 1
    assert browser.status()["state"] == "scanned"
    approved = phone.decide(challenge_id, approve=True)
    assert (approved["state"], approved["reason"]) == ("approved", "approved")
    assert browser.status()["state"] == "approved"


def test_a_pending_challenge_survives_wrong_users_up_to_its_budget(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    bobs = stack.enrolled_phone("bob")
    started, _ = stack.start("alice")
    for _ in range(MAX_FAILURES - 1):
        assert refused(lambda: bobs.scan_text(started["code"])) == (403, "wrong_user")
    assert attempts(stack, started["challenge_id"]) == MAX_FAILURES - 1
    phone.scan_text(started["code"])
    assert phone.decide(started["challenge_id"], approve=True)["state"] == "approved"


def guess_wrong(stack: Stack, phone: PhoneSimulator) -> None:
    started, browser = stack.start("alice", number_matching=True)
    phone.scan_text(started["code"])
    wrong = 10 + (started["number"] - 10 + 1) % 90
    assert refused(lambda: phone.decide(started["challenge_id"], approve=True,
                                        number=wrong)) == (403, "number_mismatch")
    assert browser.status()["reason"] == "number_mismatch"


def approve_with_the_number(stack: Stack, phone: PhoneSimulator) -> None:
    started, _ = stack.start("alice", number_matching=True)
    phone.scan_text(started["code"])
    approved = phone.decide(started["challenge_id"], approve=True, number=started["number"])
    assert approved["state"] == "approved"


def test_a_user_survives_one_wrong_number_less_than_the_budget(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    for counted in range(1, USER_MAX_FAILURES):
        guess_wrong(stack, phone)
        assert user_failures(stack, "alice") == counted
    # USER_MAX_FAILURES - 1 wrong numbers: a new challenge still starts, and approving it
    # with the right number resets the count.
    approve_with_the_number(stack, phone)
    assert user_failures(stack, "alice") == 0
    # So the whole budget is there again: as many wrong numbers again, then an approval.
    for _ in range(USER_MAX_FAILURES - 1):
        guess_wrong(stack, phone)
    assert user_failures(stack, "alice") == USER_MAX_FAILURES - 1
    approve_with_the_number(stack, phone)
    assert user_failures(stack, "alice") == 0
    # The budget is the user's own: bob's count never moved.
    assert user_failures(stack, "bob") == 0
