"""Scheme C — cross-device confirmation of a sensitive operation (CN103929402A).

The protocol, step by step, with the patent's step numbers:

* **Registration** (claims 3, 12). A phone binds itself to a user: it proves possession of an
  ES256 device key and confirms the one-time enrolment with the user's password or a code
  shown once (``qrgate.accounts.enrolment``).
* **601** The browser asks the relying party for a sensitive operation with *scene* info
  (source, operation, amount, content) and *login* info. **602** The relying party sends the
  verification request to qrgate (``qrgate.confirm.operations``).
* **603** The verification server picks a verifier by request, user preference, scene and
  business id (:func:`qrgate.core.routing.choose_verifier`) and, for the QR verifier, issues
  a random *verification code* (:func:`new_verification_code`).
* **604** The QR server builds the code: scene summary, login, verification code, org id,
  business id, the QR server's own id (``issuer``) and an optional URL, signed
  (:func:`issue_code`). **605** The browser shows it; the code rotates while the page waits
  (each rotation a new verification code, only the newest valid) under a hard expiry.
* **606** The phone scans, verifies the signature offline (:func:`read_code`) and shows the
  verified context. **607** It sends the code and its device identity, signed with its device
  key. **608** The verification server checks the binding and every field
  (:func:`check_scan`, then :func:`check_decision`); any failure rejects with its own code.
* **609** The result goes to the phone (the decision response) and the browser (events).

Beyond the patent: the phone proves a device key, codes are single-use and short-lived, a
code scanned twice kills the challenge, and number matching (the browser shows a number the
phone must type) defeats relayed QRs (QRLJacking).

This module is pure: no I/O, time and randomness are arguments.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.keyring import KeyRing, PublicKeySet
from qrgate.core.policy import VerifierKind
from qrgate.errors import (
    AlreadyDecided,
    Expired,
    Locked,
    MalformedCode,
    NotBound,
    NumberMismatch,
    Rejected,
    Replayed,
    Superseded,
    WrongDevice,
)

VERIFICATION_CODE_BYTES = 8
CHALLENGE_ID_BYTES = 16
NUMBER_MIN, NUMBER_MAX = 10, 99

_T = TypeVar("_T")
VerifyingKeys = KeyRing | PublicKeySet | Mapping[bytes, EllipticCurvePublicKey]


class ConfirmState(StrEnum):
    PENDING = "pending"
    SCANNED = "scanned"
    APPROVED = "approved"
    DENIED = "denied"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL_STATES = frozenset(
    {
        ConfirmState.APPROVED,
        ConfirmState.DENIED,
        ConfirmState.REJECTED,
        ConfirmState.EXPIRED,
    }
)


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class ConfirmClaim(IntEnum):
    """Claim keys of a confirmation code (common keys 1-5 are in ``qrgate.core.codes``).

    The code's unique id (common claim 2) is the verification code of its rotation: one
    field serves both, which keeps a typical code at QR version 10, ECC M.
    """

    CHALLENGE = 10
    ORG = 11
    BUSINESS = 12
    LOGIN = 13
    OPERATION = 14
    AMOUNT = 15
    NUMBER_MATCHING = 16
    URL = 17


@dataclass(frozen=True, kw_only=True)
class ConfirmCode:
    """What a confirmation QR says, after its signature and expiry were checked."""

    challenge_id: bytes
    verification_code: bytes
    org_id: int
    business_id: str
    login: str
    operation: str
    amount: str | None
    number_matching: bool
    url: str | None
    issuer: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True, kw_only=True)
class ChallengeView:
    """The server's record of a challenge, as the checks need it."""

    challenge_id: bytes
    state: ConfirmState
    org_id: int
    user_id: int
    business_id: str
    login: str
    operation: str
    amount: str | None
    url: str | None
    number: int | None
    verification_code: bytes
    device_id: str | None
    expires_at: float
    # The verifier decides which proofs the challenge accepts: a scanned code and a device
    # decision only for QR challenges, a one-time password only for TOTP ones.
    verifier: VerifierKind = VerifierKind.QR


@dataclass(frozen=True, kw_only=True)
class DeviceView:
    device_id: str
    user_id: int
    active: bool


def new_verification_code(random_bytes: bytes) -> bytes:
    """603: the verification code is random (the caller passes ``os.urandom`` output)."""
    if len(random_bytes) != VERIFICATION_CODE_BYTES:
        raise ValueError("verification code needs exactly 8 random bytes")
    return random_bytes


def new_number(random_bytes: bytes) -> int:
    """A two-digit number for number matching, uniform over 10..99 (rejection-free: 4 bytes)."""
    span = NUMBER_MAX - NUMBER_MIN + 1
    return NUMBER_MIN + int.from_bytes(random_bytes[:4], "big") % span


def issue_code(
    *,
    challenge: ChallengeView,
    number_matching: bool,
    issuer: str,
    now: int,
    ttl: int,
    keyring: KeyRing,
) -> str:
    """604: the signed confirmation code for the QR now on screen."""
    _require_qr(challenge)
    claims: dict[int, object] = {
        ConfirmClaim.CHALLENGE: challenge.challenge_id,
        ConfirmClaim.ORG: challenge.org_id,
        ConfirmClaim.BUSINESS: challenge.business_id,
        ConfirmClaim.LOGIN: challenge.login,
        ConfirmClaim.OPERATION: challenge.operation,
    }
    if challenge.amount is not None:
        claims[ConfirmClaim.AMOUNT] = challenge.amount
    if number_matching:
        claims[ConfirmClaim.NUMBER_MATCHING] = True
    if challenge.url is not None:
        claims[ConfirmClaim.URL] = challenge.url
    expires_at = min(now + ttl, int(challenge.expires_at))
    return encode_code(
        code_type=CodeType.CONFIRM,
        code_id=challenge.verification_code,
        issued_at=now,
        expires_at=expires_at,
        issuer=issuer,
        claims=claims,
        keyring=keyring,
    )


def read_code(text: str, *, keys: VerifyingKeys, now: float) -> ConfirmCode:
    """606: parse and verify a scanned code (the phone offline, the server again on 608)."""
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.CONFIRM)
    claims: Mapping[int, object] = verified.claims
    return ConfirmCode(
        challenge_id=_claim(claims, ConfirmClaim.CHALLENGE, bytes, size=CHALLENGE_ID_BYTES),
        verification_code=_verification_code(verified.code_id),
        org_id=_claim(claims, ConfirmClaim.ORG, int),
        business_id=_claim(claims, ConfirmClaim.BUSINESS, str),
        login=_claim(claims, ConfirmClaim.LOGIN, str),
        operation=_claim(claims, ConfirmClaim.OPERATION, str),
        amount=_optional(claims, ConfirmClaim.AMOUNT, str),
        number_matching=_optional(claims, ConfirmClaim.NUMBER_MATCHING, bool) or False,
        url=_optional(claims, ConfirmClaim.URL, str),
        issuer=verified.issuer,
        issued_at=verified.issued_at,
        expires_at=verified.expires_at,
    )


def check_scan(
    *,
    code: ConfirmCode,
    expected: ChallengeView,
    device: DeviceView,
    expected_issuer: str,
    now: float,
) -> None:
    """608, first half: the scanned code belongs to this challenge and the device to its user.

    Checks run from the cheapest, most specific to the state check, so each failure reports
    the reason a security team would want in the audit log.
    """
    _require_qr(expected)
    if code.issuer != expected_issuer:
        raise Rejected("code was issued by another QR server", code="wrong_issuer")
    if not hmac.compare_digest(code.challenge_id, expected.challenge_id):
        raise Rejected("code does not belong to this challenge", code="field_mismatch")
    _check_fields(code, expected)
    _check_device_and_open(expected=expected, device=device)
    if now >= expected.expires_at:
        raise Expired("challenge expired")
    if expected.state == ConfirmState.SCANNED:
        # A second scan of a code means it travelled: kill the challenge (see SPEC, QRLJacking).
        raise Replayed("code was already scanned", code="scanned_twice")
    if not hmac.compare_digest(code.verification_code, expected.verification_code):
        raise Superseded("a newer code replaced this one")


def is_repeated_scan(*, code: ConfirmCode, expected: ChallengeView, device_id: str,
                     expected_issuer: str, now: float) -> bool:
    """True when ``code`` is exactly the code this device's accepted scan carried: the same
    issuer, challenge, fields and verification code, by the device that scanned, while the
    challenge waits for its decision. Its reply was lost; this is not a relayed code."""
    if (expected.state != ConfirmState.SCANNED or now >= expected.expires_at
            or expected.device_id != device_id or code.issuer != expected_issuer
            or not hmac.compare_digest(code.challenge_id, expected.challenge_id)
            or not hmac.compare_digest(code.verification_code, expected.verification_code)):
        return False
    try:
        _check_fields(code, expected)
    except Rejected:
        return False
    return True


def check_decision(
    *,
    expected: ChallengeView,
    device: DeviceView,
    decision: Decision,
    number: int | None,
    now: float,
) -> None:
    """608, second half: the device that scanned decides, once, with the right number."""
    _require_qr(expected)
    _check_device_and_open(expected=expected, device=device)
    if now >= expected.expires_at:
        raise Expired("challenge expired")
    if expected.state != ConfirmState.SCANNED:
        raise Rejected("challenge was not scanned yet", code="not_scanned")
    if expected.device_id is None or not hmac.compare_digest(
        expected.device_id.encode(), device.device_id.encode()
    ):
        raise WrongDevice("challenge was scanned by another device")
    if decision == Decision.APPROVE and expected.number is not None:
        if number is None:
            raise NumberMismatch("this operation needs number matching", code="number_required")
        # Constant-time even for two digits: the comparison must not leak through timing.
        if not hmac.compare_digest(str(number).encode(), str(expected.number).encode()):
            raise NumberMismatch("number does not match")


def _require_qr(challenge: ChallengeView) -> None:
    """A challenge routed to another verifier never shows, accepts or decides by a code:
    otherwise whoever holds its browser token could get a code signed and have it approved
    without the other verifier's proof (or the number matching its policy asks for)."""
    if challenge.verifier != VerifierKind.QR:
        raise Rejected("this challenge is not confirmed by scanning a code",
                       code="wrong_verifier")


def _check_device_and_open(*, expected: ChallengeView, device: DeviceView) -> None:
    """The device is bound to the challenge's user, and the challenge is still open."""
    if not device.active:
        raise NotBound("device is unbound or frozen")
    if device.user_id != expected.user_id:
        raise NotBound("device belongs to another user", code="wrong_user")
    if expected.state in TERMINAL_STATES:
        if expected.state == ConfirmState.EXPIRED:
            raise Expired("challenge expired")
        raise AlreadyDecided("challenge already decided")


def check_attempts(*, attempts: int, max_failures: int) -> None:
    if attempts >= max_failures:
        raise Locked("too many failed attempts")


def _check_fields(code: ConfirmCode, expected: ChallengeView) -> None:
    pairs: tuple[tuple[object, object], ...] = (
        (code.org_id, expected.org_id),
        (code.business_id, expected.business_id),
        (code.login, expected.login),
        (code.operation, expected.operation),
        (code.amount, expected.amount),
        (code.url, expected.url),
        (code.number_matching, expected.number is not None),
    )
    for seen, wanted in pairs:
        if seen != wanted:
            raise Rejected("a field of the code does not match the challenge",
                           code="field_mismatch")


def _verification_code(code_id: bytes) -> bytes:
    if len(code_id) != VERIFICATION_CODE_BYTES:
        raise MalformedCode("confirmation code id has the wrong length")
    return code_id


def _claim(claims: Mapping[int, object], key: int, kind: type[_T], *, size: int = 0) -> _T:
    value = claims.get(key)
    # bool is an int subclass: an int claim must not accept True.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedCode(f"claim {key} missing or of the wrong type")
    if size and len(value) != size:  # type: ignore[arg-type]
        raise MalformedCode(f"claim {key} has the wrong length")
    return value


def _optional(claims: Mapping[int, object], key: int, kind: type[_T]) -> _T | None:
    if key not in claims:
        return None
    return _claim(claims, key, kind)
