"""Golden vectors for the phone app's JavaScript protocol core, made by the Python reference.

Every code here is issued by qrgate's own functions (``encode_code`` and the scheme
issuers) with fixed P-256 keys, times and ids; ES256 in ``qrgate.core.cose`` is RFC 6979
deterministic, so the files come out byte for byte the same on every run. Every expected
value is what the Python readers return for the code, and every refusal carries the code
Python raises for it: the generator runs the Python check and stops when it disagrees with
the refusal a vector is named for. Crafted codes (a claim of the wrong type, a
non-canonical envelope) are signed with the real key, so the defect a vector is named after
is the only reason for its refusal.

``stricter_in_js`` lists codes that Python accepts and the JavaScript core refuses on
purpose (``src/qrgate/web/app/js/shared/cbor.js``): floats, integers beyond 2^53,
non-minimal integers and bignums inside signed claims, and a boolean token counter. qrgate
issues none of them.

Regenerate (``tests/web/test_js_units.py`` fails while the files are stale)::

    .venv/bin/python tests/support/js_vectors.py
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from enum import IntEnum
from pathlib import Path
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from qrgate.core import ocra
from qrgate.core.app_lock import (
    PIN_ITERATIONS,
    LockChange,
    change_message,
    decision_message,
    pin_proof,
)
from qrgate.core.codes import PREFIX, CodeType, VerifiedCode, decode_code, encode_code, peek_kid
from qrgate.core.confirm import ChallengeView, ConfirmClaim, ConfirmState, issue_code, read_code
from qrgate.core.cose import P256_ORDER, parse_sign1, to_be_signed, verify_sign1
from qrgate.core.device_auth import (
    public_key_bytes,
    request_target,
    signing_input,
    verify_request,
)
from qrgate.core.enrolment import EnrolClaim, issue_enrol_code, read_enrol_code
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey, kid_for
from qrgate.core.offline import SUITE_TEXT as OFFLINE_SUITE
from qrgate.core.offline import offline_code, offline_question
from qrgate.core.txsign import (
    ChallengeClaim,
    Link,
    LinkKey,
    Transaction,
    TransactionText,
    check_link_text,
    issue_chain_code,
    issue_challenge_code,
    read_chain_code,
    read_challenge_code,
    signed_link,
    text_digest,
    transaction_digest,
)
from qrgate.errors import QrgateError
from qrgate.txsign.tokens import TokenClaim, activation_question, read_enrolment_code

Json = dict[str, Any]

OUT_DIR = Path(__file__).resolve().parents[1] / "vectors" / "codes"
GENERATOR = "tests/support/js_vectors.py"
NOW = 1_700_000_000
TTL = 120
ISSUER = "qrgate.example"
SERVER_URL = "https://qrgate.example"


def _private_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A fixed P-256 key: its scalar is the SHA-256 of ``label``, reduced into [1, n-1]."""
    digest = hashlib.sha256(f"qrgate js vectors: {label}".encode()).digest()
    scalar = int.from_bytes(digest, "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


ACTIVE = SigningKey.from_private_key(_private_key("active signing key"), created_at=NOW)
# Rotated out but not retired: still in the JWKS, so its codes still verify.
OLDER = SigningKey.from_private_key(_private_key("older signing key"), created_at=NOW - 86_400)
# Never published: its codes name a kid the phone does not know.
FOREIGN = SigningKey.from_private_key(_private_key("foreign signing key"), created_at=NOW)
DEVICE = _private_key("device key")

RING = KeyRing(active=ACTIVE, verify_only={OLDER.kid: OLDER.public_key})
OLDER_RING = KeyRing(active=OLDER)
FOREIGN_RING = KeyRing(active=FOREIGN)
JWKS = RING.verifier.to_jwks()
KEYS = PublicKeySet.from_jwks(JWKS)


def _id(label: str, size: int = 16) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:size]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b45(raw: bytes) -> str:
    encoded: bytes = base45.b45encode(raw)
    return PREFIX + encoded.decode()


def _unb45(text: str) -> bytes:
    raw: bytes = base45.b45decode(text[len(PREFIX):])
    return raw


def _tagged(value: object) -> object:
    """JSON for any decoded CBOR value, bytes and maps marked so they read back unambiguously."""
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, Mapping):
        return {"map": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    return value


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


# --- the Python readers, as JSON in the JavaScript API's shapes --------------------------


def _common_json(verified: VerifiedCode) -> Json:
    return {
        "type": int(verified.code_type), "id": verified.code_id.hex(),
        "issuedAt": verified.issued_at, "expiresAt": verified.expires_at,
        "issuer": verified.issuer, "kid": verified.kid.hex(),
        "claims": _tagged(verified.claims),
    }


def _read_confirm(text: str, now: float) -> Json:
    code = read_code(text, keys=KEYS, now=now)
    return {
        "challengeId": code.challenge_id.hex(), "orgId": code.org_id,
        "businessId": code.business_id, "login": code.login, "operation": code.operation,
        "amount": code.amount, "numberMatching": code.number_matching, "url": code.url,
        "issuer": code.issuer, "issuedAt": code.issued_at, "expiresAt": code.expires_at,
    }


def _read_enrol(text: str, now: float) -> Json:
    code = read_enrol_code(text, keys=KEYS, now=now)
    return {
        "enrolmentId": code.enrolment_id, "secret": code.secret, "orgId": code.org_id,
        "login": code.login, "serverUrl": code.server_url, "issuer": code.issuer,
        "expiresAt": code.expires_at,
    }


def _read_token_enrol(text: str, now: float) -> Json:
    token = read_enrolment_code(text, keys=KEYS, now=now)
    verified = decode_code(text, keys=KEYS, now=now, expected_type=CodeType.TOKEN_ENROL)
    return {
        "tokenId": token.token_id, "secret": token.secret.hex(), "suite": token.suite,
        "counter": token.counter, "serverUrl": token.server_url, "login": token.login,
        "issuer": verified.issuer, "expiresAt": verified.expires_at,
    }


def _text_json(text: TransactionText | None) -> Json | None:
    return None if text is None else dataclasses.asdict(text)


def _read_challenge(text: str, now: float) -> Json:
    challenge = read_challenge_code(text, keys=KEYS, now=now)
    verified = decode_code(text, keys=KEYS, now=now, expected_type=CodeType.TXSIGN_CHALLENGE)
    transaction = challenge.transaction
    return {
        "transaction": {
            "transactionId": transaction.transaction_id.hex(),
            "text": _text_json(transaction.text),
            "createdAt": transaction.created_at,
            "parentDigest": _hex_or_none(transaction.parent_digest),
        },
        "suite": challenge.suite, "expiresAt": challenge.expires_at, "issuer": verified.issuer,
    }


def _link_json(link: Link) -> Json:
    return {
        "transactionId": link.transaction_id.hex(), "createdAt": link.created_at,
        "textDigest": link.text_digest.hex(), "parentDigest": _hex_or_none(link.parent_digest),
        "response": link.response, "result": link.result, "verifiedAt": link.verified_at,
        "text": _text_json(link.text), "textUrl": link.text_url, "digest": link.digest.hex(),
    }


def _read_chain(text: str, now: float) -> Json:
    chain = read_chain_code(text, keys=KEYS, now=now)
    return {"links": [_link_json(link) for link in chain.links], "issuer": chain.issuer,
            "issuedAt": chain.issued_at}


READERS: dict[str, tuple[CodeType, Callable[[str, float], Json] | None]] = {
    "code": (CodeType.CONFIRM, None),
    "confirm": (CodeType.CONFIRM, _read_confirm),
    "enrol": (CodeType.ENROL, _read_enrol),
    "token_enrol": (CodeType.TOKEN_ENROL, _read_token_enrol),
    "challenge": (CodeType.TXSIGN_CHALLENGE, _read_challenge),
    "chain": (CodeType.TXSIGN_CHAIN, _read_chain),
}


def _valid(name: str, reader: str, text: str, *, now: float = NOW,
           expected_type: CodeType | None = None) -> Json:
    code_type, read = READERS[reader]
    if expected_type is not None:
        code_type = expected_type
    vector: Json = {"name": name, "reader": reader, "expectedType": int(code_type),
                    "text": text, "now": now,
                    "code": _common_json(decode_code(text, keys=KEYS, now=now,
                                                     expected_type=code_type))}
    if read is not None:
        vector["expected"] = read(text, now)
    return vector


def _python_error(reader: str, text: str, now: float, code_type: CodeType) -> str | None:
    _, read = READERS[reader]
    try:
        if read is None:
            decode_code(text, keys=KEYS, now=now, expected_type=code_type)
        else:
            read(text, now)
    except QrgateError as exc:
        return exc.code
    return None


def _envelope_error(text: str) -> str | None:
    try:
        peek_kid(text)
    except QrgateError as exc:
        return exc.code
    return None


def _refused(name: str, reader: str, text: str, *, error: str, now: float = NOW,
             expected_type: CodeType | None = None) -> Json:
    code_type = READERS[reader][0] if expected_type is None else expected_type
    got = _python_error(reader, text, now, code_type)
    if got != error:
        raise AssertionError(f"vector {name}: Python says {got}, not {error}")
    return {"name": name, "reader": reader, "expectedType": int(code_type), "text": text,
            "now": now, "error": error, "envelopeError": _envelope_error(text)}


def _stricter(name: str, reader: str, text: str, *, now: float = NOW) -> Json:
    code_type = READERS[reader][0]
    got = _python_error(reader, text, now, code_type)
    if got is not None:
        raise AssertionError(f"vector {name}: Python refuses it ({got})")
    return {"name": name, "reader": reader, "expectedType": int(code_type), "text": text,
            "now": now, "error": "malformed_code"}


def _document(about: str, **sections: object) -> Json:
    return {"source": f"Made by {GENERATOR} with qrgate's Python reference "
                      "implementation; do not edit by hand.",
            "about": about, **sections}


# --- crafting codes ------------------------------------------------------------------------


def _code(claims: Mapping[int, object], *, code_type: CodeType = CodeType.CONFIRM,
          code_id: bytes = b"\x01" * 8, issued_at: int = NOW, expires_at: int = NOW + TTL,
          keyring: KeyRing = RING) -> str:
    return encode_code(code_type=code_type, code_id=code_id, issued_at=issued_at,
                       expires_at=expires_at, issuer=ISSUER, claims=claims, keyring=keyring)


def _common_claims(code_type: CodeType = CodeType.CONFIRM) -> dict[object, object]:
    return {1: int(code_type), 2: b"\x01" * 8, 3: NOW, 4: NOW + TTL, 5: ISSUER}


def _signed_payload(payload: bytes, keyring: KeyRing = RING) -> str:
    """Any payload bytes in a correctly signed, canonical envelope."""
    return _b45(keyring.sign(payload))


def _signed_claims(claims: Mapping[object, object]) -> str:
    return _signed_payload(cbor2.dumps(dict(claims), canonical=True))


def _es256(protected_raw: bytes, payload: bytes,
           private_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """A correct, low-S signature over any protected header and payload."""
    key = private_key or ACTIVE.private_key
    tbs = to_be_signed(protected_raw=protected_raw, payload=payload)
    der = key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + min(s, P256_ORDER - s).to_bytes(32, "big")


def _envelope(protected: object, payload: bytes, *, unprotected: object = None,
              signature: bytes | None = None, tag: int | None = 18,
              protected_raw: bytes | None = None) -> str:
    raw_header = protected_raw if protected_raw is not None else cbor2.dumps(protected)
    body = [raw_header, {} if unprotected is None else unprotected, payload,
            signature if signature is not None else _es256(raw_header, payload)]
    return _b45(cbor2.dumps(body if tag is None else cbor2.CBORTag(tag, body)))


def _parts(text: str) -> tuple[bytes, bytes, bytes]:
    message = parse_sign1(_unb45(text))
    return message.protected_raw, message.payload, message.signature


def _reencode(protected_raw: bytes, payload: bytes, signature: bytes) -> str:
    return _b45(cbor2.dumps(cbor2.CBORTag(18, [protected_raw, {}, payload, signature])))


# A change that removes the claim.
_ABSENT = object()


def _changed(claims: dict[int, object], keys: type[IntEnum],
             changes: Mapping[str, object]) -> dict[int, object]:
    """``claims`` with each change applied, named as in ``keys`` (lowercase)."""
    changed = dict(claims)
    for name, value in changes.items():
        if value is _ABSENT:
            changed.pop(keys[name.upper()], None)
        else:
            changed[keys[name.upper()]] = value
    return changed


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


# --- codes.json: the envelope, the common claims, the JWKS ------------------------------------


def _codes_document() -> Json:
    base = _code({10: b"challenge", 11: "alice"})
    protected, payload, signature = _parts(base)
    kid = ACTIVE.kid
    header = {1: -7, 4: kid}
    header_raw = cbor2.dumps(header, canonical=True)
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    high_s = r + (P256_ORDER - s).to_bytes(32, "big")
    # The twin signature verifies: only the low-S rule refuses it.
    verify_sign1(dataclasses.replace(parse_sign1(_unb45(base)), signature=high_s),
                 public_key=ACTIVE.public_key)
    flipped = bytearray(payload)
    flipped[-1] ^= 0x01
    body45 = base[len(PREFIX):]
    claims_bytes = cbor2.dumps({**_common_claims(), 10: b"x"}, canonical=True)

    valid = [
        _valid("plain", "code", base),
        _valid("expires_within_leeway", "code", base, now=NOW + TTL + 5),
        _valid("issued_within_leeway", "code", base, now=NOW - 5),
        _valid("older_published_key", "code", _code({10: b"x"}, keyring=OLDER_RING)),
        _valid("plain_values_of_every_kind", "code", _code({
            10: b"", 11: "", 12: -(2**53 - 1), 13: 2**53 - 1, 14: True, 15: False, 16: None,
            17: [1, "two", b"\x03", [None]], 18: {"text key": 1, -5: {"n": [b"\xff"]}},
            99: "z\u00fcrich \u8f6c\u8d26 \U0001f600"})),
        _valid("nested_as_deep_as_allowed", "code", _code({10: _nested(15)})),
        _valid("another_type_expected", "code",
               _code({10: b"x"}, code_type=CodeType.ENROL), expected_type=CodeType.ENROL),
    ]
    refused = [
        # size, prefix, Base45
        _refused("too_long", "code", PREFIX + "0" * (2048 - len(PREFIX) + 1),
                 error="payload_too_large"),
        _refused("too_long_and_no_code", "code", "x" * 2049, error="payload_too_large"),
        _refused("astral_character_counts_once", "code", PREFIX + "\U0001f600" + "0" * 2043,
                 error="malformed_code"),
        _refused("version_2", "code", "QG2:" + body45, error="unsupported_version"),
        _refused("version_01", "code", "QG01:" + body45, error="unsupported_version"),
        _refused("version_10", "code", "QG10:" + body45, error="unsupported_version"),
        _refused("no_colon", "code", "QG1" + body45, error="malformed_code"),
        _refused("other_prefix", "code", "HC1:" + body45, error="malformed_code"),
        _refused("lowercase_prefix", "code", base.lower(), error="malformed_code"),
        _refused("lowercase_body", "code", PREFIX + body45.lower(), error="malformed_code"),
        _refused("not_base45", "code", PREFIX + body45[:-3] + "A#B", error="malformed_code"),
        _refused("trailing_newline", "code", base + "\n", error="malformed_code"),
        _refused("dangling_base45_character", "code",
                 base + ("0" if len(body45) % 3 == 0 else "00"), error="malformed_code"),
        _refused("base45_triplet_overflow", "code", PREFIX + ":::", error="malformed_code"),
        _refused("base45_pair_overflow", "code", PREFIX + "::", error="malformed_code"),
        _refused("empty_body", "code", PREFIX, error="malformed_code"),
        # the COSE envelope
        _refused("untagged", "code", _envelope(header, payload, tag=None),
                 error="malformed_code"),
        _refused("other_tag", "code", _envelope(header, payload, tag=98),
                 error="malformed_code"),
        _refused("trailing_bytes", "code", _b45(_unb45(base) + b"\x00"),
                 error="malformed_code"),
        _refused("non_minimal_length", "code", _b45(_unb45(base).replace(
            b"\x58" + bytes([len(payload)]) + payload,
            b"\x59\x00" + bytes([len(payload)]) + payload)), error="malformed_code"),
        _refused("indefinite_array", "code", _b45(
            b"\xd2\x9f" + b"".join(cbor2.dumps(item) for item in
                                   [protected, {}, payload, signature]) + b"\xff"),
                 error="malformed_code"),
        _refused("protected_header_reordered", "code",
                 _envelope(header, payload, protected_raw=b"\xa2\x04\x48" + kid + b"\x01\x26"),
                 error="malformed_code"),
        _refused("protected_header_duplicate_label", "code", _envelope(
            header, payload, protected_raw=b"\xa3\x01\x26\x01\x26\x04\x48" + kid),
            error="malformed_code"),
        _refused("kid_unprotected", "code",
                 _envelope({1: -7}, payload, unprotected={4: kid}), error="malformed_code"),
        _refused("unprotected_not_empty", "code",
                 _envelope(header, payload, unprotected={5: b"iv"}), error="malformed_code"),
        _refused("extra_protected_header", "code",
                 _envelope({1: -7, 3: 0, 4: kid}, payload), error="malformed_code"),
        _refused("critical_header", "code",
                 _envelope({1: -7, 2: [4], 4: kid}, payload), error="malformed_code"),
        _refused("alg_es384", "code", _envelope({1: -35, 4: kid}, payload),
                 error="malformed_code"),
        _refused("kid_as_text", "code", _envelope({1: -7, 4: kid.hex()}, payload),
                 error="malformed_code"),
        _refused("payload_as_text", "code", _b45(cbor2.dumps(cbor2.CBORTag(
            18, [header_raw, {}, "claims", signature]))), error="malformed_code"),
        _refused("detached_payload", "code", _b45(cbor2.dumps(cbor2.CBORTag(
            18, [header_raw, {}, None, signature]))), error="malformed_code"),
        _refused("short_signature", "code", _reencode(protected, payload, signature[:63]),
                 error="malformed_code"),
        _refused("high_s_twin", "code", _reencode(protected, payload, high_s),
                 error="malformed_code"),
        # key and signature
        _refused("unknown_kid", "code", _code({10: b"x"}, keyring=FOREIGN_RING),
                 error="unknown_key"),
        _refused("unknown_kid_expired", "code", _code({10: b"x"}, keyring=FOREIGN_RING),
                 now=NOW + 10 * TTL, error="unknown_key"),
        _refused("payload_changed", "code", _reencode(protected, bytes(flipped), signature),
                 error="bad_signature"),
        _refused("signed_by_another_key", "code",
                 _envelope(header, payload, signature=_es256(header_raw, payload,
                                                             FOREIGN.private_key)),
                 error="bad_signature"),
        _refused("zero_r", "code",
                 _reencode(protected, payload, bytes(32) + (1).to_bytes(32, "big")),
                 error="bad_signature"),
        _refused("bad_signature_and_expired", "code",
                 _reencode(protected, bytes(flipped), signature), now=NOW + 10 * TTL,
                 error="bad_signature"),
        # the claims
        _refused("claims_not_a_map", "code", _signed_payload(cbor2.dumps([1, 2])),
                 error="malformed_code"),
        _refused("claims_trailing_bytes", "code", _signed_payload(claims_bytes + b"\x00"),
                 error="malformed_code"),
        _refused("claims_indefinite_map", "code",
                 _signed_payload(b"\xbf" + claims_bytes[1:] + b"\xff"), error="malformed_code"),
        _refused("claims_duplicate_key", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x0a\x41x"),
            error="malformed_code"),
        _refused("common_claim_6", "code", _signed_claims({**_common_claims(), 6: 0}),
                 error="malformed_code"),
        _refused("claim_key_0", "code", _signed_claims({**_common_claims(), 0: 0}),
                 error="malformed_code"),
        _refused("claim_key_negative", "code", _signed_claims({**_common_claims(), -1: 0}),
                 error="malformed_code"),
        _refused("claim_key_text", "code", _signed_claims({**_common_claims(), "x": 0}),
                 error="malformed_code"),
        _refused("type_true", "code", _signed_claims({**_common_claims(), 1: True}),
                 error="malformed_code"),
        _refused("type_float", "code", _signed_claims({**_common_claims(), 1: 1.0}),
                 error="malformed_code"),
        _refused("issued_at_float", "code", _signed_claims({**_common_claims(), 3: NOW + 0.0}),
                 error="malformed_code"),
        _refused("id_empty", "code", _signed_claims({**_common_claims(), 2: b""}),
                 error="malformed_code"),
        _refused("id_text", "code", _signed_claims({**_common_claims(), 2: "01"}),
                 error="malformed_code"),
        _refused("issuer_empty", "code", _signed_claims({**_common_claims(), 5: ""}),
                 error="malformed_code"),
        _refused("expiry_missing", "code",
                 _signed_claims({k: v for k, v in _common_claims().items() if k != 4}),
                 error="malformed_code"),
        _refused("expires_before_issued", "code",
                 _signed_claims({**_common_claims(), 4: NOW - 1}), error="malformed_code"),
        _refused("nested_too_deep", "code", _signed_claims({**_common_claims(),
                                                            10: _nested(16)}),
                 error="malformed_code"),
        _refused("invalid_utf8", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x0b\x62\xc3\x28"),
            error="malformed_code"),
        _refused("utf8_surrogate", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x0b\x63\xed\xa0\x80"),
            error="malformed_code"),
        _refused("undefined_value", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x0b\xf7"),
            error="malformed_code"),
        _refused("simple_value", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x0b\xf0"),
            error="malformed_code"),
        _refused("datetime_tag", "code",
                 _signed_claims({**_common_claims(), 11: cbor2.CBORTag(1, NOW)}),
                 error="malformed_code"),
        _refused("cose_tag_in_claims", "code",
                 _signed_claims({**_common_claims(), 11: cbor2.CBORTag(18, [])}),
                 error="malformed_code"),
        # the code type and the validity window, after the signature
        _refused("wrong_type", "code", base, expected_type=CodeType.ENROL,
                 error="wrong_code_type"),
        _refused("wrong_type_and_expired", "code", base, expected_type=CodeType.ENROL,
                 now=NOW + 10 * TTL, error="wrong_code_type"),
        _refused("expired", "code", base, now=NOW + TTL + 5.5, error="expired"),
        _refused("not_yet_valid", "code", base, now=NOW - 5.5, error="not_yet_valid"),
    ]
    stricter = [
        _stricter("float_in_unread_claim", "code", _code({10: b"x", 99: 1.5})),
        _stricter("integer_beyond_2_53", "code", _code({10: b"x", 99: 2**53})),
        _stricter("non_minimal_integer", "code", _signed_payload(
            bytes([claims_bytes[0] + 1]) + claims_bytes[1:] + b"\x18\x63\x18\x01")),
        _stricter("bignum_tag", "code",
                  _signed_claims({**_common_claims(), 99: cbor2.CBORTag(2, b"\x01")})),
    ]
    return _document(
        "The QG1 wire format (qrgate.core.codes.decode_code): 'valid' codes verify to 'code' "
        "(bytes hex; claims tagged: {bytes: hex}, {map: [[key, value]...]}); 'refused' "
        "throw CodeError 'error' from verifyCode(text, {keys, now, expectedType}) and "
        "'envelopeError' (null when the envelope parses) from peekCodeType.",
        valid=valid, refused=refused, stricter_in_js=stricter)


def _keys_document() -> Json:
    # Valid P-256 keys, but published for another use or algorithm: skipped, not refused.
    extra = _private_key("unpublished key").public_key()
    unused = PublicKeySet({FOREIGN.kid: FOREIGN.public_key,
                           kid_for(extra): extra}).to_jwks()["keys"]
    other_kinds = {"keys": [
        *JWKS["keys"],
        {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {**unused[0], "use": "enc"},
        {**unused[0], "alg": "ES384"},
        {**unused[1], "kty": "OKP"},
        {**unused[1], "crv": "P-384"},
    ]}
    jwk = JWKS["keys"][0]
    minimal = {"keys": [{k: jwk[k] for k in ("kty", "crv", "kid", "x", "y")}]}
    accepted = [("with_other_kinds", other_kinds), ("use_and_alg_absent", minimal)]
    bad: list[tuple[str, object]] = [
        ("keys_missing", {}),
        ("keys_not_a_list", {"keys": {}}),
        ("entry_not_an_object", {"keys": [[]]}),
        ("kid_mismatch", {"keys": [{**jwk, "kid": JWKS["keys"][1]["kid"]}]}),
        ("kid_missing", {"keys": [{k: v for k, v in jwk.items() if k != "kid"}]}),
        ("x_short", {"keys": [{**jwk, "x": jwk["x"][:-2]}]}),
        ("x_padded", {"keys": [{**jwk, "x": jwk["x"] + "="}]}),
        ("x_standard_alphabet", {"keys": [{**jwk, "x": jwk["x"][:-1] + "+"}]}),
        ("x_not_text", {"keys": [{**jwk, "x": 5}]}),
        ("y_dangling_character", {"keys": [{**jwk, "y": jwk["y"] + "A"}]}),
        ("point_not_on_curve", {"keys": [{**jwk, "y": jwk["x"]}]}),
    ]
    cases = []
    for name, jwks in bad:
        try:
            PublicKeySet.from_jwks(jwks)  # type: ignore[arg-type]
        except QrgateError as exc:
            cases.append({"name": name, "jwks": jwks, "error": exc.code})
        else:
            raise AssertionError(f"JWKS case {name} is accepted by Python")
    return _document(
        "The server's JWKS (PublicKeySet.to_jwks) that every code vector verifies with, and "
        "importJwks cases: 'accepted' keeps 'size' keys (others skipped), each 'refused' "
        "JWKS throws CodeError 'error'.",
        jwks=JWKS, kids=[kid.hex() for kid in KEYS],
        accepted=[{"name": name, "jwks": jwks, "size": len(PublicKeySet.from_jwks(jwks))}
                  for name, jwks in accepted],
        refused=cases)


# --- confirm.json -----------------------------------------------------------------------


def _challenge(*, amount: str | None = None, url: str | None = None, number: int | None = None,
               login: str = "alice", business_id: str = "web-banking",
               operation: str = "transfer") -> ChallengeView:
    return ChallengeView(
        challenge_id=_id("challenge"), state=ConfirmState.PENDING, org_id=7, user_id=3,
        business_id=business_id, login=login, operation=operation, amount=amount, url=url,
        number=number, verification_code=_id("verification", 8), device_id=None,
        expires_at=NOW + 600,
    )


def _confirm_claims(**changes: object) -> dict[int, object]:
    claims: dict[int, object] = {
        ConfirmClaim.CHALLENGE: _id("challenge"), ConfirmClaim.ORG: 7,
        ConfirmClaim.BUSINESS: "web-banking", ConfirmClaim.LOGIN: "alice",
        ConfirmClaim.OPERATION: "transfer",
    }
    return _changed(claims, ConfirmClaim, changes)



def _enrol_claims(**changes: object) -> dict[int, object]:
    claims: dict[int, object] = {
        EnrolClaim.ENROLMENT: _id("enrolment").hex(), EnrolClaim.SECRET: "s3cr3t-enrolment",
        EnrolClaim.ORG: 7, EnrolClaim.LOGIN: "alice", EnrolClaim.SERVER: SERVER_URL,
    }
    return _changed(claims, EnrolClaim, changes)


def _confirm_document() -> Json:
    def confirm(challenge: ChallengeView, *, number_matching: bool = False) -> str:
        return issue_code(challenge=challenge, number_matching=number_matching, issuer=ISSUER,
                          now=NOW, ttl=TTL, keyring=RING)

    minimal = confirm(_challenge())
    enrol = issue_enrol_code(
        enrolment_id=_id("enrolment").hex(), secret="s3cr3t-enrolment", org_id=7,
        login="alice", server_url=SERVER_URL, issuer=ISSUER, now=NOW,
        expires_at=NOW + 900, keyring=RING)

    def crafted(**changes: object) -> str:
        return _code(_confirm_claims(**changes), code_id=_id("verification", 8))

    def crafted_enrol(**changes: object) -> str:
        return _code(_enrol_claims(**changes), code_type=CodeType.ENROL,
                     code_id=_id("enrolment"))

    valid = [
        _valid("minimal", "confirm", minimal),
        _valid("amount_number_matching_url", "confirm", confirm(
            _challenge(amount="2500.00", url="https://bank.example/transfers?id=1", number=42),
            number_matching=True)),
        _valid("amount_only", "confirm", confirm(_challenge(amount="0.01"))),
        _valid("unicode_fields", "confirm", confirm(_challenge(
            login="zo\u00eb", business_id="\u7f51\u94f6", operation="\u8f6c\u8d26 \U0001f4b8"))),
        _valid("number_matching_false", "confirm", crafted(number_matching=False)),
        _valid("enrolment", "enrol", enrol),
    ]
    refused = [
        _refused("expired", "confirm", minimal, now=NOW + TTL + 6, error="expired"),
        _refused("enrol_code_as_confirm", "confirm", enrol, error="wrong_code_type"),
        _refused("challenge_id_15_bytes", "confirm", crafted(challenge=_id("c", 15)),
                 error="malformed_code"),
        _refused("challenge_id_text", "confirm", crafted(challenge=_id("c").hex()),
                 error="malformed_code"),
        _refused("verification_code_9_bytes", "confirm",
                 _code(_confirm_claims(), code_id=_id("verification", 9)),
                 error="malformed_code"),
        _refused("org_true", "confirm", crafted(org=True), error="malformed_code"),
        _refused("org_text", "confirm", crafted(org="7"), error="malformed_code"),
        _refused("login_missing", "confirm", crafted(login=_ABSENT), error="malformed_code"),
        _refused("operation_bytes", "confirm", crafted(operation=b"transfer"),
                 error="malformed_code"),
        _refused("amount_null", "confirm", crafted(amount=None), error="malformed_code"),
        _refused("amount_number", "confirm", crafted(amount=2500), error="malformed_code"),
        _refused("number_matching_1", "confirm", crafted(number_matching=1),
                 error="malformed_code"),
        _refused("url_null", "confirm", crafted(url=None), error="malformed_code"),
        _refused("confirm_code_as_enrol", "enrol", minimal, error="wrong_code_type"),
        _refused("enrol_expired", "enrol", enrol, now=NOW + 906, error="expired"),
        _refused("enrol_org_text", "enrol", crafted_enrol(org="7"), error="malformed_code"),
        _refused("enrol_org_false", "enrol", crafted_enrol(org=False), error="malformed_code"),
        _refused("enrol_secret_bytes", "enrol", crafted_enrol(secret=b"s3cr3t"),
                 error="malformed_code"),
        _refused("enrol_server_missing", "enrol", crafted_enrol(server=_ABSENT),
                 error="malformed_code"),
    ]
    return _document(
        "Scheme C codes (qrgate.core.confirm.read_code, qrgate.core.enrolment."
        "read_enrol_code): 'valid' read to 'expected' with readConfirmCode/readEnrolCode "
        "(reader 'confirm'/'enrol') and verify to 'code'; 'refused' throw CodeError 'error'.",
        valid=valid, refused=refused)


# --- txsign.json -----------------------------------------------------------------------------

TOKEN_SECRET = hashlib.sha256(b"qrgate js vectors: token secret").digest()
TOKEN_SUITES = ("OCRA-1:HOTP-SHA1-8:C-QH64", "OCRA-1:HOTP-SHA256-8:C-QH64",
                "OCRA-1:HOTP-SHA512-10:QH64-T30S")
TEXT_1 = TransactionText(account="alice", platform="web-banking",
                         demand="buy 10 ACME at 12.50", comment="for the pension fund")
TEXT_2 = TransactionText(account="bob", platform="web-banking",
                         demand="co-sign the ACME order \u2713", comment="")
CHAIN_SUITE = TOKEN_SUITES[1]


def _token_claims(token_id: str, suite: str, /, **changes: object) -> dict[int, object]:
    """The claims create_token signs (which needs a database to run)."""
    claims: dict[int, object] = {
        TokenClaim.TOKEN: token_id, TokenClaim.SECRET: TOKEN_SECRET, TokenClaim.SUITE: suite,
        TokenClaim.COUNTER: 0, TokenClaim.SERVER: SERVER_URL, TokenClaim.LOGIN: "alice",
    }
    return _changed(claims, TokenClaim, changes)


def _token_code(token_id: str, suite: str, /, **changes: object) -> str:
    return _code(_token_claims(token_id, suite, **changes), code_type=CodeType.TOKEN_ENROL,
                 code_id=bytes.fromhex(token_id), expires_at=NOW + 900)


def _answer(question: str, suite: str, *, counter: int = 0) -> str:
    parsed = ocra.parse_suite(suite)
    return ocra.respond(
        suite=parsed, key=TOKEN_SECRET, question=question,
        counter=counter if parsed.uses_counter else None,
        time_step=NOW // parsed.time_step if parsed.time_step else None)


def _signed(transaction: Transaction, *, counter: int, text_url: str | None = None) -> Link:
    question = ocra.question_for_digest(transaction_digest(transaction),
                                        ocra.parse_suite(CHAIN_SUITE))
    return signed_link(transaction=transaction,
                       response=_answer(question, CHAIN_SUITE, counter=counter),
                       verified_at=transaction.created_at + 30, text_url=text_url)


def _chain(links: list[Link], *, with_text: bool = True) -> str:
    offers: list[str] = []

    def fits(code: str) -> bool:
        # The first code offered carries the texts; refusing it yields digests and URLs.
        offers.append(code)
        return with_text or len(offers) > 1

    return issue_chain_code(links=links, issuer=ISSUER, now=NOW, keyring=RING, fits=fits)


def _raw_link(link: Link, /, **changes: object) -> dict[int, object]:
    claims: dict[int, object] = {
        LinkKey.TRANSACTION: link.transaction_id, LinkKey.CREATED: link.created_at,
        LinkKey.TEXT_DIGEST: link.text_digest, LinkKey.RESPONSE: link.response,
        LinkKey.RESULT: link.result, LinkKey.VERIFIED: link.verified_at,
    }
    if link.parent_digest is not None:
        claims[LinkKey.PARENT] = link.parent_digest
    if link.text is not None:
        claims.update({LinkKey.ACCOUNT: link.text.account, LinkKey.PLATFORM: link.text.platform,
                       LinkKey.DEMAND: link.text.demand, LinkKey.COMMENT: link.text.comment})
    if link.text_url is not None:
        claims[LinkKey.TEXT_URL] = link.text_url
    return _changed(claims, LinkKey, changes)


def _chain_code(raw_links: object) -> str:
    return _code({10: raw_links}, code_type=CodeType.TXSIGN_CHAIN, code_id=_id("tx2"),
                 expires_at=NOW + 10 * 365 * 86_400)


def _challenge_claims(transaction: Transaction, /, **changes: object) -> dict[int, object]:
    claims: dict[int, object] = {
        ChallengeClaim.TRANSACTION: transaction.transaction_id,
        ChallengeClaim.ACCOUNT: transaction.text.account,
        ChallengeClaim.PLATFORM: transaction.text.platform,
        ChallengeClaim.DEMAND: transaction.text.demand,
        ChallengeClaim.COMMENT: transaction.text.comment,
        ChallengeClaim.CREATED: transaction.created_at, ChallengeClaim.SUITE: CHAIN_SUITE,
    }
    return _changed(claims, ChallengeClaim, changes)


def _challenge_code(claims: Mapping[int, object]) -> str:
    return _code(claims, code_type=CodeType.TXSIGN_CHALLENGE, code_id=_id("tx1"),
                 expires_at=NOW + 300)


def _txsign_document() -> Json:
    tx1 = Transaction(transaction_id=_id("tx1"), text=TEXT_1, created_at=NOW - 100)
    link1 = _signed(tx1, counter=0, text_url=f"{SERVER_URL}/v1/txsign/transactions/1/text")
    tx2 = Transaction(transaction_id=_id("tx2"), text=TEXT_2, created_at=NOW - 50,
                      parent_digest=link1.digest)
    link2 = _signed(tx2, counter=3, text_url=f"{SERVER_URL}/v1/txsign/transactions/2/text")
    url_only = _chain([link1, link2], with_text=False)
    token_ids = [_id(f"token {suite}").hex() for suite in TOKEN_SUITES]

    def challenge(transaction: Transaction) -> str:
        return issue_challenge_code(transaction=transaction, suite=CHAIN_SUITE, issuer=ISSUER,
                                    now=NOW, expires_at=NOW + 300, keyring=RING)

    mixed = _chain_code([_raw_link(dataclasses.replace(link1, text_url=None)),
                         _raw_link(dataclasses.replace(link2, text=None))])
    valid = [
        *[_valid(f"token_{suite}", "token_enrol", _token_code(token_id, suite))
          for token_id, suite in zip(token_ids, TOKEN_SUITES, strict=True)],
        _valid("challenge", "challenge", challenge(tx1)),
        _valid("challenge_with_parent", "challenge", challenge(tx2)),
        _valid("challenge_parent_null", "challenge",
               _challenge_code(_challenge_claims(tx1, parent=None))),
        _valid("chain_1_link_texts", "chain", _chain([link1])),
        _valid("chain_2_links_texts", "chain", _chain([link1, link2])),
        _valid("chain_1_link_urls", "chain", _chain([link1], with_text=False)),
        _valid("chain_2_links_urls", "chain", url_only),
        _valid("chain_text_then_url", "chain", mixed),
        _valid("chain_text_and_url", "chain", _chain_code([_raw_link(link1)])),
        _valid("chain_nulls_read_as_absent", "chain",
               _chain_code([_raw_link(link1, text_url=None, parent=None)])),
    ]
    good1 = _raw_link(link1, text_url=_ABSENT)
    rejected1 = dataclasses.replace(link1, result="rejected", text_url=None)
    refused = [
        _refused("token_secret_text", "token_enrol",
                 _token_code(token_ids[0], TOKEN_SUITES[0], secret=TOKEN_SECRET.hex()),
                 error="malformed_code"),
        _refused("token_counter_text", "token_enrol",
                 _token_code(token_ids[0], TOKEN_SUITES[0], counter="0"),
                 error="malformed_code"),
        _refused("token_suite_missing", "token_enrol",
                 _token_code(token_ids[0], TOKEN_SUITES[0], suite=_ABSENT),
                 error="malformed_code"),
        _refused("token_login_null", "token_enrol",
                 _token_code(token_ids[0], TOKEN_SUITES[0], login=None), error="malformed_code"),
        _refused("challenge_as_token", "token_enrol", challenge(tx1), error="wrong_code_type"),
        _refused("challenge_expired", "challenge", challenge(tx1), now=NOW + 306,
                 error="expired"),
        _refused("challenge_transaction_id_15_bytes", "challenge",
                 _challenge_code(_challenge_claims(tx1, transaction=_id("tx1", 15))),
                 error="malformed_code"),
        _refused("challenge_parent_31_bytes", "challenge",
                 _challenge_code(_challenge_claims(tx1, parent=_id("p", 31))),
                 error="malformed_code"),
        _refused("challenge_created_text", "challenge",
                 _challenge_code(_challenge_claims(tx1, created=str(NOW))),
                 error="malformed_code"),
        _refused("challenge_created_true", "challenge",
                 _challenge_code(_challenge_claims(tx1, created=True)), error="malformed_code"),
        _refused("challenge_comment_missing", "challenge",
                 _challenge_code(_challenge_claims(tx1, comment=_ABSENT)),
                 error="malformed_code"),
        _refused("challenge_suite_missing", "challenge",
                 _challenge_code(_challenge_claims(tx1, suite=_ABSENT)), error="malformed_code"),
        _refused("chain_as_challenge", "challenge", url_only, error="wrong_code_type"),
        _refused("chain_no_links", "chain", _chain_code([]), error="malformed_code"),
        _refused("chain_links_not_a_list", "chain", _chain_code({1: good1}),
                 error="malformed_code"),
        _refused("chain_link_not_a_map", "chain", _chain_code([[1, 2]]), error="malformed_code"),
        _refused("chain_5_links", "chain", _chain_code([good1] * 5), error="bad_chain"),
        _refused("chain_first_link_has_parent", "chain",
                 _chain_code([_raw_link(link2, text_url=_ABSENT)]), error="bad_chain"),
        _refused("chain_broken", "chain", _chain_code([good1, _raw_link(
            link2, text_url=_ABSENT, parent=_id("other parent", 32))]), error="broken_chain"),
        _refused("chain_second_parent_null", "chain", _chain_code([good1, _raw_link(
            link2, text_url=_ABSENT, parent=None)]), error="broken_chain"),
        _refused("chain_text_mismatch", "chain", _chain_code([_raw_link(
            link1, text_url=_ABSENT, comment="for my holidays")]), error="text_mismatch"),
        _refused("chain_not_verified", "chain", _chain_code([_raw_link(
            link1, text_url=_ABSENT, result="rejected")]), error="bad_chain"),
        _refused("chain_neither_text_nor_url", "chain", _chain_code([_raw_link(
            dataclasses.replace(link1, text=None), text_url=_ABSENT)]), error="malformed_code"),
        _refused("chain_account_without_platform", "chain", _chain_code([_raw_link(
            link1, platform=_ABSENT)]), error="malformed_code"),
        _refused("chain_text_digest_31_bytes", "chain", _chain_code([_raw_link(
            link1, text_digest=_id("d", 31))]), error="malformed_code"),
        _refused("chain_url_bytes", "chain", _chain_code([_raw_link(
            link1, text_url=b"https://")]), error="malformed_code"),
        _refused("chain_verified_at_text", "chain", _chain_code([_raw_link(
            link1, verified=str(NOW))]), error="malformed_code"),
        # check_chain's order: links and parents, then each link's text and result
        _refused("chain_malformed_fifth_link_first", "chain",
                 _chain_code([good1] * 4 + [[1]]), error="malformed_code"),
        _refused("chain_broken_before_text_mismatch", "chain", _chain_code([
            _raw_link(link1, text_url=_ABSENT, comment="changed"),
            _raw_link(link2, text_url=_ABSENT, parent=_id("other parent", 32))]),
            error="broken_chain"),
        _refused("chain_text_mismatch_before_result", "chain", _chain_code([_raw_link(
            link1, text_url=_ABSENT, comment="changed", result="rejected")]),
            error="text_mismatch"),
        _refused("chain_first_result_before_second_text", "chain", _chain_code([
            _raw_link(rejected1),
            _raw_link(link2, text_url=_ABSENT, parent=rejected1.digest, comment="changed")]),
            error="bad_chain"),
        # bool is an int subclass: a counter of True must not pass as 1.
        _refused("token_counter_true", "token_enrol",
                 _token_code(token_ids[0], TOKEN_SUITES[0], counter=True),
                 error="malformed_code"),
    ]
    stricter: list[Json] = []

    link_texts = []
    chain = read_chain_code(url_only, keys=KEYS, now=NOW)
    for index, (link, text) in enumerate(zip(chain.links, (TEXT_1, TEXT_2), strict=True)):
        for given in (text, dataclasses.replace(text, comment=text.comment + " ")):
            try:
                check_link_text(link, given)
                error = None
            except QrgateError as exc:
                error = exc.code
            link_texts.append({"chain": "chain_2_links_urls", "link": index,
                               "text": dataclasses.asdict(given), "error": error})

    digests = []
    for created_at, parent, text in [
        (0, None, TransactionText(account="", platform="", demand="", comment="")),
        (23, _id("p", 32), TEXT_1), (24, None, TEXT_2), (255, None, TEXT_1),
        (256, None, TEXT_1), (65_535, None, TEXT_1), (65_536, None, TEXT_1),
        (2**32 - 1, None, TEXT_1), (2**32, None, TEXT_1), (2**53 - 1, _id("p", 32), TEXT_2),
        (NOW, None, TransactionText(account="a" * 23, platform="b" * 24, demand="c" * 255,
                                    comment="d" * 256)),
        (NOW, None, TransactionText(account="\u00e9" * 12, platform="\u8f6c" * 85,
                                    demand="\U0001f600" * 64, comment="x" * 300)),
    ]:
        transaction = Transaction(transaction_id=_id(f"digest {created_at}"), text=text,
                                  created_at=created_at, parent_digest=parent)
        digests.append({
            "transaction": {"transactionId": transaction.transaction_id.hex(),
                            "text": dataclasses.asdict(text), "createdAt": created_at,
                            "parentDigest": _hex_or_none(parent)},
            "textDigest": text_digest(text).hex(),
            "transactionDigest": transaction_digest(transaction).hex(),
        })

    activations = []
    for token_id, suite in zip(token_ids, TOKEN_SUITES, strict=True):
        question = activation_question(token_id)
        activations.append({"tokenId": token_id, "suite": suite, "question": question,
                            "counter": 0, "timeStep": _time_step(suite),
                            "response": _answer(question, suite)})
    return _document(
        "Scheme E codes (qrgate.txsign.tokens.read_enrolment_code, qrgate.core.txsign."
        "read_challenge_code/read_chain_code): 'valid' read to 'expected' (bytes hex) and "
        "verify to 'code'; 'refused' throw CodeError 'error'. 'linkTexts': checkLinkText of "
        "a fetched text for a link of a valid chain. 'digests': textDigest and "
        "transactionDigest. 'activations': activationQuestion and the token's answer with "
        "'tokenSecret' (counter 0, or the time step of the code's issue time).",
        tokenSecret=TOKEN_SECRET.hex(), valid=valid, refused=refused, stricter_in_js=stricter,
        linkTexts=link_texts, digests=digests, activations=activations)


def _time_step(suite: str) -> int | None:
    step = ocra.parse_suite(suite).time_step
    return None if step is None else NOW // step


# --- device.json ---------------------------------------------------------------------------

DEVICE_REQUESTS: list[Json] = [
    {"method": "POST", "path": "/v1/confirm/scan", "query": "", "timestamp": NOW,
     "deviceId": "dev-0123", "body": b'{"code":"QG1:ABC"}'},
    {"method": "post", "path": "/v1/devices", "query": "", "timestamp": NOW + 1,
     "deviceId": "new", "body": b'{"public_key":"BAA","name":"Pixel \xe2\x80\x93 7"}'},
    {"method": "GET", "path": "/v1/devices/me/history", "query": "q=bob&limit=20",
     "timestamp": NOW + 2, "deviceId": "dev-0123", "body": b""},
    {"method": "DELETE", "path": "/v1/devices/me", "query": "", "timestamp": 0,
     "deviceId": "d\u00e9vice", "body": b""},
]


def _device_signature(message: bytes) -> str:
    """What sign_request sends, with an RFC 6979 nonce so the vector is reproducible."""
    r, s = decode_dss_signature(
        DEVICE.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    return _b64u(r.to_bytes(32, "big") + min(s, P256_ORDER - s).to_bytes(32, "big"))


def _device_document() -> Json:
    numbers = DEVICE.private_numbers()
    public = numbers.public_numbers
    requests = []
    for request in DEVICE_REQUESTS:
        target = request_target(request["path"], request["query"])
        message = signing_input(method=request["method"], path=target,
                                timestamp=request["timestamp"], device_id=request["deviceId"],
                                body=request["body"])
        signature = _device_signature(message)
        verify_request(public_key=DEVICE.public_key(), signature=signature,
                       method=request["method"], path=target, timestamp=request["timestamp"],
                       device_id=request["deviceId"], body=request["body"],
                       now=request["timestamp"], max_skew=0)
        requests.append({**request, "body": request["body"].hex(), "target": target,
                         "signingInput": message.hex(), "signature": signature})
    return _document(
        "Device request signatures (qrgate.core.device_auth): requestTarget(path, query), "
        "signingInput (hex) and a signature made in Python that verifies with the public "
        "key; 'privateJwk' lets the tests sign with the same key.",
        privateJwk={"kty": "EC", "crv": "P-256", "x": _b64u(public.x.to_bytes(32, "big")),
                    "y": _b64u(public.y.to_bytes(32, "big")),
                    "d": _b64u(numbers.private_value.to_bytes(32, "big"))},
        publicKeyB64u=_b64u(public_key_bytes(DEVICE.public_key())),
        requests=requests)


# --- ocra.json -----------------------------------------------------------------------------

SUITE_TEXTS = [
    "OCRA-1:HOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA256-8:C-QH64", "OCRA-1:HOTP-SHA1-4:QH04",
    "OCRA-1:HOTP-SHA512-10:C-QH64-PSHA512-S512-T48H", "OCRA-1:HOTP-SHA256-8:QN08-S064",
    "OCRA-1:HOTP-SHA256-6:C-QA64-PSHA256-T59S", "OCRA-1:HOTP-SHA1-8:QN08-S001-T59M",
    "OCRA-1:HOTP-SHA256-8:QH64-T05S",
    "", "OCRA-1", "OCRA-1:HOTP-SHA1-6:", "OCRA-1:HOTP-SHA1-6:C", "OCRA-2:HOTP-SHA1-6:QN08",
    "OCRA-1:TOTP-SHA1-6:QN08", "OCRA-1:HOTP-MD5-6:QN08", "OCRA-1:HOTP-sha1-6:QN08",
    "OCRA-1:HOTP-SHA1-0:QN08", "OCRA-1:HOTP-SHA1-3:QN08", "OCRA-1:HOTP-SHA1-11:QN08",
    "OCRA-1:HOTP-SHA1-06:QN08", "OCRA-1:HOTP-SHA1-\uff16:QN08", "OCRA-1:HOTP-SHA1-6:QN8",
    "OCRA-1:HOTP-SHA1-6:QN03", "OCRA-1:HOTP-SHA1-6:QN65", "OCRA-1:HOTP-SHA1-6:QX08",
    "OCRA-1:HOTP-SHA1-6:QN08-P", "OCRA-1:HOTP-SHA1-6:QN08-PSHA384", "OCRA-1:HOTP-SHA1-6:QN08-S",
    "OCRA-1:HOTP-SHA1-6:QN08-S64", "OCRA-1:HOTP-SHA1-6:QN08-S000", "OCRA-1:HOTP-SHA1-6:QN08-S513",
    "OCRA-1:HOTP-SHA1-6:QN08-T", "OCRA-1:HOTP-SHA1-6:QN08-T0S", "OCRA-1:HOTP-SHA1-6:QN08-T0H",
    "OCRA-1:HOTP-SHA1-6:QN08-T60S", "OCRA-1:HOTP-SHA1-6:QN08-T49H",
    "OCRA-1:HOTP-SHA1-6:QN08-T1H30M", "OCRA-1:HOTP-SHA1-6:QN08-C",
    "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1", "OCRA-1:HOTP-SHA1-6:QN08\n",
    " OCRA-1:HOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA1-6::QN08",
]

KEY20 = b"12345678901234567890"


def _suite_json(suite: ocra.Suite) -> Json:
    return {"description": suite.description, "digits": suite.digits,
            "hashName": suite.hash_name, "usesCounter": suite.uses_counter,
            "questionKind": suite.question_kind, "questionLength": suite.question_length,
            "pinHash": suite.pin_hash, "sessionLength": suite.session_length,
            "timeStep": suite.time_step}


def _respond_case(name: str, suite: str, key: bytes, question: str, **inputs: Any) -> Json:
    """One call of ocra.respond, with its answer or its refusal. Counters and time steps are
    decimal strings in the file: some are beyond 2^53."""
    try:
        response: str | None = ocra.respond(suite=ocra.parse_suite(suite), key=key,
                                            question=question, **inputs)
        error = None
    except QrgateError as exc:
        response, error = None, exc.code
    case: Json = {"name": name, "suite": suite, "key": key.hex(), "question": question}
    for field, value in inputs.items():
        if field in ("counter", "time_step"):
            case["timeStep" if field == "time_step" else field] = str(value)
        elif field == "pin_digest":
            case["pinDigest"] = value.hex()
        else:
            case[field] = value
    return {**case, "response": response, "error": error}


def _ocra_document() -> Json:
    suites = []
    for text in SUITE_TEXTS:
        try:
            suites.append({"text": text, "parsed": _suite_json(ocra.parse_suite(text)),
                           "error": None})
        except QrgateError as exc:
            suites.append({"text": text, "parsed": None, "error": exc.code})

    digest_answers = []
    for index, (suite, counter) in enumerate([
        ("OCRA-1:HOTP-SHA1-8:C-QH64", 0), ("OCRA-1:HOTP-SHA256-8:C-QH64", 1),
        ("OCRA-1:HOTP-SHA512-10:QH64-T30S", None), ("OCRA-1:HOTP-SHA256-6:C-QH64-T1M", 2**64 - 1),
        ("OCRA-1:HOTP-SHA512-8:QH64", None),
    ]):
        parsed = ocra.parse_suite(suite)
        digest = hashlib.sha256(f"transaction {index}".encode()).digest()
        question = ocra.question_for_digest(digest, parsed)
        inputs: dict[str, Any] = {}
        if counter is not None:
            inputs["counter"] = counter
        if parsed.time_step is not None:
            inputs["time_step"] = NOW // parsed.time_step
        digest_answers.append({"digest": digest.hex(), "question": question,
                               **_respond_case(f"digest_{suite}", suite, TOKEN_SECRET,
                                               question, **inputs)})

    question_refusals = []
    for suite, digest in [("OCRA-1:HOTP-SHA1-6:QN08", bytes(32)),
                          ("OCRA-1:HOTP-SHA256-8:C-QH32", bytes(32)),
                          ("OCRA-1:HOTP-SHA256-8:C-QH64", bytes(31)),
                          ("OCRA-1:HOTP-SHA256-8:C-QH64", bytes(33))]:
        try:
            ocra.question_for_digest(digest, ocra.parse_suite(suite))
        except QrgateError as exc:
            question_refusals.append({"suite": suite, "digest": digest.hex(),
                                      "error": exc.code})

    qn08, plain = "OCRA-1:HOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1"
    responds = [
        _respond_case("short_numeric_question", qn08, KEY20, "0"),
        _respond_case("odd_numeric_digits", qn08, KEY20, "1234567"),
        _respond_case("hex_question_mixed_case", "OCRA-1:HOTP-SHA1-6:QH08", KEY20, "aBcD12eF"),
        _respond_case("session", "OCRA-1:HOTP-SHA256-8:QN08-S064", KEY20, "12345678",
                      session="s" * 64),
        _respond_case("pin_digest", plain, KEY20, "12345678", counter=5,
                      pin_digest=hashlib.sha1(b"1234").digest()),
        _respond_case("pin_unicode", plain, KEY20, "12345678", counter=5, pin="p\u00efn"),
        _respond_case("counter_top", "OCRA-1:HOTP-SHA512-8:C-QN08", KEY20, "1", counter=2**64 - 1),
        _respond_case("time_step_hours", "OCRA-1:HOTP-SHA1-8:QA10-T48H", KEY20, "SIG1000000",
                      time_step=NOW // (48 * 3600)),
        _respond_case("mutual_hex", "OCRA-1:HOTP-SHA256-8:QH64", KEY20, "ab" * 64, mutual=True),
        _respond_case("counter_missing", plain, KEY20, "12345678", pin="1234"),
        _respond_case("counter_too_big", plain, KEY20, "1", pin="1", counter=2**64),
        _respond_case("counter_not_in_suite", qn08, KEY20, "12345678", counter=0),
        _respond_case("pin_missing", plain, KEY20, "12345678", counter=0),
        _respond_case("pin_not_in_suite", qn08, KEY20, "12345678", pin="1234"),
        _respond_case("pin_digest_too_short", plain, KEY20, "1", counter=0, pin_digest=b"x"),
        _respond_case("question_too_long", qn08, KEY20, "123456789"),
        _respond_case("question_empty", qn08, KEY20, ""),
        _respond_case("question_letter_in_n", qn08, KEY20, "1234567a"),
        _respond_case("question_fullwidth_n", qn08, KEY20, "\uff11\uff12"),
        _respond_case("question_dash_in_a", "OCRA-1:HOTP-SHA256-8:QA08", KEY20, "SIG-1000"),
        _respond_case("question_odd_hex", "OCRA-1:HOTP-SHA1-6:QH08", KEY20, "abc"),
        _respond_case("mutual_too_long", "OCRA-1:HOTP-SHA256-8:QA08", KEY20,
                      "CLI22220SRV111101", mutual=True),
        _respond_case("session_short", "OCRA-1:HOTP-SHA256-8:QN08-S064", KEY20, "1",
                      session="x" * 63),
        _respond_case("session_non_ascii", "OCRA-1:HOTP-SHA256-8:QN08-S064", KEY20, "1",
                      session="\u00e9" * 64),
        _respond_case("session_not_in_suite", qn08, KEY20, "1", session="x" * 64),
        _respond_case("time_step_missing", "OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY20, "1"),
        _respond_case("time_step_not_in_suite", qn08, KEY20, "1", time_step=5),
    ]
    return _document(
        "OCRA as qrgate.core.ocra computes it: parseSuite of each 'suites' text ('parsed' or "
        "CodeError 'error'); 'digestAnswers': questionForDigest(digest, suite) and the "
        "response; 'questionRefusals'; 'responds': "
        "respond() answers and refusals (counter/timeStep as decimal strings). The RFC 6287 "
        "vectors are in tests/vectors/rfc6287_ocra.json.",
        suites=suites, digestAnswers=digest_answers, questionRefusals=question_refusals,
        responds=responds)


# --- offline.json (qrgate.core.offline) ---------------------------------------------------


def _offline_document() -> Json:
    cases = []
    for index, number in enumerate([None, 10, 42, 99, 43]):
        challenge_id = _id(f"offline challenge {index}")
        secret = _id(f"offline secret {index}", 32)
        challenge = dataclasses.replace(_challenge(amount="2500.00", number=number),
                                        challenge_id=challenge_id)
        code = issue_code(challenge=challenge, number_matching=number is not None,
                          issuer=ISSUER, now=NOW, ttl=TTL, keyring=RING)
        cases.append({
            "name": f"case {index}", "text": code, "now": NOW, "secret": secret.hex(),
            "challengeId": challenge_id.hex(), "number": number,
            "question": offline_question(challenge_id=challenge_id, number=number),
            "code": offline_code(secret=secret, challenge_id=challenge_id, number=number),
        })
    refused = []
    for number in (0, 9, 100, -1, True):
        try:
            offline_question(challenge_id=bytes(16), number=number)  # type: ignore[arg-type]
        except QrgateError as error:
            refused.append({"number": number, "error": error.code})
        else:
            raise AssertionError(f"Python accepted the number {number!r}")
    return _document(
        f"Offline approval codes (qrgate.core.offline, suite {OFFLINE_SUITE}): for each "
        "case, the scanned confirmation code 'text' (verify at 'now'), the offline 'secret' "
        "(hex), the 'number' typed (null: no number matching), the QH64 'question' and the "
        "8-digit 'code'; 'refused': numbers offlineQuestion refuses, with the error code.",
        cases=cases, refused=refused)


def _app_lock_document() -> Json:
    decisions = []
    for index, (decision, number, pin) in enumerate([("approve", None, "246810"),
                                                      ("approve", 7, "000000"),
                                                      ("deny", 42, "123456789012")]):
        challenge_id = _id(f"lock challenge {index}").hex()
        device_id = _id(f"lock device {index}").hex()
        message = decision_message(challenge_id=challenge_id, decision=decision, number=number)
        key = hashlib.pbkdf2_hmac("sha256", pin.encode(), f"qrgate-pin:{device_id}".encode(),
                                  PIN_ITERATIONS)
        decisions.append({
            "challengeId": challenge_id, "decision": decision, "number": number,
            "message": message.hex(), "pin": pin, "deviceId": device_id, "key": key.hex(),
            "proof": _b64u(pin_proof(key=key, message=message)),
        })
    changes = [{"deviceId": _id("lock device 0").hex(), "change": change.value,
                "material": material.hex(),
                "message": change_message(device_id=_id("lock device 0").hex(), change=change,
                                          material=material).hex()}
               for change, material in [(LockChange.SET_PIN, _id("pin key", 32)),
                                        (LockChange.ADD_WEBAUTHN, _id("credential id")),
                                        (LockChange.TURN_OFF, b"")]]
    return _document(
        "App lock (qrgate.core.app_lock): for each decision, the unlock 'message' (hex) of "
        "the challenge id, decision and number (null: none), the 'key' (hex) the 'pin' "
        "derives on the device and the PIN 'proof' (base64url); for each change of the "
        "lock, its 'message' over the device id, the change and the 'material' (hex).",
        decisions=decisions, changes=changes)


# --- files -------------------------------------------------------------------------------


def build() -> dict[str, str]:
    """File name -> content of every vector file."""
    documents = {
        "keys.json": _keys_document(),
        "codes.json": _codes_document(),
        "confirm.json": _confirm_document(),
        "txsign.json": _txsign_document(),
        "device.json": _device_document(),
        "ocra.json": _ocra_document(),
        "offline.json": _offline_document(),
        "app_lock.json": _app_lock_document(),
    }
    return {name: json.dumps(document, indent=1, ensure_ascii=False) + "\n"
            for name, document in documents.items()}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in build().items():
        (OUT_DIR / name).write_text(content, encoding="utf-8")
        print(f"wrote {OUT_DIR / name}")


if __name__ == "__main__":
    main()
