"""OCRA's bounds, each at its edge: question lengths (plain and mutual), the ends of the time
and counter spaces, the types of ``now``, and the PIN-digest and session inputs on every
path (respond, verify, resync). Found by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import hashlib

import pytest

from qrgate.core.ocra import parse_suite, respond, resync, verify_response
from qrgate.errors import QrgateError

KEY = bytes(range(1, 33))
MAX_U64 = 2**64 - 1
N08 = parse_suite("OCRA-1:HOTP-SHA1-6:C-QN08")
TIMED = parse_suite("OCRA-1:HOTP-SHA1-6:QN08-T30S")
PIN = parse_suite("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1")
SESSION = parse_suite("OCRA-1:HOTP-SHA1-6:C-QN08-S004")


def code(call: object, **kwargs: object) -> str:
    with pytest.raises(QrgateError) as error:
        call(**kwargs)  # type: ignore[operator]
    return error.value.code


def test_a_question_is_at_most_the_suites_length() -> None:
    respond(suite=N08, key=KEY, question="12345678", counter=0)
    assert code(respond, suite=N08, key=KEY, question="123456789",
                counter=0) == "bad_ocra_input"
    assert code(verify_response, suite=N08, key=KEY, question="123456789", response="000000",
                counter=0, last_time_step=None, now=0) == "bad_ocra_input"


def test_a_mutual_question_is_at_most_twice_the_suites_length() -> None:
    mutual = respond(suite=N08, key=KEY, question="1234567812345678", counter=0, mutual=True)
    assert verify_response(suite=N08, key=KEY, question="1234567812345678", response=mutual,
                           counter=0, last_time_step=None, now=0, mutual=True).counter_next == 1
    for length in (17, 18, 24):
        assert code(respond, suite=N08, key=KEY, question="1" * length, counter=0,
                    mutual=True) == "bad_ocra_input"


def test_something_that_is_not_a_suite_is_refused() -> None:
    assert code(respond, suite="OCRA-1:HOTP-SHA1-6:C-QN08", key=KEY, question="1",
                counter=0) == "bad_ocra_suite"


def test_pin_digests_work_on_every_path() -> None:
    digest = hashlib.sha1(b"1234").digest()  # the suite's PIN hash
    answer = respond(suite=PIN, key=KEY, question="11111111", counter=5, pin_digest=digest)
    assert answer == respond(suite=PIN, key=KEY, question="11111111", counter=5, pin="1234")
    assert verify_response(suite=PIN, key=KEY, question="11111111", response=answer,
                           counter=5, last_time_step=None, now=0,
                           pin_digest=digest).counter_next == 6
    second = respond(suite=PIN, key=KEY, question="22222222", counter=6, pin_digest=digest)
    assert resync(suite=PIN, key=KEY, questions=("11111111", "22222222"),
                  responses=(answer, second), counter=0, pin_digest=digest) == 7


def test_sessions_work_on_every_path() -> None:
    answer = respond(suite=SESSION, key=KEY, question="11111111", counter=5, session="abcd")
    assert answer != respond(suite=SESSION, key=KEY, question="11111111", counter=5,
                             session="abce")
    assert verify_response(suite=SESSION, key=KEY, question="11111111", response=answer,
                           counter=5, last_time_step=None, now=0,
                           session="abcd").counter_next == 6
    second = respond(suite=SESSION, key=KEY, question="22222222", counter=6, session="abcd")
    assert resync(suite=SESSION, key=KEY, questions=("11111111", "22222222"),
                  responses=(answer, second), counter=0, session="abcd") == 7


def test_resync_questions_are_not_mutual() -> None:
    assert code(resync, suite=N08, key=KEY, questions=("1" * 9, "2" * 8),
                responses=("000000", "000000"), counter=0) == "bad_ocra_input"


@pytest.mark.parametrize(("questions", "responses"), [
    (["11111111", "22222222"], ("000000", "000000")),
    (("11111111",), ("000000", "000000")),
    (("11111111", "22222222", "33333333"), ("000000", "000000")),
    (("11111111", "22222222"), ["000000", "000000"]),
    (("11111111", "22222222"), ("000000",)),
    (("11111111", "22222222"), ("000000", "000000", "000000")),
])
def test_resync_takes_exactly_two_questions_and_two_responses(
    questions: object, responses: object
) -> None:
    assert code(resync, suite=N08, key=KEY, questions=questions, responses=responses,
                counter=0) == "bad_ocra_input"


def test_resync_at_the_top_of_the_counter_space_fails_cleanly() -> None:
    # The window must leave room for c + 1: the last counter is never a first response.
    assert code(resync, suite=N08, key=KEY, questions=("11111111", "22222222"),
                responses=("000000", "000000"), counter=MAX_U64 - 1) == "resync_failed"
    assert code(resync, suite=N08, key=KEY, questions=("11111111", "22222222"),
                responses=("000000", "000000"), counter=MAX_U64) == "resync_failed"


@pytest.mark.parametrize("now", ["soon", True, None, float("nan"), float("inf"), -1, -0.5])
def test_now_must_be_a_finite_non_negative_time(now: object) -> None:
    assert code(verify_response, suite=TIMED, key=KEY, question="1", response="000000",
                counter=None, last_time_step=None, now=now) == "bad_ocra_input"


@pytest.mark.parametrize("now", [0, 0.5, 29.9, 30, 31])
def test_the_first_time_steps_are_accepted(now: float) -> None:
    answer = respond(suite=TIMED, key=KEY, question="1", time_step=0)
    assert verify_response(suite=TIMED, key=KEY, question="1", response=answer, counter=None,
                           last_time_step=None, now=now).time_step == 0


def test_the_last_time_step_is_accepted() -> None:
    answer = respond(suite=TIMED, key=KEY, question="1", time_step=MAX_U64)
    assert verify_response(suite=TIMED, key=KEY, question="1", response=answer, counter=None,
                           last_time_step=None, now=MAX_U64 * 30).time_step == MAX_U64
    previous = respond(suite=TIMED, key=KEY, question="1", time_step=MAX_U64 - 1)
    assert verify_response(suite=TIMED, key=KEY, question="1", response=previous,
                           counter=None, last_time_step=None,
                           now=MAX_U64 * 30 + 29).time_step == MAX_U64 - 1


def test_an_out_of_range_counter_or_step_is_named() -> None:
    with pytest.raises(QrgateError, match=r"counter in 0\.\.2"):
        respond(suite=N08, key=KEY, question="1", counter=-1)
    with pytest.raises(QrgateError, match=r"counter in 0\.\.2"):
        verify_response(suite=N08, key=KEY, question="1", response="000000", counter=-1,
                        last_time_step=None, now=0)
    with pytest.raises(QrgateError, match=r"time step in 0\.\.2"):
        respond(suite=TIMED, key=KEY, question="1", time_step=-1)
