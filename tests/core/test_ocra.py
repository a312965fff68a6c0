"""OCRA against every RFC 6287 Appendix C vector, plus windows, resync and properties."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qrgate.core import ocra
from qrgate.core.ocra import (
    LOOK_AHEAD,
    RESYNC_WINDOW,
    TIME_WINDOW,
    Match,
    Suite,
    parse_suite,
    question_for_digest,
    respond,
    resync,
    verify_response,
)
from qrgate.errors import BadCredentials, InvalidField, QrgateError, Replayed

VECTOR_FILE = Path(__file__).resolve().parents[1] / "vectors" / "rfc6287_ocra.json"
DOC = json.loads(VECTOR_FILE.read_text())
VECTORS: list[dict[str, Any]] = DOC["vectors"]

KEY20 = bytes.fromhex("3132333435363738393031323334353637383930")
KEY32 = bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132")
KEY64 = bytes.fromhex(
    "3132333435363738393031323334353637383930313233343536373839303132"
    "3334353637383930313233343536373839303132333435363738393031323334"
)
T_132D0B6 = 0x132D0B6


def vector_id(v: dict[str, Any]) -> str:
    parts = [v["section"], v["suite"]]
    if "role" in v:
        parts.append(v["role"])
    if "counter" in v:
        parts.append(f"C={v['counter']}")
    parts.append(f"Q={v['question']}")
    if "pin" in v:
        parts.append(f"P={v['pin']}")
    if "timestamp" in v:
        parts.append(f"T={v['timestamp']}")
    return " ".join(parts)


def time_step_of(v: dict[str, Any]) -> int | None:
    return int(v["timestamp"], 16) if "timestamp" in v else None


def inputs_of(v: dict[str, Any], *, digest_pin: bool = False) -> dict[str, Any]:
    """The keyword inputs a vector gives ``respond``/``verify_response`` besides counter/T."""
    out: dict[str, Any] = {
        "suite": parse_suite(v["suite"]),
        "key": bytes.fromhex(v["key"]),
        "question": v["question"],
        "mutual": v["mode"] == "mutual",
    }
    if "pin" in v:
        if digest_pin:
            out["pin_digest"] = bytes.fromhex(v["pin_sha1"])
        else:
            out["pin"] = v["pin"]
    return out


ALL = pytest.mark.parametrize("v", VECTORS, ids=[vector_id(v) for v in VECTORS])
WITH_PIN = [v for v in VECTORS if "pin" in v]


# --- the published vectors --------------------------------------------------------------


def test_vector_file_is_complete() -> None:
    assert "RFC 6287, Appendix C" in DOC["source"]
    by_section: dict[str, int] = {}
    for v in VECTORS:
        by_section[v["section"]] = by_section.get(v["section"], 0) + 1
    assert by_section == {"C.1": 40, "C.2": 20, "C.3": 10}
    assert {v["key"] for v in VECTORS} == {KEY20.hex(), KEY32.hex(), KEY64.hex()}
    assert all(v["pin_sha1"] == hashlib.sha1(b"1234").hexdigest() for v in WITH_PIN)


@ALL
def test_respond_matches_rfc(v: dict[str, Any]) -> None:
    got = respond(**inputs_of(v), counter=v.get("counter"), time_step=time_step_of(v))
    assert got == v["response"]


@pytest.mark.parametrize("v", WITH_PIN, ids=[vector_id(v) for v in WITH_PIN])
def test_respond_with_pin_digest_matches_rfc(v: dict[str, Any]) -> None:
    got = respond(**inputs_of(v, digest_pin=True), counter=v.get("counter"),
                  time_step=time_step_of(v))
    assert got == v["response"]


@ALL
def test_verify_accepts_rfc_response(v: dict[str, Any]) -> None:
    # Start the stored state behind the vector so it has to be found inside the window.
    counter = max(0, v["counter"] - 3) if "counter" in v else None
    step = time_step_of(v)
    suite = parse_suite(v["suite"])
    if step is not None:
        assert suite.time_step is not None
        now = step * suite.time_step + suite.time_step / 2
        last = step - 1
    else:
        now, last = 0.0, None
    match = verify_response(**inputs_of(v), response=v["response"], counter=counter,
                            last_time_step=last, now=now)
    expected_next = v["counter"] + 1 if "counter" in v else None
    assert match == Match(counter_next=expected_next, time_step=step)


@ALL
def test_verify_rejects_altered_rfc_response(v: dict[str, Any]) -> None:
    altered = v["response"][:-1] + str((int(v["response"][-1]) + 1) % 10)
    step = time_step_of(v)
    suite = parse_suite(v["suite"])
    now = 0.0 if step is None else float(step * (suite.time_step or 1))
    with pytest.raises(BadCredentials) as info:
        verify_response(**inputs_of(v), response=altered, counter=v.get("counter"),
                        last_time_step=None, now=now)
    assert info.value.code == "wrong_response"


# --- parse_suite ------------------------------------------------------------------------

RFC_SUITES = {
    "OCRA-1:HOTP-SHA1-6:QN08": (6, "SHA1", False, "N", 8, None, None, None),
    "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1": (8, "SHA256", True, "N", 8, "SHA1", None, None),
    "OCRA-1:HOTP-SHA256-8:QN08-PSHA1": (8, "SHA256", False, "N", 8, "SHA1", None, None),
    "OCRA-1:HOTP-SHA512-8:C-QN08": (8, "SHA512", True, "N", 8, None, None, None),
    "OCRA-1:HOTP-SHA512-8:QN08-T1M": (8, "SHA512", False, "N", 8, None, None, 60),
    "OCRA-1:HOTP-SHA256-8:QA08": (8, "SHA256", False, "A", 8, None, None, None),
    "OCRA-1:HOTP-SHA512-8:QA08": (8, "SHA512", False, "A", 8, None, None, None),
    "OCRA-1:HOTP-SHA512-8:QA08-PSHA1": (8, "SHA512", False, "A", 8, "SHA1", None, None),
    "OCRA-1:HOTP-SHA512-8:QA10-T1M": (8, "SHA512", False, "A", 10, None, None, 60),
    # Not in Appendix C, but in the RFC's grammar: every optional part at its limit.
    "OCRA-1:HOTP-SHA1-4:QH04": (4, "SHA1", False, "H", 4, None, None, None),
    "OCRA-1:HOTP-SHA512-10:C-QH64-PSHA512-S512-T48H": (
        10, "SHA512", True, "H", 64, "SHA512", 512, 48 * 3600),
    "OCRA-1:HOTP-SHA256-8:QN08-S064": (8, "SHA256", False, "N", 8, None, 64, None),
    "OCRA-1:HOTP-SHA256-6:C-QA64-PSHA256-T59S": (6, "SHA256", True, "A", 64, "SHA256", None, 59),
    "OCRA-1:HOTP-SHA1-8:QN08-S001-T59M": (8, "SHA1", False, "N", 8, None, 1, 59 * 60),
}


def test_all_rfc_vector_suites_are_covered() -> None:
    assert {v["suite"] for v in VECTORS} <= set(RFC_SUITES)


@pytest.mark.parametrize("text", list(RFC_SUITES))
def test_parse_suite(text: str) -> None:
    digits, hash_name, counter, kind, length, pin, session, step = RFC_SUITES[text]
    assert parse_suite(text) == Suite(
        description=text, digits=digits, hash_name=hash_name, uses_counter=counter,
        question_kind=kind, question_length=length, pin_hash=pin, session_length=session,
        time_step=step,
    )


MALFORMED_SUITES = [
    "",
    "OCRA-1",
    "OCRA-1:HOTP-SHA1-6",
    "OCRA-1:HOTP-SHA1-6:",
    "OCRA-1:HOTP-SHA1-6:C",  # no Q part
    "OCRA-1:HOTP-SHA1-6:C-PSHA1",  # no Q part
    "OCRA-1:HOTP-SHA1-6:PSHA1-T1M",  # no Q part
    "OCRA-2:HOTP-SHA1-6:QN08",
    "OCRA-1:TOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-MD5-6:QN08",
    "OCRA-1:HOTP-sha1-6:QN08",
    "ocra-1:hotp-sha1-6:qn08",
    "OCRA-1:HOTP-SHA1-0:QN08",  # no truncation: valid RFC, unsupported here
    "OCRA-1:HOTP-SHA1-3:QN08",
    "OCRA-1:HOTP-SHA1-11:QN08",
    "OCRA-1:HOTP-SHA1-06:QN08",
    "OCRA-1:HOTP-SHA1-\uff16:QN08",  # fullwidth digit six
    "OCRA-1:HOTP-SHA1-6:Q",
    "OCRA-1:HOTP-SHA1-6:QN8",
    "OCRA-1:HOTP-SHA1-6:QN03",
    "OCRA-1:HOTP-SHA1-6:QN65",
    "OCRA-1:HOTP-SHA1-6:QX08",
    "OCRA-1:HOTP-SHA1-6:QN08-P",
    "OCRA-1:HOTP-SHA1-6:QN08-PMD5",
    "OCRA-1:HOTP-SHA1-6:QN08-PSHA384",
    "OCRA-1:HOTP-SHA1-6:QN08-S",
    "OCRA-1:HOTP-SHA1-6:QN08-S64",
    "OCRA-1:HOTP-SHA1-6:QN08-S000",
    "OCRA-1:HOTP-SHA1-6:QN08-S513",
    "OCRA-1:HOTP-SHA1-6:QN08-T",
    "OCRA-1:HOTP-SHA1-6:QN08-T0S",
    "OCRA-1:HOTP-SHA1-6:QN08-T0H",  # errata 3729
    "OCRA-1:HOTP-SHA1-6:QN08-T60S",
    "OCRA-1:HOTP-SHA1-6:QN08-T60M",
    "OCRA-1:HOTP-SHA1-6:QN08-T49H",
    "OCRA-1:HOTP-SHA1-6:QN08-T1H30M",
    "OCRA-1:HOTP-SHA1-6:QN08-T1D",
    "OCRA-1:HOTP-SHA1-6:QN08-C",  # parts out of order
    "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1",
    "OCRA-1:HOTP-SHA1-6:C-C-QN08",
    "OCRA-1:HOTP-SHA1-6:QN08-QN08",
    "OCRA-1:HOTP-SHA1-6:QN08\n",
    " OCRA-1:HOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-SHA1-6:QN08:",
    "OCRA-1:HOTP-SHA1-6::QN08",
]


@pytest.mark.parametrize("text", MALFORMED_SUITES)
def test_parse_suite_refuses(text: str) -> None:
    with pytest.raises(InvalidField) as info:
        parse_suite(text)
    assert info.value.code == "bad_ocra_suite"


@pytest.mark.parametrize("value", [None, b"OCRA-1:HOTP-SHA1-6:QN08", 6])
def test_parse_suite_refuses_non_text(value: object) -> None:
    with pytest.raises(InvalidField) as info:
        parse_suite(value)  # type: ignore[arg-type]
    assert info.value.code == "bad_ocra_suite"


def test_hand_built_suite_that_disagrees_is_refused() -> None:
    real = parse_suite("OCRA-1:HOTP-SHA1-6:QN08")
    for forged in (
        dataclasses.replace(real, digits=8),
        dataclasses.replace(real, uses_counter=True),
        dataclasses.replace(real, description="OCRA-1:HOTP-SHA1-6:QN0"),
    ):
        with pytest.raises(InvalidField) as info:
            respond(suite=forged, key=KEY20, question="12345678", counter=0)
        assert info.value.code == "bad_ocra_suite"


# --- respond: inputs that do not fit the suite ------------------------------------------

S_PLAIN = parse_suite("OCRA-1:HOTP-SHA1-6:QN08")
S_COUNTER_PIN = parse_suite("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1")
S_TIME = parse_suite("OCRA-1:HOTP-SHA512-8:QN08-T1M")
S_ALPHA = parse_suite("OCRA-1:HOTP-SHA256-8:QA08")
S_HEX = parse_suite("OCRA-1:HOTP-SHA256-8:QH08")
S_SESSION = parse_suite("OCRA-1:HOTP-SHA256-8:QN08-S064")
S_COUNTER = parse_suite("OCRA-1:HOTP-SHA512-8:C-QN08")
S_DIGEST = parse_suite("OCRA-1:HOTP-SHA256-8:C-QH64")
S_BOTH = parse_suite("OCRA-1:HOTP-SHA256-8:C-QN08-T30S")

BAD_INPUTS: list[tuple[str, Suite, dict[str, Any]]] = [
    ("counter missing", S_COUNTER_PIN, {"question": "12345678", "pin": "1234"}),
    ("counter negative", S_COUNTER_PIN, {"question": "1", "pin": "1", "counter": -1}),
    ("counter 2^64", S_COUNTER_PIN, {"question": "1", "pin": "1", "counter": 2**64}),
    ("counter bool", S_COUNTER_PIN, {"question": "1", "pin": "1", "counter": True}),
    ("counter str", S_COUNTER_PIN, {"question": "1", "pin": "1", "counter": "5"}),
    ("counter not in suite", S_PLAIN, {"question": "12345678", "counter": 0}),
    ("pin missing", S_COUNTER_PIN, {"question": "12345678", "counter": 0}),
    ("pin and digest", S_COUNTER_PIN, {"question": "1", "counter": 0, "pin": "1234",
                                       "pin_digest": hashlib.sha1(b"1234").digest()}),
    ("digest hex text", S_COUNTER_PIN, {"question": "1", "counter": 0,
                                        "pin_digest": hashlib.sha1(b"1234").hexdigest()}),
    ("digest too short", S_COUNTER_PIN, {"question": "1", "counter": 0, "pin_digest": b"x"}),
    ("pin not in suite", S_PLAIN, {"question": "12345678", "pin": "1234"}),
    ("digest not in suite", S_PLAIN, {"question": "1", "pin_digest": bytes(20)}),
    ("question too long", S_PLAIN, {"question": "123456789"}),
    ("question empty", S_PLAIN, {"question": ""}),
    ("question letters in N", S_PLAIN, {"question": "1234567a"}),
    ("question sign in N", S_PLAIN, {"question": "-1234567"}),
    ("question space in N", S_PLAIN, {"question": "1234 567"}),
    ("question fullwidth N", S_PLAIN, {"question": "\uff11\uff12\uff13"}),
    ("question arabic-indic N", S_PLAIN, {"question": "\u0661\u0662\u0663"}),
    ("question bytes", S_PLAIN, {"question": b"12345678"}),
    ("question dash in A", S_ALPHA, {"question": "SIG-1000"}),
    ("question accent in A", S_ALPHA, {"question": "SIG\u00e9"}),
    ("question odd hex", S_HEX, {"question": "abc"}),
    ("question non-hex", S_HEX, {"question": "abcdefgz"}),
    ("mutual length without mutual", S_ALPHA, {"question": "CLI22220SRV11110"}),
    ("mutual too long", S_ALPHA, {"question": "CLI22220SRV111101", "mutual": True}),
    ("session missing", S_SESSION, {"question": "12345678"}),
    ("session short", S_SESSION, {"question": "1", "session": "x" * 63}),
    ("session long", S_SESSION, {"question": "1", "session": "x" * 65}),
    ("session non-ascii", S_SESSION, {"question": "1", "session": "\u00e9" * 64}),
    ("session not in suite", S_PLAIN, {"question": "1", "session": "x" * 64}),
    ("time step missing", S_TIME, {"question": "12345678"}),
    ("time step negative", S_TIME, {"question": "1", "time_step": -1}),
    ("time step float", S_TIME, {"question": "1", "time_step": 1.5}),
    ("time step not in suite", S_PLAIN, {"question": "1", "time_step": 5}),
]


@pytest.mark.parametrize(("suite", "inputs"), [(s, i) for _, s, i in BAD_INPUTS],
                         ids=[name for name, _, _ in BAD_INPUTS])
def test_respond_refuses_inputs_that_do_not_fit(suite: Suite, inputs: dict[str, Any]) -> None:
    with pytest.raises(InvalidField) as info:
        respond(suite=suite, key=KEY32, **inputs)
    assert info.value.code == "bad_ocra_input"


@pytest.mark.parametrize("key", [b"", "12345678901234567890", bytearray(KEY20)])
def test_respond_refuses_bad_key(key: object) -> None:
    with pytest.raises(InvalidField) as info:
        respond(suite=S_PLAIN, key=key, question="12345678")  # type: ignore[arg-type]
    assert info.value.code == "bad_ocra_input"


def test_session_enters_the_response() -> None:
    a = respond(suite=S_SESSION, key=KEY32, question="12345678", session="a" * 64)
    b = respond(suite=S_SESSION, key=KEY32, question="12345678", session="b" * 64)
    assert a != b
    assert len(a) == 8 and a.isdigit()


def test_short_numeric_question_is_valid() -> None:
    # QN08 is a maximum length; leading zeros vanish in the RFC's numeric encoding.
    assert respond(suite=S_PLAIN, key=KEY20, question="0") == "237653"


# --- verify_response: windows -----------------------------------------------------------

Q = "12345678"


def counter_response(c: int) -> str:
    return respond(suite=S_COUNTER, key=KEY64, question=Q, counter=c)


def verify_counter(response: object, counter: int | None) -> Match:
    return verify_response(suite=S_COUNTER, key=KEY64, question=Q,
                           response=response,  # type: ignore[arg-type]
                           counter=counter, last_time_step=None, now=0.0)


@pytest.mark.parametrize("offset", [0, 1, 5, LOOK_AHEAD])
def test_counter_inside_look_ahead(offset: int) -> None:
    assert verify_counter(counter_response(1000 + offset), 1000) == Match(
        counter_next=1000 + offset + 1, time_step=None)


@pytest.mark.parametrize("offset", [-1, -LOOK_AHEAD, LOOK_AHEAD + 1, 50])
def test_counter_outside_look_ahead(offset: int) -> None:
    with pytest.raises(BadCredentials) as info:
        verify_counter(counter_response(1000 + offset), 1000)
    assert info.value.code == "wrong_response"


def test_counter_response_is_single_use() -> None:
    response = counter_response(7)
    match = verify_counter(response, 5)
    assert match.counter_next == 8
    with pytest.raises(BadCredentials):
        verify_counter(response, match.counter_next)


def test_counter_window_stops_at_the_top_of_the_counter_space() -> None:
    top = 2**64 - 1
    assert verify_counter(counter_response(top), top - 3).counter_next == 2**64


def test_every_candidate_is_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int | None, int | None]] = []
    original = ocra._Prepared.compute

    def counting(self: ocra._Prepared, counter: int | None, time_step: int | None) -> str:
        calls.append((counter, time_step))
        return original(self, counter, time_step)

    responses = {c: counter_response(c) for c in (100, 105, 110)}
    monkeypatch.setattr(ocra._Prepared, "compute", counting)
    for response in [*responses.values(), "00000000"]:
        calls.clear()
        with contextlib.suppress(BadCredentials):
            verify_counter(response, 100)
        assert [c for c, _ in calls] == list(range(100, 100 + LOOK_AHEAD + 1))


T = T_132D0B6


def time_response(step: int, suite: Suite = S_TIME) -> str:
    return respond(suite=suite, key=KEY64, question=Q, time_step=step)


def verify_time(response: str, now: float, last: int | None) -> Match:
    return verify_response(suite=S_TIME, key=KEY64, question=Q, response=response,
                           counter=None, last_time_step=last, now=now)


@pytest.mark.parametrize("delta", range(-TIME_WINDOW, TIME_WINDOW + 1))
def test_time_step_inside_window(delta: int) -> None:
    now = T * 60 + 59.9
    assert verify_time(time_response(T + delta), now, None) == Match(
        counter_next=None, time_step=T + delta)
    assert verify_time(time_response(T + delta), now, T - 2).time_step == T + delta


@pytest.mark.parametrize("delta", [-TIME_WINDOW - 1, TIME_WINDOW + 1, 30])
def test_time_step_outside_window(delta: int) -> None:
    with pytest.raises(BadCredentials) as info:
        verify_time(time_response(T + delta), T * 60.0, None)
    assert info.value.code == "wrong_response"


def test_time_step_reuse_is_replay() -> None:
    response = time_response(T)
    match = verify_time(response, T * 60.0, T - 1)
    assert match.time_step == T
    for last in (T, T + 1):
        with pytest.raises(Replayed) as info:
            verify_time(response, T * 60.0 + 30, last)
        assert info.value.code == "response_replayed"
    assert not issubclass(Replayed, BadCredentials)


def test_counter_and_time_are_both_checked() -> None:
    now = 1_700_000_000.0
    current = int(now // 30)
    response = respond(suite=S_BOTH, key=KEY32, question=Q, counter=42, time_step=current + 1)

    def check(counter: int, last: int | None) -> Match:
        return verify_response(suite=S_BOTH, key=KEY32, question=Q, response=response,
                               counter=counter, last_time_step=last, now=now)

    assert check(40, current - 5) == Match(counter_next=43, time_step=current + 1)
    with pytest.raises(Replayed):
        check(40, current + 1)
    with pytest.raises(BadCredentials):
        check(43, None)
    with pytest.raises(BadCredentials):
        verify_response(suite=S_BOTH, key=KEY32, question=Q, response=response,
                        counter=40, last_time_step=None, now=now + 90)


MALFORMED_RESPONSES: list[object] = [
    "", "1234567", "123456789", "abcdefgh", " 1234567", "1234567 ", "+1234567", "1_234567",
    "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", None, 12345678, b"12345678",
]


@pytest.mark.parametrize("response", MALFORMED_RESPONSES)
def test_malformed_response_is_just_wrong(response: object) -> None:
    with pytest.raises(BadCredentials) as info:
        verify_counter(response, 0)
    assert info.value.code == "wrong_response"


def test_right_response_with_trailing_newline_is_wrong() -> None:
    with pytest.raises(BadCredentials):
        verify_counter(counter_response(0) + "\n", 0)


@pytest.mark.parametrize(
    ("suite", "counter", "last", "now"),
    [
        (S_COUNTER, None, None, 0.0),
        (S_COUNTER, -1, None, 0.0),
        (S_TIME, None, None, float("nan")),
        (S_TIME, None, None, float("inf")),
        (S_TIME, None, None, -1.0),
        (S_TIME, None, "5", 0.0),
    ],
    ids=["counter missing", "counter negative", "now nan",
         "now inf", "now negative", "last step text"],
)
def test_verify_refuses_state_that_does_not_fit(
    suite: Suite, counter: int | None, last: object, now: float
) -> None:
    with pytest.raises(InvalidField) as info:
        verify_response(suite=suite, key=KEY64, question=Q, response="12345678",
                        counter=counter, last_time_step=last,  # type: ignore[arg-type]
                        now=now)
    assert info.value.code == "bad_ocra_input"


def test_verify_ignores_state_the_suite_does_not_use() -> None:
    # Callers keep a counter and a last step per token whatever its suite.
    plain = respond(suite=S_PLAIN, key=KEY20, question=Q)
    assert verify_response(suite=S_PLAIN, key=KEY20, question=Q, response=plain, counter=7,
                           last_time_step=99, now=float("nan")) == Match(
        counter_next=None, time_step=None)
    timed = time_response(T)
    assert verify_response(suite=S_TIME, key=KEY64, question=Q, response=timed, counter=0,
                           last_time_step=None, now=T * 60.0).time_step == T
    counted = counter_response(3)
    assert verify_response(suite=S_COUNTER, key=KEY64, question=Q, response=counted,
                           counter=0, last_time_step=10**9, now=-1.0).counter_next == 4


# --- resync -----------------------------------------------------------------------------

Q1, Q2 = "11111111", "22222222"


def resync_at(c1: int, c2: int, counter: int = 1000) -> int:
    r1 = respond(suite=S_COUNTER, key=KEY64, question=Q1, counter=c1)
    r2 = respond(suite=S_COUNTER, key=KEY64, question=Q2, counter=c2)
    return resync(suite=S_COUNTER, key=KEY64, questions=(Q1, Q2), responses=(r1, r2),
                  counter=counter)


@pytest.mark.parametrize("offset", [0, 1, 50, RESYNC_WINDOW])
def test_resync_finds_consecutive_responses(offset: int) -> None:
    c = 1000 + offset
    assert resync_at(c, c + 1) == c + 2


@pytest.mark.parametrize(
    ("c1", "c2"),
    [(1000 + RESYNC_WINDOW + 1, 1000 + RESYNC_WINDOW + 2), (999, 1000), (1010, 1012),
     (1011, 1010), (1010, 1010)],
    ids=["beyond window", "behind counter", "gap", "reversed", "same counter"],
)
def test_resync_fails(c1: int, c2: int) -> None:
    with pytest.raises(BadCredentials) as info:
        resync_at(c1, c2)
    assert info.value.code == "resync_failed"


def test_resync_with_malformed_responses_fails() -> None:
    with pytest.raises(BadCredentials) as info:
        resync(suite=S_COUNTER, key=KEY64, questions=(Q1, Q2), responses=("1234", "x"),
               counter=0)
    assert info.value.code == "resync_failed"


def test_resync_with_pin() -> None:
    r1 = respond(suite=S_COUNTER_PIN, key=KEY32, question=Q1, counter=30, pin="1234")
    r2 = respond(suite=S_COUNTER_PIN, key=KEY32, question=Q2, counter=31, pin="1234")
    assert resync(suite=S_COUNTER_PIN, key=KEY32, questions=(Q1, Q2), responses=(r1, r2),
                  counter=0, pin="1234") == 32
    with pytest.raises(InvalidField):
        resync(suite=S_COUNTER_PIN, key=KEY32, questions=(Q1, Q2), responses=(r1, r2),
               counter=0)


@pytest.mark.parametrize("suite", [S_PLAIN, S_TIME, S_BOTH], ids=["plain", "time", "both"])
def test_resync_needs_counter_suite(suite: Suite) -> None:
    with pytest.raises(InvalidField) as info:
        resync(suite=suite, key=KEY64, questions=(Q1, Q2), responses=("1", "2"), counter=0)
    assert info.value.code == "bad_ocra_suite"


# --- question_for_digest ----------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**32))
def test_question_for_digest_round_trip(digest: bytes, counter: int) -> None:
    question = question_for_digest(digest, S_DIGEST)
    assert len(question) == 64
    assert question == question.lower()
    assert bytes.fromhex(question) == digest
    response = respond(suite=S_DIGEST, key=KEY32, question=question, counter=counter)
    assert respond(suite=S_DIGEST, key=KEY32, question=question.upper(),
                   counter=counter) == response
    match = verify_response(suite=S_DIGEST, key=KEY32, question=question, response=response,
                            counter=counter, last_time_step=None, now=0.0)
    assert match.counter_next == counter + 1


def test_question_for_digest_binds_the_transaction() -> None:
    one = question_for_digest(hashlib.sha256(b"pay 10 to A").digest(), S_DIGEST)
    two = question_for_digest(hashlib.sha256(b"pay 10 to B").digest(), S_DIGEST)
    r_one = respond(suite=S_DIGEST, key=KEY32, question=one, counter=0)
    with pytest.raises(BadCredentials):
        verify_response(suite=S_DIGEST, key=KEY32, question=two, response=r_one,
                        counter=0, last_time_step=None, now=0.0)


@pytest.mark.parametrize("suite", ["OCRA-1:HOTP-SHA256-8:QN08", "OCRA-1:HOTP-SHA256-8:QH32",
                                   "OCRA-1:HOTP-SHA256-8:QA64"])
def test_question_for_digest_needs_qh64(suite: str) -> None:
    with pytest.raises(InvalidField) as info:
        question_for_digest(bytes(32), parse_suite(suite))
    assert info.value.code == "bad_ocra_suite"


@pytest.mark.parametrize("digest", [bytes(31), bytes(33), b"", "00" * 32])
def test_question_for_digest_needs_32_bytes(digest: object) -> None:
    with pytest.raises(InvalidField) as info:
        question_for_digest(digest, S_DIGEST)  # type: ignore[arg-type]
    assert info.value.code == "bad_ocra_input"


# --- properties -------------------------------------------------------------------------

S_PROP = parse_suite("OCRA-1:HOTP-SHA256-8:C-QN08")
keys = st.binary(min_size=1, max_size=64)
questions = st.text(alphabet="0123456789", min_size=1, max_size=8)
counters = st.integers(0, 2**63)


@settings(max_examples=100, deadline=None)
@given(keys, questions, counters, st.integers(0, LOOK_AHEAD))
def test_property_accepts_any_counter_in_window(
    key: bytes, question: str, counter: int, offset: int
) -> None:
    def at(c: int) -> str:
        return respond(suite=S_PROP, key=key, question=question, counter=c)

    response = at(counter + offset)
    match = verify_response(suite=S_PROP, key=key, question=question, response=response,
                            counter=counter, last_time_step=None, now=0.0)
    # Two counters can share a response (8 digits); the earliest one in the window wins.
    first = next(c for c in range(counter, counter + offset + 1) if at(c) == response)
    assert match == Match(counter_next=first + 1, time_step=None)


@settings(max_examples=100, deadline=None)
@given(keys, questions, counters, st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_property_rejects_wrong_eight_digits(
    key: bytes, question: str, counter: int, guess: str
) -> None:
    window = {respond(suite=S_PROP, key=key, question=question, counter=c)
              for c in range(counter, counter + LOOK_AHEAD + 1)}
    assume(guess not in window)
    with pytest.raises(BadCredentials) as info:
        verify_response(suite=S_PROP, key=key, question=question, response=guess,
                        counter=counter, last_time_step=None, now=0.0)
    assert info.value.code == "wrong_response"


@settings(max_examples=100, deadline=None)
@given(keys, st.text(max_size=20), counters, st.text(max_size=12))
def test_property_anything_else_is_a_qrgate_error(
    key: bytes, question: str, counter: int, response: str
) -> None:
    # Arbitrary question and response text: the only acceptable outcomes are a match
    # or one of qrgate's own errors, never a crash from inside oath.
    with contextlib.suppress(QrgateError):
        verify_response(suite=S_PROP, key=key, question=question, response=response,
                        counter=counter, last_time_step=None, now=0.0)
