"""Offline approval codes (qrgate.core.offline): the question's derivation, Python's own
vectors shared with the phone app (tests/vectors/codes/offline.json), and the property that
a code verifies only for its own challenge, number and secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrgate.core import ocra
from qrgate.core.offline import (
    LABEL,
    SUITE_TEXT,
    offline_code,
    offline_question,
    verify_offline_code,
)
from qrgate.errors import BadCredentials, InvalidField

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "codes" / "offline.json").read_text("utf-8"))

ids = st.binary(min_size=16, max_size=16)
numbers = st.none() | st.integers(min_value=10, max_value=99)
secret_keys = st.binary(min_size=32, max_size=32)


def test_the_suite_is_8_digits_of_hmac_sha256_over_a_digest() -> None:
    suite = ocra.parse_suite(SUITE_TEXT)
    assert (suite.hash_name, suite.digits, suite.uses_counter, suite.time_step) == (
        "SHA256", 8, False, None)
    assert (suite.question_kind, suite.question_length) == ("H", 64)


def test_the_question_is_the_documented_digest() -> None:
    challenge_id = bytes(range(16))
    assert offline_question(challenge_id=challenge_id, number=42) == hashlib.sha256(
        b"qrgate offline approval v1\x00" + challenge_id + b"\x2a").hexdigest()
    assert offline_question(challenge_id=challenge_id, number=None) == hashlib.sha256(
        LABEL + b"\x00" + challenge_id + b"\x00").hexdigest()


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_vectors(case: dict[str, Any]) -> None:
    challenge_id, secret = bytes.fromhex(case["challengeId"]), bytes.fromhex(case["secret"])
    assert offline_question(challenge_id=challenge_id, number=case["number"]) == case["question"]
    assert offline_code(secret=secret, challenge_id=challenge_id,
                        number=case["number"]) == case["code"]
    assert verify_offline_code(code=case["code"], secrets=[bytes(32), secret],
                               challenge_id=challenge_id, expected_number=case["number"]) == 1


@pytest.mark.parametrize("number", [0, 9, 100, -1, True, 42.0, "42"])
def test_numbers_outside_number_matching_are_refused(number: object) -> None:
    with pytest.raises(InvalidField) as caught:
        offline_question(challenge_id=bytes(16), number=number)  # type: ignore[arg-type]
    assert caught.value.code == "bad_ocra_input"


@pytest.mark.parametrize("challenge_id", [bytes(15), bytes(17), "00" * 16])
def test_challenge_ids_of_another_size_are_refused(challenge_id: object) -> None:
    with pytest.raises(InvalidField):
        offline_question(challenge_id=challenge_id, number=None)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(secret=secret_keys, challenge_id=ids, number=numbers, other_id=ids, other_number=numbers,
       other_secret=secret_keys)
def test_a_code_verifies_only_for_its_own_challenge_number_and_secret(
    secret: bytes, challenge_id: bytes, number: int | None, other_id: bytes,
    other_number: int | None, other_secret: bytes,
) -> None:
    code = offline_code(secret=secret, challenge_id=challenge_id, number=number)
    assert len(code) == 8 and code.isdigit()
    assert verify_offline_code(code=code, secrets=[secret], challenge_id=challenge_id,
                               expected_number=number) == 0
    for changed_id, changed_number, changed_secret in (
            (other_id, number, secret), (challenge_id, other_number, secret),
            (challenge_id, number, other_secret)):
        if (changed_id, changed_number, changed_secret) == (challenge_id, number, secret):
            continue
        # An 8-digit code collides by chance once in 10^8: the derivation must make the
        # codes differ, which it does for every input the strategies draw.
        other = offline_code(secret=changed_secret, challenge_id=changed_id,
                             number=changed_number)
        if other == code:
            continue
        with pytest.raises(BadCredentials) as caught:
            verify_offline_code(code=code, secrets=[changed_secret], challenge_id=changed_id,
                                expected_number=changed_number)
        assert caught.value.code == "wrong_offline_code"


@pytest.mark.parametrize("code", ["", "1234567", "123456789", "1234567a", "１２３４５６７８", None])
def test_codes_that_are_not_8_digits_are_wrong_codes(code: object) -> None:
    with pytest.raises(BadCredentials) as caught:
        verify_offline_code(code=code, secrets=[bytes(32)],  # type: ignore[arg-type]
                            challenge_id=bytes(16), expected_number=None)
    assert caught.value.code == "wrong_offline_code"


def test_no_secret_matches_nothing() -> None:
    code = offline_code(secret=bytes(32), challenge_id=bytes(16), number=None)
    with pytest.raises(BadCredentials):
        verify_offline_code(code=code, secrets=[], challenge_id=bytes(16), expected_number=None)


def test_the_matching_secret_is_found_among_several() -> None:
    secrets = [bytes([index]) * 32 for index in range(4)]
    code = offline_code(secret=secrets[2], challenge_id=bytes(16), number=77)
    assert verify_offline_code(code=code, secrets=secrets, challenge_id=bytes(16),
                               expected_number=77) == 2
