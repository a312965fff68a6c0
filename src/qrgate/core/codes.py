"""The one signed payload format behind every QR code qrgate shows.

Wire format: ``"QG1:" + Base45(COSE_Sign1(claims))`` where ``claims`` is a canonical CBOR
map with small integer keys. Base45 (RFC 9285) was chosen because its alphabet is exactly
the QR alphanumeric set, which packs 5.5 bits per character instead of 8 in byte mode. We
do not compress: the payloads are a few hundred bytes of mostly random ids and a signature,
which zlib makes larger, not smaller.

Claim keys 1-9 are common to every code and reserved to this module (see :class:`Claim`);
keys 6-9 are unassigned and a code that uses them is refused, so a future common claim
with security meaning can never be silently ignored by an old verifier — it would come
with a new version prefix instead. Scheme modules define their own claims from 10 up.

:func:`decode_code` checks in a fixed order so that the error says what is wrong with the
code and cheap checks run before the signature: size, prefix, Base45, COSE structure,
key id, signature, claims structure, code type, validity window. A code whose ``iat`` lies
more than ``leeway`` seconds in the future is refused with
:class:`~qrgate.errors.Expired` carrying the code ``"not_yet_valid"``: the signature was
good, so the issuer's clock and ours disagree, and the remedy (fetch a fresh code, check
the phone's clock) is the one for an expired code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final, TypeGuard

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.cose import (
    Sign1Message,
    loads_strict,
    parse_own_sign1,
    verify_sign1,
)
from qrgate.core.keyring import KeyRing, PublicKeySet
from qrgate.errors import (
    Expired,
    InvalidField,
    MalformedCode,
    PayloadTooLarge,
    UnknownKey,
    UnsupportedVersion,
    WrongCodeType,
)

VERSION: Final = "1"
PREFIX: Final = f"QG{VERSION}:"
MAX_CODE_CHARS: Final = 2048
FIRST_SCHEME_CLAIM: Final = 10
BASE45_ALPHABET: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
_VERSIONED: Final = re.compile(r"QG([0-9]+)", re.ASCII)


class CodeType(IntEnum):
    CONFIRM = 1
    ENROL = 2
    TXSIGN_CHALLENGE = 3
    TXSIGN_CHAIN = 4
    TOKEN_ENROL = 5
    GRIDCARD = 6


class Claim(IntEnum):
    TYPE = 1
    ID = 2
    IAT = 3
    EXP = 4
    ISSUER = 5


_COMMON_CLAIMS: Final = frozenset(int(claim) for claim in Claim)

KeySource = Mapping[bytes, ec.EllipticCurvePublicKey] | KeyRing | PublicKeySet


@dataclass(frozen=True, kw_only=True)
class VerifiedCode:
    code_type: CodeType
    code_id: bytes
    issued_at: int
    expires_at: int
    issuer: str
    kid: bytes
    claims: Mapping[int, object]


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; a claim of True must not pass as 1. IntEnum members do pass.
    return isinstance(value, int) and not isinstance(value, bool)


def _plain_value(value: object) -> bool:
    """True for the JSON-like values plus bytes that CBOR carries without tags."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return True
    if isinstance(value, list | tuple):
        return all(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return all(
            (_is_int(key) or isinstance(key, str)) and _plain_value(item)
            for key, item in value.items()
        )
    return False


def encode_code(
    *,
    code_type: CodeType,
    code_id: bytes,
    issued_at: int,
    expires_at: int,
    issuer: str,
    claims: Mapping[int, object],
    keyring: KeyRing,
) -> str:
    """Sign ``claims`` (keys >= 10) together with the common claims into a QR-ready code."""
    if not code_id or not issuer:
        raise InvalidField("code_id and issuer must not be empty")
    if not (_is_int(issued_at) and _is_int(expires_at)) or expires_at < issued_at:
        raise InvalidField("issued_at/expires_at must be integers with issued_at <= expires_at")
    body: dict[int, object] = {
        Claim.TYPE: int(code_type),
        Claim.ID: bytes(code_id),
        Claim.IAT: issued_at,
        Claim.EXP: expires_at,
        Claim.ISSUER: issuer,
    }
    for key, value in claims.items():
        if not _is_int(key) or key < FIRST_SCHEME_CLAIM:
            raise InvalidField(f"claim key {key!r} is reserved", code="reserved_claim")
        if not _plain_value(value):
            raise InvalidField(f"claim {key} holds a value CBOR cannot carry plainly")
        body[key] = value
    try:
        payload = cbor2.dumps({int(k): v for k, v in body.items()}, canonical=True)
    except (cbor2.CBOREncodeError, ValueError) as exc:  # e.g. lone surrogates in text
        raise InvalidField(f"claims cannot be encoded: {exc}") from exc
    encoded: bytes = base45.b45encode(keyring.sign(payload))
    code = PREFIX + encoded.decode("ascii")
    # mutation: ">=" is equivalent: "QG1:" plus Base45 is never exactly 2048 characters
    # (Base45 lengths are 0 or 2 mod 3, and 2044 is 1 mod 3).
    if len(code) > MAX_CODE_CHARS:
        # Never issue what decode_code would refuse.
        raise PayloadTooLarge(f"code would be {len(code)} characters, over {MAX_CODE_CHARS}")
    return code


def _check_prefix(text: str) -> str:
    if text.startswith(PREFIX):
        return text[len(PREFIX) :]
    versioned = _VERSIONED.match(text)
    if versioned and versioned.group(1) != VERSION:
        raise UnsupportedVersion(f"code version {versioned.group(1)} is not supported")
    raise MalformedCode("not a qrgate code")


def _unbase45(body: str) -> bytes:
    # Checked up front: the base45 package quietly strips trailing newlines, and QR
    # alphanumeric mode has no lowercase, so anything outside the alphabet is not ours.
    if not set(body) <= BASE45_ALPHABET:
        raise MalformedCode("code contains characters outside the Base45 alphabet")
    try:
        raw: bytes = base45.b45decode(body)
    except ValueError as exc:
        raise MalformedCode("code is not valid Base45") from exc
    return raw


def _parse_envelope(text: str) -> tuple[Sign1Message, bytes]:
    if len(text) > MAX_CODE_CHARS:
        raise PayloadTooLarge(f"code longer than {MAX_CODE_CHARS} characters")
    return parse_own_sign1(_unbase45(_check_prefix(text)))


def peek_kid(text: str) -> bytes:
    """The key id a code claims, without verifying anything; for routing and diagnostics."""
    return _parse_envelope(text)[1]


def _lookup(keys: KeySource, kid: bytes) -> ec.EllipticCurvePublicKey:
    if isinstance(keys, KeyRing | PublicKeySet):
        return keys.public_key(kid)
    key = keys.get(kid)
    if key is None:
        raise UnknownKey(f"no key with kid {kid.hex()}")
    return key


def _parse_claims(payload: bytes) -> dict[int, object]:
    claims = loads_strict(payload)
    if not isinstance(claims, dict) or not _plain_value(claims):
        raise MalformedCode("claims must be a CBOR map of plain values")
    for key in claims:
        if not _is_int(key) or key < 1:
            raise MalformedCode("claim keys must be positive integers")
        if key < FIRST_SCHEME_CLAIM and key not in _COMMON_CLAIMS:
            raise MalformedCode(f"unknown common claim {key}")
    return claims


def _common(claims: Mapping[int, object]) -> tuple[int, bytes, int, int, str]:
    code_type = claims.get(Claim.TYPE)
    code_id = claims.get(Claim.ID)
    iat = claims.get(Claim.IAT)
    exp = claims.get(Claim.EXP)
    issuer = claims.get(Claim.ISSUER)
    if not (
        _is_int(code_type)
        and isinstance(code_id, bytes)
        and code_id
        and _is_int(iat)
        and _is_int(exp)
        and isinstance(issuer, str)
        and issuer
    ):
        raise MalformedCode("common claims are missing or of the wrong type")
    if exp < iat:
        raise MalformedCode("code expires before it was issued")
    return code_type, code_id, iat, exp, issuer


def decode_code(
    text: str,
    *,
    keys: KeySource,
    now: float,
    expected_type: CodeType,
    leeway: float = 5.0,
) -> VerifiedCode:
    """Verify ``text`` and return its claims; ``leeway`` absorbs clock skew both ways."""
    message, kid = _parse_envelope(text)
    verify_sign1(message, public_key=_lookup(keys, kid))
    claims = _parse_claims(message.payload)
    code_type, code_id, iat, exp, issuer = _common(claims)
    if code_type != expected_type:
        raise WrongCodeType(f"expected a {expected_type.name} code")
    if now > exp + leeway:
        raise Expired("code has expired")
    if iat > now + leeway:
        raise Expired("code was issued in the future; check the clock", code="not_yet_valid")
    return VerifiedCode(
        code_type=expected_type,
        code_id=code_id,
        issued_at=iat,
        expires_at=exp,
        issuer=issuer,
        kid=kid,
        claims=MappingProxyType({k: v for k, v in claims.items() if k >= FIRST_SCHEME_CLAIM}),
    )
