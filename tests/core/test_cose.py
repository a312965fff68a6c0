"""COSE_Sign1 against the COSE working group's published vectors, plus our own edge cases."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from qrgate.core.cose import (
    ALG_ES256,
    HEADER_ALG,
    HEADER_KID,
    parse_sign1,
    sign1,
    to_be_signed,
    verify_sign1,
)
from qrgate.errors import BadSignature, InvalidField, MalformedCode, QrgateError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "cose"
PASS = ["sign-pass-01.json", "sign-pass-02.json", "sign-pass-03.json"]
# Which of our errors each WG failure vector must produce.
FAIL = {
    "sign-fail-01.json": MalformedCode,  # tag 998 instead of 18
    "sign-fail-02.json": BadSignature,  # payload changed
    "sign-fail-03.json": MalformedCode,  # alg -999
    "sign-fail-04.json": MalformedCode,  # alg "unknown"
    "sign-fail-06.json": BadSignature,  # protected attribute added
    "sign-fail-07.json": BadSignature,  # protected attribute removed
}

KEY = ec.generate_private_key(ec.SECP256R1())
KID = b"kid-0001"


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return vector


def _vector_keys(vector: dict[str, Any]) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    jwk = vector["input"]["sign0"]["key"]
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    public = ec.EllipticCurvePublicNumbers(
        _b64url_int(jwk["x"]), _b64url_int(jwk["y"]), ec.SECP256R1()
    )
    private = ec.EllipticCurvePrivateNumbers(_b64url_int(jwk["d"]), public).private_key()
    return private, bytes.fromhex(vector["input"]["sign0"].get("external", ""))


def test_vector_files_are_present() -> None:
    assert sorted(p.name for p in VECTORS.glob("*.json")) == sorted([*PASS, *FAIL])
    readme = (VECTORS / "README.md").read_text()
    assert "cose-wg/Examples" in readme


@pytest.mark.parametrize("name", PASS)
def test_pass_vector_parses_and_verifies(name: str) -> None:
    vector = _load(name)
    private, external_aad = _vector_keys(vector)
    message = parse_sign1(bytes.fromhex(vector["output"]["cbor"]))
    assert message.payload == vector["input"]["plaintext"].encode()
    assert message.kid == vector["input"]["sign0"]["key"]["kid"].encode()
    tbs = to_be_signed(
        protected_raw=message.protected_raw, payload=message.payload, external_aad=external_aad
    )
    assert tbs.hex().upper() == vector["intermediates"]["ToBeSign_hex"]
    verify_sign1(message, public_key=private.public_key(), external_aad=external_aad)


@pytest.mark.parametrize("name", PASS)
def test_pass_vector_fails_with_other_aad_or_key(name: str) -> None:
    vector = _load(name)
    private, external_aad = _vector_keys(vector)
    message = parse_sign1(bytes.fromhex(vector["output"]["cbor"]))
    with pytest.raises(BadSignature):
        verify_sign1(message, public_key=private.public_key(), external_aad=external_aad + b"x")
    with pytest.raises(BadSignature):
        verify_sign1(message, public_key=KEY.public_key(), external_aad=external_aad)


def test_sign_pass_01_normalises_an_empty_protected_map() -> None:
    message = parse_sign1(bytes.fromhex(_load("sign-pass-01.json")["output"]["cbor"]))
    assert message.protected_raw == b"\xa0"
    assert message.protected == {}
    assert not message.alg_is_protected and not message.kid_is_protected
    assert message.alg == ALG_ES256


def test_sign_pass_03_is_untagged() -> None:
    raw = bytes.fromhex(_load("sign-pass-03.json")["output"]["cbor"])
    assert raw[0] == 0x84  # a bare array, no tag 18
    assert parse_sign1(raw).alg_is_protected


@pytest.mark.parametrize(("name", "error"), sorted(FAIL.items()))
def test_fail_vector_is_refused(name: str, error: type[QrgateError]) -> None:
    vector = _load(name)
    assert vector["fail"] is True
    private, external_aad = _vector_keys(vector)
    with pytest.raises(error) as caught:
        message = parse_sign1(bytes.fromhex(vector["output"]["cbor"]))
        verify_sign1(message, public_key=private.public_key(), external_aad=external_aad)
    # MalformedCode must not be hiding a signature failure or the reverse.
    assert type(caught.value) is error


def test_our_signature_verifies_with_the_vector_key_and_matches_its_tbs_layout() -> None:
    vector = _load("sign-pass-02.json")
    private, external_aad = _vector_keys(vector)
    payload = vector["input"]["plaintext"].encode()
    raw = sign1(payload=payload, private_key=private, kid=b"11", external_aad=external_aad)
    message = parse_sign1(raw)
    verify_sign1(message, public_key=private.public_key(), external_aad=external_aad)
    # Same Sig_structure as the vector apart from our protected header, which adds the kid.
    expected = bytes.fromhex(vector["intermediates"]["ToBeSign_hex"])
    ours = to_be_signed(
        protected_raw=bytes.fromhex("A10126"), payload=payload, external_aad=external_aad
    )
    assert ours == expected


@pytest.mark.parametrize("tagged", [True, False])
def test_round_trip(tagged: bool) -> None:
    raw = sign1(payload=b"hello", private_key=KEY, kid=KID, tagged=tagged)
    assert raw[0] == (0xD2 if tagged else 0x84)
    message = parse_sign1(raw)
    assert message.protected == {HEADER_ALG: ALG_ES256, HEADER_KID: KID}
    assert message.unprotected == {}
    assert message.kid == KID and message.kid_is_protected and message.alg_is_protected
    assert len(message.signature) == 64
    verify_sign1(message, public_key=KEY.public_key())


def test_external_aad_binds() -> None:
    message = parse_sign1(sign1(payload=b"p", private_key=KEY, kid=KID, external_aad=b"ctx"))
    verify_sign1(message, public_key=KEY.public_key(), external_aad=b"ctx")
    with pytest.raises(BadSignature):
        verify_sign1(message, public_key=KEY.public_key())


def test_kid_is_covered_by_the_signature() -> None:
    message = parse_sign1(sign1(payload=b"p", private_key=KEY, kid=KID))
    swapped_raw = cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: b"other"}, canonical=True)
    forged = parse_sign1(
        cbor2.dumps(cbor2.CBORTag(18, [swapped_raw, {}, message.payload, message.signature]))
    )
    with pytest.raises(BadSignature):
        verify_sign1(forged, public_key=KEY.public_key())


def test_other_curves_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidField):
        sign1(payload=b"p", private_key=p384, kid=KID)
    message = parse_sign1(sign1(payload=b"p", private_key=KEY, kid=KID))
    with pytest.raises(InvalidField):
        verify_sign1(message, public_key=p384.public_key())


def test_zero_signature_is_bad_not_a_crash() -> None:
    message = parse_sign1(sign1(payload=b"p", private_key=KEY, kid=KID))
    zeroed = parse_sign1(
        cbor2.dumps(cbor2.CBORTag(18, [message.protected_raw, {}, b"p", bytes(64)]))
    )
    with pytest.raises(BadSignature):
        verify_sign1(zeroed, public_key=KEY.public_key())


_PROT = cbor2.dumps({1: -7}, canonical=True)
_SIG = bytes(64)


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


_PARTS: tuple[object, ...] = (_PROT, {}, b"p", _SIG)


def _tag(*items: object) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, list(items)))


MALFORMED = {
    "not cbor": b"\xff\xff",
    "empty": b"",
    "trailing bytes": _tag(_PROT, {}, b"p", _SIG) + b"\x00",
    "wrong tag": cbor2.dumps(cbor2.CBORTag(98, [_PROT, {}, b"p", _SIG])),
    "nested tag": cbor2.dumps(cbor2.CBORTag(18, cbor2.CBORTag(18, [_PROT, {}, b"p", _SIG]))),
    "not an array": cbor2.dumps({1: 2}),
    "three items": _tag(_PROT, {}, b"p"),
    "five items": _tag(_PROT, {}, b"p", _SIG, b""),
    "protected not bstr": _tag({1: -7}, {}, b"p", _SIG),
    "protected bstr of array": _tag(cbor2.dumps([1, -7]), {}, b"p", _SIG),
    "protected not cbor": _tag(b"\xff", {}, b"p", _SIG),
    "protected trailing": _tag(_PROT + b"\x00", {}, b"p", _SIG),
    "protected duplicate key": _tag(b"\xa2\x01\x26\x01\x26", {}, b"p", _SIG),
    "unprotected not map": _tag(_PROT, [], b"p", _SIG),
    "detached payload": _tag(_PROT, {}, None, _SIG),
    "payload text": _tag(_PROT, {}, "p", _SIG),
    "signature text": _tag(_PROT, {}, b"p", "sig"),
    "signature short": _tag(_PROT, {}, b"p", bytes(63)),
    "signature long": _tag(_PROT, {}, b"p", bytes(65)),
    "no alg": _tag(b"", {}, b"p", _SIG),
    "alg ES384": _tag(cbor2.dumps({1: -35}), {}, b"p", _SIG),
    "alg as text": _tag(cbor2.dumps({1: "ES256"}), {}, b"p", _SIG),
    "alg in both buckets": _tag(_PROT, {1: -7}, b"p", _SIG),
    "critical header": _tag(cbor2.dumps({1: -7, 2: [99]}), {}, b"p", _SIG),
    "kid text": _tag(_PROT, {4: "kid"}, b"p", _SIG),
    "bool label": _tag(b"\xa1\xf5\x26", {}, b"p", _SIG),
    "float label": _tag(_PROT, {1.5: 1}, b"p", _SIG),
    "indefinite array": b"\xd2\x9f" + b"".join(cbor2.dumps(part) for part in _PARTS) + b"\xff",
    "deep nesting": _tag(_PROT, {5: _nested(40)}, b"p", _SIG),
    "huge declared length": b"\xd2\x84\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_malformed_code(name: str) -> None:
    with pytest.raises(MalformedCode):
        parse_sign1(MALFORMED[name])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedCode):
        parse_sign1(data)


_SIGNED = sign1(payload=b"the payload", private_key=KEY, kid=KID)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_SIGNED) * 8 - 1))
def test_any_bit_flip_is_refused(bit: int) -> None:
    tampered = bytearray(_SIGNED)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((MalformedCode, BadSignature)):
        verify_sign1(parse_sign1(bytes(tampered)), public_key=KEY.public_key())
