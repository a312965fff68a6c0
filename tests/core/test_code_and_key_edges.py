"""Edges of the signed code format (``qrgate.core.codes``) and of JWKS parsing
(``qrgate.core.keyring``) that mutation testing (scripts/mutation.sh) found unpinned."""

from __future__ import annotations

import base64

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.codes import MAX_CODE_CHARS, PREFIX, CodeType, decode_code, encode_code
from qrgate.core.cose import parse_sign1
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey, kid_for
from qrgate.errors import QrgateError

NOW = 1_800_000_000
RING = KeyRing(active=SigningKey.generate(now=NOW))


def encode(*, issued_at: object = NOW, expires_at: object = NOW + 60,
           claims: dict[int, object] | None = None) -> str:
    return encode_code(code_type=CodeType.CONFIRM, code_id=b"\x01" * 8,
                       issued_at=issued_at, expires_at=expires_at,  # type: ignore[arg-type]
                       issuer="q", claims={10: "x"} if claims is None else claims,
                       keyring=RING)


def decode(text: str, *, now: float = NOW) -> object:
    return decode_code(text, keys=RING, now=now, expected_type=CodeType.CONFIRM)


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(QrgateError) as error:
        call(*args, **kwargs)  # type: ignore[operator]
    return error.value.code


def signed_claims(claims: dict[int, object]) -> str:
    """A code signed by RING around claims that encode_code would refuse to write."""
    payload = cbor2.dumps(claims, canonical=True)
    return PREFIX + base45.b45encode(RING.sign(payload)).decode()


COMMON = {1: int(CodeType.CONFIRM), 2: b"\x01" * 8, 3: NOW, 4: NOW + 60, 5: "q"}


def test_a_code_may_expire_the_second_it_is_issued() -> None:
    decode(encode(issued_at=NOW, expires_at=NOW))
    decode(signed_claims({**COMMON, 4: NOW}))
    assert refusal(encode, issued_at=NOW, expires_at=NOW - 1) == "invalid_field"
    assert refusal(decode, signed_claims({**COMMON, 4: NOW - 1})) == "malformed_code"


@pytest.mark.parametrize(("issued_at", "expires_at"), [
    (True, NOW), (NOW, True), ("1", NOW), (NOW, 1.5), (None, NOW),
])
def test_both_times_must_be_integers(issued_at: object, expires_at: object) -> None:
    assert refusal(encode, issued_at=issued_at, expires_at=expires_at) == "invalid_field"


def test_reserved_claim_keys_are_refused_with_their_code() -> None:
    for key in (0, 1, 5, 9, -1):
        assert refusal(encode, claims={key: "x"}) == "reserved_claim"


def test_lists_are_checked_item_by_item() -> None:
    encode(claims={10: [1, "two", b"3", [4.5, None]]})
    assert refusal(encode, claims={10: [1, {2}]}) == "invalid_field"
    assert refusal(encode, claims={10: [cbor2.CBORTag(1, 0)]}) == "invalid_field"
    assert refusal(decode, signed_claims({**COMMON, 10: [cbor2.CBORTag(1, 0)]})) == (
        "malformed_code")


def test_the_signed_payload_is_canonical_cbor() -> None:
    code = encode(claims={12: "c", 11: "b", 10: "a"})
    payload = parse_sign1(base45.b45decode(code[len(PREFIX):])).payload
    assert payload == cbor2.dumps(cbor2.loads(payload), canonical=True)
    assert list(cbor2.loads(payload)) == [1, 2, 3, 4, 5, 10, 11, 12]


def test_a_text_of_exactly_the_limit_is_parsed_not_refused_for_size() -> None:
    text = PREFIX + "A" * (MAX_CODE_CHARS - len(PREFIX))
    assert len(text) == MAX_CODE_CHARS
    assert refusal(decode, text) == "malformed_code"
    assert refusal(decode, text + "A") == "payload_too_large"


# --- JWKS -----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key: ec.EllipticCurvePublicKey, **changes: object) -> dict[str, object]:
    numbers = key.public_numbers()
    entry: dict[str, object] = {
        "kty": "EC", "crv": "P-256", "kid": b64url(kid_for(key)),
        "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


KEY = ec.derive_private_key(7, ec.SECP256R1()).public_key()


def test_use_and_alg_default_to_a_signing_es256_key() -> None:
    assert list(PublicKeySet.from_jwks({"keys": [jwk(KEY)]})) == [kid_for(KEY)]
    assert list(PublicKeySet.from_jwks({"keys": [jwk(KEY, use="sig", alg="ES256")]})) == [
        kid_for(KEY)]


@pytest.mark.parametrize("changes", [
    {"kty": "RSA"}, {"crv": "P-384"}, {"kty": "OKP", "crv": "Ed25519"},
    {"use": "enc"}, {"alg": "ES384"}, {"kty": None}, {"crv": None},
])
def test_keys_of_other_kinds_are_skipped(changes: dict[str, object]) -> None:
    other = ec.derive_private_key(8, ec.SECP256R1()).public_key()
    keys = PublicKeySet.from_jwks({"keys": [jwk(other, **changes), jwk(KEY)]})
    assert list(keys) == [kid_for(KEY)]


def test_a_coordinate_must_be_written_in_full_32_bytes() -> None:
    # A key whose x has a leading zero byte: its 31-byte form names the same point.
    scalar = next(n for n in range(1, 10_000) if ec.derive_private_key(
        n, ec.SECP256R1()).public_key().public_numbers().x < 2**248)
    key = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
    numbers = key.public_numbers()
    short = jwk(key, x=b64url(numbers.x.to_bytes(31, "big")))
    with pytest.raises(QrgateError) as error:
        PublicKeySet.from_jwks({"keys": [short]})
    assert error.value.code == "bad_jwks"
    assert list(PublicKeySet.from_jwks({"keys": [jwk(key)]})) == [kid_for(key)]


def test_a_signing_key_keeps_its_creation_time() -> None:
    assert SigningKey.generate(now=123.5).created_at == 123.5
    private = ec.derive_private_key(9, ec.SECP256R1())
    assert SigningKey.from_private_key(private, created_at=77).created_at == 77


@pytest.mark.parametrize("changes", [
    {"x": "not base64!"}, {"x": "AAAA"}, {"x": None}, {"x": 7}, {"x": "a+b/" * 10 + "abc"},
    {"y": "not base64!"}, {"y": "AAAA"}, {"y": None}, {"y": "_" * 43},
    {"kid": "AAAAAAAAAAA"}, {"kid": 7}, {"kid": None}, {"kid": "A"},
])
def test_broken_jwks_are_refused_as_bad_jwks(changes: dict[str, object]) -> None:
    with pytest.raises(QrgateError) as error:
        PublicKeySet.from_jwks({"keys": [jwk(KEY, **changes)]})
    assert error.value.code == "bad_jwks"


@pytest.mark.parametrize("field", ["x", "y", "kid"])
def test_a_jwk_that_is_not_base64url_names_the_field(field: str) -> None:
    for value in ("not base64!", "A"):
        with pytest.raises(QrgateError) as error:
            PublicKeySet.from_jwks({"keys": [jwk(KEY, **{field: value})]})
        assert error.value.detail.startswith(f"JWK {field} is not")


@pytest.mark.parametrize("jwks", [{}, {"keys": "x"}, {"keys": ["x"]}, {"keys": [None]}])
def test_broken_key_sets_are_refused_as_bad_jwks(jwks: dict[str, object]) -> None:
    with pytest.raises(QrgateError) as error:
        PublicKeySet.from_jwks(jwks)
    assert error.value.code == "bad_jwks"


def test_a_kid_that_does_not_name_its_key_is_refused_everywhere() -> None:
    private = ec.derive_private_key(12, ec.SECP256R1())
    other = ec.derive_private_key(13, ec.SECP256R1()).public_key()
    for make in (
        lambda: SigningKey(kid=kid_for(other), private_key=private, created_at=0),
        lambda: PublicKeySet({kid_for(other): private.public_key()}),
        lambda: KeyRing(active=SigningKey.from_private_key(private, created_at=0),
                        verify_only={kid_for(private.public_key()): other}),
    ):
        with pytest.raises(QrgateError) as error:
            make()
        assert error.value.code == "kid_mismatch"


def test_keys_off_p_256_are_refused_as_unsupported() -> None:
    p384 = ec.derive_private_key(5, ec.SECP384R1())
    with pytest.raises(QrgateError) as error:
        SigningKey(kid=b"12345678", private_key=p384, created_at=0)  # type: ignore[arg-type]
    assert error.value.code == "unsupported_key"
    with pytest.raises(QrgateError) as error:
        PublicKeySet({b"12345678": p384.public_key()})
    assert error.value.code == "unsupported_key"
