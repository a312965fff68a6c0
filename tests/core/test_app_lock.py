"""The app lock's pure part (qrgate.core.app_lock): what an unlock proof covers, and the
PIN's checks. The JavaScript side is checked against the same values in tests/js/."""

from __future__ import annotations

import hashlib

import pytest

from qrgate.core.app_lock import (
    PIN_KEY_LEN,
    LockChange,
    change_message,
    check_pin_budget,
    check_pin_key,
    decision_message,
    pin_proof,
    verify_pin_proof,
)
from qrgate.errors import QrgateError

CHALLENGE = "0123456789abcdef0123456789abcdef"
DEVICE = "fedcba9876543210fedcba9876543210"
KEY = bytes(range(PIN_KEY_LEN))


def test_a_decision_message_names_the_challenge_the_decision_and_the_number() -> None:
    base = decision_message(challenge_id=CHALLENGE, decision="approve", number=None)
    assert len(base) == 32
    others = {
        decision_message(challenge_id=CHALLENGE[::-1], decision="approve", number=None),
        decision_message(challenge_id=CHALLENGE, decision="deny", number=None),
        decision_message(challenge_id=CHALLENGE, decision="approve", number=0),
        decision_message(challenge_id=CHALLENGE, decision="approve", number=42),
    }
    assert base not in others and len(others) == 4


def test_change_messages_are_apart_from_decisions_and_from_each_other() -> None:
    changes = {change_message(device_id=DEVICE, change=change, material=KEY)
               for change in LockChange}
    assert len(changes) == len(LockChange)
    assert change_message(device_id=DEVICE, change=LockChange.SET_PIN, material=KEY) != (
        change_message(device_id=DEVICE, change=LockChange.SET_PIN, material=KEY[::-1]))
    assert decision_message(challenge_id=DEVICE, decision="set_pin", number=None) not in changes


def test_a_pin_proof_verifies_with_its_key_and_message_only() -> None:
    message = decision_message(challenge_id=CHALLENGE, decision="approve", number=7)
    proof = pin_proof(key=KEY, message=message)
    verify_pin_proof(expected_key=KEY, message=message, proof=proof)
    for key, signed, sent in [(KEY[::-1], message, proof), (KEY, message[::-1], proof),
                              (KEY, message, proof[:-1]), (KEY, message, b"")]:
        with pytest.raises(QrgateError) as refused:
            verify_pin_proof(expected_key=key, message=signed, proof=sent)
        assert (refused.value.code, refused.value.status) == ("wrong_pin", 401)


@pytest.mark.parametrize(("failures", "refused"), [(0, False), (4, False), (5, True), (9, True)])
def test_the_pin_is_refused_from_the_limit_on(failures: int, refused: bool) -> None:
    if not refused:
        check_pin_budget(failures=failures, max_failures=5)
        return
    with pytest.raises(QrgateError) as error:
        check_pin_budget(failures=failures, max_failures=5)
    assert (error.value.code, error.value.status) == ("pin_locked", 423)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_pin_key_is_32_bytes(size: int) -> None:
    assert check_pin_key(KEY) == KEY
    with pytest.raises(QrgateError) as error:
        check_pin_key(bytes(size))
    assert error.value.code == "bad_unlock_proof"


def test_the_messages_are_exactly_what_the_readme_documents() -> None:
    """The app computes them on its own (js/shared/lock.js): written out here from the
    README's definition, byte for byte, not from the module."""
    challenge = "0123456789abcdef" * 2
    assert decision_message(challenge_id=challenge, decision="approve", number=None) == (
        hashlib.sha256(f"QGUNLOCK1\n{challenge}\napprove\n-".encode()).digest())
    assert decision_message(challenge_id=challenge, decision="approve", number=42) == (
        hashlib.sha256(f"QGUNLOCK1\n{challenge}\napprove\n42".encode()).digest())
    key = bytes(range(32))
    empty = hashlib.sha256(b"").hexdigest()
    for change in LockChange:
        assert change_message(device_id=challenge, change=change) == hashlib.sha256(
            f"QGLOCKSET1\n{challenge}\n{change.value}\n{empty}".encode()).digest()
        assert change_message(device_id=challenge, change=change, material=key) == (
            hashlib.sha256(f"QGLOCKSET1\n{challenge}\n{change.value}\n"
                           f"{hashlib.sha256(key).hexdigest()}".encode()).digest())
