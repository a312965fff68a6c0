"""COSE_Sign1 (RFC 9052 §4.2) with ES256 only, on cbor2 and ``cryptography``.

We keep our own small implementation instead of depending on pycose: pycose 1.1.0 breaks
with cbor2 6 and computes ES256 in pure Python, while here the curve arithmetic runs in
OpenSSL through ``cryptography``. Supporting exactly one algorithm also removes the whole
class of algorithm-confusion bugs.

Decoding is strict on purpose: the input usually comes from a camera or an untrusted HTTP
body, so anything unexpected (trailing bytes, duplicate map keys, indefinite lengths, a tag
other than 18, critical headers we cannot honour) is reported as
:class:`~qrgate.errors.MalformedCode` rather than being interpreted leniently.

ECDSA signatures are malleable (``(r, s)`` and ``(r, n - s)`` both verify). :func:`sign1`
always writes the low-S form (``s <= n/2``) and qrgate's own formats accept only that
(:func:`require_low_s`), so a signed code cannot be varied into a second valid text without
the key. :func:`verify_sign1` itself stays generic, as RFC 9052 and its test vectors are.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from qrgate.errors import BadSignature, InvalidField, MalformedCode

COSE_SIGN1_TAG: Final = 18
ALG_ES256: Final = -7
HEADER_ALG: Final = 1
HEADER_CRIT: Final = 2
HEADER_KID: Final = 4

_COORD_LEN: Final = 32
# The order n of the P-256 group.
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ES256_SIGNATURE_LEN: Final = 2 * _COORD_LEN
# Deep enough for any header or claims map we produce, shallow enough that hostile
# nesting cannot exhaust the stack of the C decoder.
MAX_CBOR_DEPTH: Final = 16

HeaderMap = dict[int | str, object]


@dataclass(frozen=True, kw_only=True)
class Sign1Message:
    """A parsed, not yet verified, COSE_Sign1 structure."""

    protected_raw: bytes
    protected: HeaderMap
    unprotected: HeaderMap
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> bytes | None:
        value = self.protected.get(HEADER_KID, self.unprotected.get(HEADER_KID))
        return value if isinstance(value, bytes) else None

    @property
    def kid_is_protected(self) -> bool:
        return HEADER_KID in self.protected

    @property
    def alg(self) -> int:
        # parse_sign1 refuses anything but ES256, so a parsed message always has it.
        return ALG_ES256

    @property
    def alg_is_protected(self) -> bool:
        return HEADER_ALG in self.protected


def require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise InvalidField(f"ES256 needs a P-256 key, not {key.curve.name}", code="unsupported_key")


def loads_strict(data: bytes) -> object:
    """Decode exactly one CBOR item, refusing trailing bytes and ambiguous encodings.

    Raises :class:`MalformedCode` for every failure, whatever the decoder complains about.
    """
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(
            stream,
            max_depth=MAX_CBOR_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedCode(f"not valid CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise MalformedCode("trailing bytes after CBOR item")
    return item


def _header_map(value: object, *, where: str) -> HeaderMap:
    # Inside a tag cbor2 decodes maps immutably (frozendict), so test for Mapping, not dict.
    if not isinstance(value, Mapping):
        raise MalformedCode(f"{where} header is not a map")
    for label in value:
        # bool is an int subclass and True == 1 would alias the alg label.
        if type(label) not in (int, str):
            raise MalformedCode(f"{where} header has a label that is neither int nor text")
    return dict(value)


def _decode_protected(raw: bytes) -> HeaderMap:
    if raw == b"":
        return {}
    return _header_map(loads_strict(raw), where="protected")


def parse_sign1(data: bytes) -> Sign1Message:
    """Parse a tagged or untagged COSE_Sign1 message without verifying it."""
    item = loads_strict(data)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise MalformedCode(f"CBOR tag {item.tag} is not COSE_Sign1")
        item = item.value
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise MalformedCode("COSE_Sign1 must be an array of four items")
    protected_raw, unprotected_value, payload, signature = item
    if not isinstance(protected_raw, bytes):
        raise MalformedCode("protected header must be a byte string")
    protected = _decode_protected(protected_raw)
    unprotected = _header_map(unprotected_value, where="unprotected")
    if payload is None:
        raise MalformedCode("detached payloads are not supported")
    if not isinstance(payload, bytes):
        raise MalformedCode("payload must be a byte string")
    if not isinstance(signature, bytes):
        raise MalformedCode("signature must be a byte string")
    if protected.keys() & unprotected.keys():
        raise MalformedCode("a header label appears in both protected and unprotected")
    if HEADER_CRIT in protected or HEADER_CRIT in unprotected:
        # We understand no extension headers, so any critical one must make us refuse.
        raise MalformedCode("critical header parameters are not supported")
    alg = protected.get(HEADER_ALG, unprotected.get(HEADER_ALG))
    if type(alg) is not int or alg != ALG_ES256:
        raise MalformedCode("only ES256 (alg -7) is supported")
    kid = protected.get(HEADER_KID, unprotected.get(HEADER_KID))
    if kid is not None and not isinstance(kid, bytes):
        raise MalformedCode("kid must be a byte string")
    if len(signature) != ES256_SIGNATURE_LEN:
        raise MalformedCode("ES256 signature must be 64 bytes")
    return Sign1Message(
        protected_raw=protected_raw,
        protected=protected,
        unprotected=unprotected,
        payload=payload,
        signature=signature,
    )


def to_be_signed(*, protected_raw: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The Sig_structure bytes that ES256 signs (RFC 9052 §4.4)."""
    # §4.4: "If there are no protected attributes, a zero-length byte string is used". An
    # empty map serialised as h'A0' therefore signs as h''; the WG vector sign-pass-01
    # checks exactly this normalisation.
    # mutation: dropping b"" from the tuple is equivalent: b"" maps to b"" either way.
    body_protected = b"" if protected_raw in (b"", b"\xa0") else protected_raw
    return cbor2.dumps(["Signature1", body_protected, external_aad, payload])


# RFC 6979 deterministic nonces: re-issuing the code of one rotation (a page reloading its
# image) yields the very same text, and no signature depends on the quality of a random
# nonce at signing time.
_DETERMINISTIC_ES256 = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def sign1(
    *,
    payload: bytes,
    private_key: ec.EllipticCurvePrivateKey,
    kid: bytes,
    external_aad: bytes = b"",
    tagged: bool = True,
) -> bytes:
    """Sign ``payload``; alg and kid both go in the protected header so both are signed."""
    require_p256(private_key)
    # mutation: canonical=False is equivalent for this map: int keys written in order, no
    # floats (parse_own_sign1 checks the canonical form of what it reads).
    protected_raw = cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid}, canonical=True)
    tbs = to_be_signed(protected_raw=protected_raw, payload=payload, external_aad=external_aad)
    r, s = decode_dss_signature(private_key.sign(tbs, _DETERMINISTIC_ES256))
    s = min(s, P256_ORDER - s)
    signature = r.to_bytes(_COORD_LEN, "big") + s.to_bytes(_COORD_LEN, "big")
    body = [protected_raw, {}, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, body) if tagged else body)


def parse_own_sign1(raw: bytes) -> tuple[Sign1Message, bytes]:
    """Parse a message of one of qrgate's own formats: only the exact bytes :func:`sign1`
    writes (tagged, alg and kid protected and nothing else, canonical CBOR, low S), so a
    signed message cannot be varied into another valid encoding without the key. Returns
    the message and its kid; the signature is not verified yet."""
    message = parse_sign1(raw)
    kid = message.kid
    if kid is None or message.protected != {HEADER_ALG: ALG_ES256, HEADER_KID: kid}:
        raise MalformedCode("protected header must hold exactly alg ES256 and the kid")
    canonical = cbor2.dumps(
        cbor2.CBORTag(
            COSE_SIGN1_TAG, [message.protected_raw, {}, message.payload, message.signature]
        )
    )
    if raw != canonical or message.protected_raw != cbor2.dumps(message.protected, canonical=True):
        raise MalformedCode("COSE envelope is not in canonical form")
    if int.from_bytes(message.signature[_COORD_LEN:], "big") > P256_ORDER // 2:
        raise MalformedCode("signature is not in low-S form")
    return message, kid


def verify_sign1(
    message: Sign1Message,
    *,
    public_key: ec.EllipticCurvePublicKey,
    external_aad: bytes = b"",
) -> None:
    """Raise :class:`BadSignature` unless ``message`` was signed by ``public_key``."""
    require_p256(public_key)
    if len(message.signature) != ES256_SIGNATURE_LEN:
        raise BadSignature("ES256 signature must be 64 bytes")
    r = int.from_bytes(message.signature[:_COORD_LEN], "big")
    s = int.from_bytes(message.signature[_COORD_LEN:], "big")
    tbs = to_be_signed(
        protected_raw=message.protected_raw, payload=message.payload, external_aad=external_aad
    )
    try:
        public_key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BadSignature() from exc
