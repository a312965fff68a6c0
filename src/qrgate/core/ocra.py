"""OCRA (RFC 6287) challenge/response for scheme E (``txsign``), computed by ``oath``.

Scheme E runs a challenge/response token per user against an authentication server paired
with it. The steps of SPEC section E, and what this module does in each:

S1  The transaction platform makes a **challenge** from the transaction info (user account,
    platform info, the demand, the user's comment on it). The caller hashes a canonical
    encoding of that info with SHA-256; :func:`question_for_digest` turns the digest into the
    64-hex-digit question of a ``QH64`` suite, so the question *is* the transaction.
S2  The token (the phone app's software token, or the simulator) computes the response, its
    dynamic password, with :func:`respond` from its key, the question and whatever else its
    suite names: a counter (``C``), a hashed PIN (``P``), session text (``S``), a time step
    (``T``).
S3  The platform takes the response from the user.
S4  The authentication server recomputes it with :func:`verify_response` over a bounded
    window and compares. On success the caller stores the returned ``counter_next`` /
    ``time_step`` with a compare-and-set, so a response is accepted once. Because the
    question carries the transaction digest, the accepted response signs the transaction
    info (S5 puts info and result into a QR; that belongs to another module).

Windows. A counter token and the server drift apart whenever the token is used without the
server seeing it, and clocks skew, so the server tries a few neighbours, never an open range:

``LOOK_AHEAD = 10``
    Counter suites accept counters ``counter .. counter + LOOK_AHEAD`` (11 candidates);
    matching ``c`` moves the stored counter to ``c + 1``, so older counters die.
``TIME_WINDOW = 1``
    Time suites accept steps ``current - 1 .. current + 1``; a step at or below the last
    accepted one is refused as a replay (:class:`~qrgate.errors.Replayed`). Suites with both
    ``C`` and ``T`` must satisfy both windows.
``RESYNC_WINDOW = 100``
    :func:`resync` searches ``counter .. counter + RESYNC_WINDOW`` for two *consecutive*
    responses to two questions; needing two makes a lucky guess ~10^-d times less likely.

Every candidate in a window is computed and compared with :func:`hmac.compare_digest`, with
no early exit, so the time taken does not say which counter or step matched.

Supported suites are the RFC 6287 §6 grammar in its explicit form,
``OCRA-1:HOTP-{SHA1|SHA256|SHA512}-{4..10}:[C-]Q{A|N|H}{04..64}[-PSHA{1|256|512}][-Snnn][-TG]``
with ``G`` one of ``1..59S``, ``1..59M``, ``1..48H`` (errata 3729 corrected ``[0-48]H``).
Not supported, and refused as ``bad_ocra_suite``: truncation 0 (responses of varying
length), bare ``P``/``S``/``T`` defaults, parts out of order. Input conventions: ``H``
questions are whole bytes (an even number of hex digits); session text is exactly ``nnn``
ASCII characters, i.e. ``nnn`` bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, cast

import oath

from qrgate.errors import BadCredentials, InvalidField, Replayed

LOOK_AHEAD = 10
TIME_WINDOW = 1
RESYNC_WINDOW = 100

# C and T enter the DataInput as 8-byte unsigned big-endian integers.
_MAX_U64 = 2**64 - 1
_HASH_SIZES = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
_UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600}
# Errata 3729: a step of 0 hours is meaningless; seconds and minutes stop at 59.
_UNIT_MAX = {"S": 59, "M": 59, "H": 48}
_DIGEST_QUESTION = ("H", 64)

_SUITE = re.compile(
    r"OCRA-1:HOTP-(?P<hash>SHA1|SHA256|SHA512)-(?P<digits>[0-9]{1,2})"
    r":(?P<counter>C-)?Q(?P<qkind>[ANH])(?P<qlen>[0-9]{2})"
    r"(?:-PSHA(?P<pin>1|256|512))?"
    r"(?:-S(?P<session>[0-9]{3}))?"
    r"(?:-T(?P<tnum>[0-9]{1,2})(?P<tunit>[SMH]))?"
)
# ASCII only: str.isdigit/isalnum also accept other scripts, which oath would then encode
# as multi-byte UTF-8 and pad wrongly.
_QUESTION = {
    "N": re.compile(r"[0-9]+"),
    "A": re.compile(r"[0-9A-Za-z]+"),
    "H": re.compile(r"(?:[0-9A-Fa-f]{2})+"),
}
_RESPONSE = re.compile(r"[0-9]+")


class _DataInput(Protocol):
    C: object
    Q: tuple[str, int] | None
    P: object
    S: int | None
    T: int | None


class _OathSuite(Protocol):
    data_input: _DataInput

    def __call__(self, key: bytes, **inputs: object) -> str: ...


# oath ships no type hints; this is the one call into it, typed once.
_str2ocrasuite = cast(Callable[[str], _OathSuite], oath.str2ocrasuite)


class _PinHash:
    """A hash constructor that also carries ``digest_size``.

    oath 1.4.5 stores the bare ``hashlib`` constructor for ``P`` and, given ``P_digest``,
    reads ``digest_size`` from it, which constructors lack (AttributeError). Swapping this
    in on our own suite object makes the PIN-digest path work without touching oath.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.digest_size = hashlib.new(name).digest_size

    # mutation: the default is never used: oath always passes the PIN's bytes.
    def __call__(self, data: bytes = b"") -> object:
        return hashlib.new(self.name, data)


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A parsed OCRA suite. Build it with :func:`parse_suite`, not by hand."""

    description: str
    digits: int
    hash_name: str
    uses_counter: bool
    question_kind: str
    question_length: int
    pin_hash: str | None
    session_length: int | None
    time_step: int | None  # seconds


@dataclass(frozen=True, kw_only=True)
class Match:
    """What the caller must store after a successful verification."""

    counter_next: int | None
    time_step: int | None


def parse_suite(text: str) -> Suite:
    if not isinstance(text, str):
        raise InvalidField("OCRA suite must be text", code="bad_ocra_suite")
    return _compile(text)[0]


def respond(
    *,
    suite: Suite,
    key: bytes,
    question: str,
    counter: int | None = None,
    pin: str | None = None,
    pin_digest: bytes | None = None,
    session: str | None = None,
    time_step: int | None = None,
    mutual: bool = False,
) -> str:
    """The response to ``question``; ``time_step`` is T already divided by the step.

    ``mutual`` is RFC 6287 §7.2's mode, where ``question`` is two challenges concatenated
    (so up to twice the suite's length).
    """
    prepared = _prepare(
        suite, key=key, question=question, pin=pin, pin_digest=pin_digest,
        session=session, mutual=mutual,
    )
    if suite.uses_counter:
        _check_u64(counter, "counter")
    elif counter is not None:
        raise InvalidField("suite has no counter", code="bad_ocra_input")
    if suite.time_step is not None:
        _check_u64(time_step, "time step")
    elif time_step is not None:
        raise InvalidField("suite has no time step", code="bad_ocra_input")
    return prepared.compute(counter, time_step)


def question_for_digest(digest: bytes, suite: Suite) -> str:
    """The hex question that carries a SHA-256 transaction digest in a ``QH64`` suite."""
    if (suite.question_kind, suite.question_length) != _DIGEST_QUESTION:
        raise InvalidField("a digest question needs a QH64 suite", code="bad_ocra_suite")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise InvalidField("transaction digest must be 32 bytes", code="bad_ocra_input")
    return digest.hex()


def verify_response(
    *,
    suite: Suite,
    key: bytes,
    question: str,
    response: str,
    counter: int | None,
    last_time_step: int | None,
    now: float,
    pin: str | None = None,
    pin_digest: bytes | None = None,
    session: str | None = None,
    mutual: bool = False,
) -> Match:
    """Accept ``response`` within the windows, or raise.

    ``counter`` is the stored next counter; ``last_time_step`` the last accepted step,
    ``None`` before the first; ``now`` is Unix time. Each is ignored when the suite has no
    ``C`` (resp. ``T``): they are per-token state a caller stores whatever the suite, not
    inputs to the computation.
    """
    prepared = _prepare(
        suite, key=key, question=question, pin=pin, pin_digest=pin_digest,
        session=session, mutual=mutual,
    )
    if suite.time_step is None:
        last_time_step = None
    counters = _counter_window(suite, counter if suite.uses_counter else None, LOOK_AHEAD)
    steps = _time_window(suite, now, last_time_step)
    if not _well_formed(response, suite.digits):
        raise BadCredentials("Wrong response", code="wrong_response")
    given = response.encode("ascii")

    candidates = [(c, t) for c in counters for t in steps]
    # All candidates are compared before any is looked at: no early exit on a hit.
    hits = [
        hmac.compare_digest(prepared.compute(c, t).encode("ascii"), given)
        for c, t in candidates
    ]
    # mutation: strict= only asserts equal lengths, which `hits` has by construction.
    matched = [cand for cand, hit in zip(candidates, hits, strict=True) if hit]
    fresh = [
        (c, t) for c, t in matched
        if t is None or last_time_step is None or t > last_time_step
    ]
    if fresh:
        c, t = fresh[0]
        return Match(counter_next=None if c is None else c + 1, time_step=t)
    if matched:
        raise Replayed("Response was already used", code="response_replayed")
    raise BadCredentials("Wrong response", code="wrong_response")


def resync(
    *,
    suite: Suite,
    key: bytes,
    questions: tuple[str, str],
    responses: tuple[str, str],
    counter: int,
    pin: str | None = None,
    pin_digest: bytes | None = None,
    session: str | None = None,
) -> int:
    """The new ``counter_next`` after two consecutive responses within RESYNC_WINDOW."""
    if not suite.uses_counter or suite.time_step is not None:
        # With T in the suite the two responses would also depend on when they were made.
        raise InvalidField("resync needs a counter suite without T", code="bad_ocra_suite")
    if not (isinstance(questions, tuple) and len(questions) == 2
            and isinstance(responses, tuple) and len(responses) == 2):
        raise InvalidField("resync takes two questions and two responses",
                           code="bad_ocra_input")
    first, second = (
        _prepare(suite, key=key, question=q, pin=pin, pin_digest=pin_digest,
                 session=session, mutual=False)  # mutation: None is falsy like False
        for q in questions
    )
    # The window must leave room for c + 1.
    counters = [c for c in _counter_window(suite, counter, RESYNC_WINDOW)
                if c is not None and c < _MAX_U64]
    if not all(_well_formed(r, suite.digits) for r in responses):
        raise BadCredentials("Resynchronisation failed", code="resync_failed")
    want_first, want_second = (r.encode("ascii") for r in responses)

    hits = [
        hmac.compare_digest(first.compute(c, None).encode("ascii"), want_first)
        & hmac.compare_digest(second.compute(c + 1, None).encode("ascii"), want_second)
        for c in counters
    ]
    # mutation: strict= only asserts equal lengths, which `hits` has by construction.
    found = [c for c, hit in zip(counters, hits, strict=True) if hit]
    if not found:
        raise BadCredentials("Resynchronisation failed", code="resync_failed")
    return found[0] + 2


# --- internals --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    """A suite, key and the inputs that stay fixed while a window is searched."""

    engine: _OathSuite
    key: bytes
    inputs: dict[str, object]

    def compute(self, counter: int | None, time_step: int | None) -> str:
        inputs = dict(self.inputs)
        if counter is not None:
            inputs["C"] = counter
        if time_step is not None:
            inputs["T_precomputed"] = time_step
        try:
            return self.engine(self.key, **inputs)
        except (ValueError, TypeError, OverflowError, struct.error) as exc:
            # mutation: a guard no input reaches: _prepare and _check_u64 refuse first whatever
            # oath would, so no test sees this refusal or its code.
            raise InvalidField("OCRA inputs do not fit the suite",
                               code="bad_ocra_input") from exc


@lru_cache(maxsize=256)
def _compile(text: str) -> tuple[Suite, _OathSuite]:
    m = _SUITE.fullmatch(text)
    if m is None:
        raise InvalidField("malformed or unsupported OCRA suite", code="bad_ocra_suite")
    digits = int(m["digits"])
    question_length = int(m["qlen"])
    session_length = None if m["session"] is None else int(m["session"])
    time_step = None
    if m["tnum"] is not None:
        amount, unit = int(m["tnum"]), m["tunit"]
        if not 1 <= amount <= _UNIT_MAX[unit]:
            raise InvalidField("OCRA time step out of range", code="bad_ocra_suite")
        time_step = amount * _UNIT_SECONDS[unit]
    if (not 4 <= digits <= 10 or m["digits"].startswith("0")
            or not 4 <= question_length <= 64
            or (session_length is not None and not 1 <= session_length <= 512)):
        raise InvalidField("malformed or unsupported OCRA suite", code="bad_ocra_suite")
    suite = Suite(
        description=text,
        digits=digits,
        hash_name=m["hash"],
        uses_counter=m["counter"] is not None,
        question_kind=m["qkind"],
        question_length=question_length,
        pin_hash=None if m["pin"] is None else "SHA" + m["pin"],
        session_length=session_length,
        time_step=time_step,
    )
    try:
        engine = _str2ocrasuite(text)
    except ValueError as exc:
        raise InvalidField("malformed or unsupported OCRA suite",
                           code="bad_ocra_suite") from exc
    # Guard against oath reading the description differently from the grammar above.
    di = engine.data_input
    theirs = (bool(di.C), di.Q, di.S, di.T)
    ours = (suite.uses_counter, (suite.question_kind, suite.question_length),
            suite.session_length, suite.time_step)
    if theirs != ours or (di.P is None) != (suite.pin_hash is None):
        raise InvalidField("OCRA suite not understood", code="bad_ocra_suite")
    if suite.pin_hash is not None:
        di.P = _PinHash(suite.pin_hash.lower())
    return suite, engine


def _engine(suite: Suite) -> _OathSuite:
    if not isinstance(suite, Suite) or not isinstance(suite.description, str):
        raise InvalidField("not an OCRA suite", code="bad_ocra_suite")
    parsed, engine = _compile(suite.description)
    # A hand-built Suite whose fields disagree with its description would make the window
    # and format checks lie about what is computed.
    if parsed != suite:
        raise InvalidField("OCRA suite fields disagree with its description",
                           code="bad_ocra_suite")
    return engine


def _prepare(
    suite: Suite,
    *,
    key: bytes,
    question: str,
    pin: str | None,
    pin_digest: bytes | None,
    session: str | None,
    mutual: bool,
) -> _Prepared:
    engine = _engine(suite)
    if not isinstance(key, bytes) or not key:
        raise InvalidField("OCRA key must be non-empty bytes", code="bad_ocra_input")
    inputs: dict[str, object] = {}

    # mutation: a looser limit is not observable: oath enforces the same lengths (Q: the
    # suite's, Qsc: twice) and its refusal comes out of compute as bad_ocra_input too.
    limit = suite.question_length * (2 if mutual else 1)
    if (not isinstance(question, str) or len(question) > limit
            or _QUESTION[suite.question_kind].fullmatch(question) is None):
        raise InvalidField("question does not fit the suite", code="bad_ocra_input")
    # mutation: passing a plain question as Qsc is equivalent: oath computes both alike
    # and only doubles its own length limit, which `limit` above already enforces.
    inputs["Qsc" if mutual else "Q"] = question

    if suite.pin_hash is None:
        if pin is not None or pin_digest is not None:
            raise InvalidField("suite takes no PIN", code="bad_ocra_input")
    elif pin is not None and pin_digest is None and isinstance(pin, str):
        inputs["P"] = pin
    elif (pin is None and isinstance(pin_digest, bytes)
          and len(pin_digest) == _HASH_SIZES[suite.pin_hash]):
        inputs["P_digest"] = pin_digest
    else:
        raise InvalidField("suite needs exactly one of PIN or PIN digest",
                           code="bad_ocra_input")

    if suite.session_length is None:
        if session is not None:
            raise InvalidField("suite takes no session", code="bad_ocra_input")
    elif (not isinstance(session, str) or not session.isascii()
          or len(session) != suite.session_length):
        raise InvalidField("session does not fit the suite", code="bad_ocra_input")
    else:
        inputs["S"] = session
    return _Prepared(engine=engine, key=key, inputs=inputs)


def _check_u64(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_U64:
        raise InvalidField(f"suite needs a {what} in 0..2^64-1", code="bad_ocra_input")


def _counter_window(suite: Suite, counter: int | None, width: int) -> list[int | None]:
    if not suite.uses_counter:
        if counter is not None:
            # mutation: unreachable guard: verify_response and resync pass a counter only for a
            # counter suite.
            raise InvalidField("suite has no counter", code="bad_ocra_input")
        return [None]
    _check_u64(counter, "counter")
    start = cast(int, counter)
    return list(range(start, min(start + width, _MAX_U64) + 1))


def _time_window(suite: Suite, now: float, last_time_step: int | None) -> list[int | None]:
    if suite.time_step is None:
        if last_time_step is not None:
            # mutation: unreachable guard: verify_response drops last_time_step for suites
            # without T.
            raise InvalidField("suite has no time step", code="bad_ocra_input")
        return [None]
    if (isinstance(now, bool) or not isinstance(now, int | float)
            or not math.isfinite(now) or now < 0):
        raise InvalidField("now must be a finite Unix time", code="bad_ocra_input")
    if last_time_step is not None and (
            isinstance(last_time_step, bool) or not isinstance(last_time_step, int)):
        raise InvalidField("last time step must be an integer", code="bad_ocra_input")
    # mutation: `/` for `//` is equivalent: now >= 0 here, and int() truncates to the
    # floor for non-negative values.
    current = int(now // suite.time_step)
    return [
        step for step in range(current - TIME_WINDOW, current + TIME_WINDOW + 1)
        if 0 <= step <= _MAX_U64
    ]


def _well_formed(response: object, digits: int) -> bool:
    return (isinstance(response, str) and len(response) == digits
            and _RESPONSE.fullmatch(response) is not None)
