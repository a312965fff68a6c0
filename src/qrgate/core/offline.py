"""Offline approval for scheme C: a one-time code the phone shows when it cannot reach the
server, as tiqr's offline mode does (an OCRA response to the challenge, typed by the user).

The flow, step by step, beside the online one (CN103929402A steps 606-609):

1.  **Enrolment.** The server gives each phone a random 32-byte *offline secret* once
    (``qrgate.accounts.enrolment``); the phone keeps it as a non-extractable HMAC key, the
    server as AEAD ciphertext.
2.  **606, offline.** The phone scans the waiting page's QR and verifies its signature with
    the server keys it already holds. It can read the challenge id (claim 10) and whether
    number matching is on (claim 16), but its scan request (607) fails: no network.
3.  **Number matching.** When the code says so, the user types the number the browser shows,
    as they would online. The number goes into the question, so a code is right only with
    the right number: a relayed QR with a guessed number yields a wrong code.
4.  **The code.** The phone computes :func:`offline_code`: the OCRA (RFC 6287) response of
    suite :data:`SUITE` (``OCRA-1:HOTP-SHA256-8:QH64``: HMAC-SHA256, 8 digits, a 64-hex-digit
    question, no counter, no time) under its offline secret, to the question of
    :func:`offline_question`. The user types it into the waiting page (or the relying party
    forwards it).
5.  **608/609.** The server recomputes the code for each candidate secret
    (:func:`verify_offline_code`, constant time, no early exit) and, on a match, approves the
    challenge as an online approval does (``qrgate.confirm.offline``). The code needs no
    counter: the challenge's single conditional transition makes it single use, and the
    challenge's attempt budget bounds guessing.

**The question**, precisely (the phone app's ``js/confirm/offline.js`` reproduces it)::

    digest   = SHA-256( "qrgate offline approval v1"   26 ASCII bytes, the label
                        || 0x00                         separates the label
                        || challenge id                 16 bytes, as in claim 10
                        || number )                     1 byte: 10..99, or 0x00 when the
                                                        challenge has no number matching
    question = lowercase hex of digest                  64 hex digits, the QH64 question

The label separates this use of the secret from any other; the fixed lengths of the parts
make the encoding unambiguous. This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from qrgate.core import ocra
from qrgate.core.confirm import CHALLENGE_ID_BYTES, NUMBER_MAX, NUMBER_MIN
from qrgate.errors import BadCredentials, InvalidField

SUITE_TEXT = "OCRA-1:HOTP-SHA256-8:QH64"
SUITE = ocra.parse_suite(SUITE_TEXT)
CODE_DIGITS = SUITE.digits
SECRET_BYTES = 32
LABEL = b"qrgate offline approval v1"
# The byte that stands for "no number matching": never a number (those are 10..99).
NO_NUMBER = 0


def offline_question(*, challenge_id: bytes, number: int | None) -> str:
    """The QH64 question of a challenge: see the module's docstring for the encoding."""
    if not isinstance(challenge_id, bytes) or len(challenge_id) != CHALLENGE_ID_BYTES:
        raise InvalidField("challenge id must be 16 bytes", code="bad_ocra_input")
    if number is None:
        number_byte = NO_NUMBER
    elif (isinstance(number, int) and not isinstance(number, bool)
          and NUMBER_MIN <= number <= NUMBER_MAX):
        number_byte = number
    else:
        raise InvalidField("number must be 10..99 or None", code="bad_ocra_input")
    digest = hashlib.sha256(LABEL + b"\x00" + challenge_id + bytes([number_byte])).digest()
    return ocra.question_for_digest(digest, SUITE)


def offline_code(*, secret: bytes, challenge_id: bytes, number: int | None) -> str:
    """The phone's side: the 8-digit code for this challenge (and number) under ``secret``."""
    return ocra.respond(suite=SUITE, key=secret,
                        question=offline_question(challenge_id=challenge_id, number=number))


def verify_offline_code(
    *,
    code: str,
    secrets: Sequence[bytes],
    challenge_id: bytes,
    expected_number: int | None,
) -> int:
    """The server's side: the index in ``secrets`` of the one whose code ``code`` is.

    Every candidate is computed and compared with :func:`hmac.compare_digest` before any
    result is looked at, so the time taken says nothing of which secret (if any) matched.
    Raises :class:`~qrgate.errors.BadCredentials` ``wrong_offline_code`` otherwise, also for a
    code that is not 8 digits.
    """
    question = offline_question(challenge_id=challenge_id, number=expected_number)
    well_formed = (isinstance(code, str) and len(code) == CODE_DIGITS
                   and code.isascii() and code.isdigit())
    # mutation: any other stand-in is equivalent: a malformed code is refused by
    # ``well_formed`` below whatever it is compared with.
    given = (code if well_formed else "").encode("ascii")
    hits = [
        hmac.compare_digest(ocra.respond(suite=SUITE, key=secret, question=question)
                            .encode("ascii"), given)
        for secret in secrets
    ]
    if well_formed and any(hits):
        return hits.index(True)
    raise BadCredentials("offline code is wrong", code="wrong_offline_code")
