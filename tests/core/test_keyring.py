from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.cose import parse_sign1, verify_sign1
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey, kid_for
from qrgate.errors import InvalidField, Malformed, UnknownKey

NOW = 1_700_000_000.0


def _key() -> SigningKey:
    return SigningKey.generate(now=NOW)


def test_kid_is_truncated_spki_hash() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert kid_for(key) == hashlib.sha256(spki).digest()[:8]
    assert len(kid_for(key)) == 8


def test_signing_key_checks_kid_and_curve() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidField):
        SigningKey(kid=b"12345678", private_key=private, created_at=NOW)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidField):
        SigningKey.from_private_key(p384, created_at=NOW)


def test_signing_key_repr_hides_the_private_key() -> None:
    key = _key()
    assert "private" not in repr(key).lower()
    assert key.kid.hex() in repr(key)


def test_keyring_signs_with_active_and_verifies_with_all() -> None:
    old, new = _key(), _key()
    ring = KeyRing(active=new, verify_only={old.kid: old.public_key})
    assert ring.active_kid == new.kid
    assert set(ring.public_keys()) == {old.kid, new.kid}
    assert set(ring.verifier) == {old.kid, new.kid}
    message = parse_sign1(ring.sign(b"payload"))
    assert message.kid == new.kid
    assert ring.sign(b"x")[0] == 0xD2  # tagged
    verify_sign1(message, public_key=ring.public_key(new.kid))
    assert ring.public_key(old.kid).public_numbers() == old.public_key.public_numbers()


def test_unknown_kid_raises_unknown_key() -> None:
    ring = KeyRing(active=_key())
    with pytest.raises(UnknownKey):
        ring.public_key(b"\x00" * 8)
    with pytest.raises(UnknownKey):
        ring.verifier.public_key(b"nope")


def test_verify_only_kids_must_match_their_keys() -> None:
    other = _key()
    with pytest.raises(InvalidField):
        KeyRing(active=_key(), verify_only={b"\x01" * 8: other.public_key})
    active = _key()
    with pytest.raises(InvalidField):
        KeyRing(active=active, verify_only={active.kid: other.public_key})
    # Listing the active key among the verify-only ones is harmless.
    ring = KeyRing(active=active, verify_only={active.kid: active.public_key})
    assert list(ring.public_keys()) == [active.kid]


def test_public_key_set_is_a_read_only_mapping() -> None:
    key = _key()
    keys = PublicKeySet({key.kid: key.public_key})
    assert len(keys) == 1 and key.kid in keys
    assert keys.get(b"missing") is None
    with pytest.raises(TypeError):
        keys[b"x"] = key.public_key  # type: ignore[index]


def test_jwks_round_trip() -> None:
    old, new = _key(), _key()
    ring = KeyRing(active=new, verify_only={old.kid: old.public_key})
    jwks = ring.verifier.to_jwks()
    assert len(jwks["keys"]) == 2
    for jwk in jwks["keys"]:
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
        assert jwk["use"] == "sig" and jwk["alg"] == "ES256"
        assert "=" not in jwk["kid"] + jwk["x"] + jwk["y"]
        assert "d" not in jwk
    again = PublicKeySet.from_jwks(json.loads(json.dumps(jwks)))
    assert set(again) == {old.kid, new.kid}
    for kid in again:
        assert again[kid].public_numbers() == ring.public_key(kid).public_numbers()


def test_from_jwks_skips_keys_of_other_kinds() -> None:
    key = _key()
    good = PublicKeySet({key.kid: key.public_key}).to_jwks()["keys"][0]
    jwks = {
        "keys": [
            good,
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "AA"},
            {**good, "crv": "P-384"},
            {**good, "use": "enc"},
            {**good, "alg": "ES384"},
        ]
    }
    assert list(PublicKeySet.from_jwks(jwks)) == [key.kid]


@pytest.mark.parametrize(
    "change",
    [
        {"x": "not base64!"},
        {"x": "AAAA"},  # too short
        {"y": "_" * 43},  # 32 bytes but not on the curve
        {"kid": "AAAAAAAAAAA"},  # does not match the key
        {"kid": 7},
        {"x": "a+b/" * 10 + "abc"},  # standard alphabet, not base64url
    ],
)
def test_from_jwks_rejects_broken_keys(change: dict[str, object]) -> None:
    key = _key()
    good = PublicKeySet({key.kid: key.public_key}).to_jwks()["keys"][0]
    with pytest.raises(Malformed):
        PublicKeySet.from_jwks({"keys": [{**good, **change}]})


@pytest.mark.parametrize("jwks", [{}, {"keys": "x"}, {"keys": ["x"]}])
def test_from_jwks_rejects_broken_sets(jwks: dict[str, object]) -> None:
    with pytest.raises(Malformed):
        PublicKeySet.from_jwks(jwks)
