from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from enum import IntEnum

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qrgate.core.codes import (
    BASE45_ALPHABET,
    MAX_CODE_CHARS,
    PREFIX,
    Claim,
    CodeType,
    decode_code,
    encode_code,
    peek_kid,
)
from qrgate.core.cose import sign1
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey
from qrgate.errors import (
    BadSignature,
    Expired,
    InvalidField,
    MalformedCode,
    PayloadTooLarge,
    QrgateError,
    UnknownKey,
    UnsupportedVersion,
    WrongCodeType,
)

NOW = 1_700_000_000
OLD = SigningKey.generate(now=NOW - 86400)
CURRENT = SigningKey.generate(now=NOW)
RING = KeyRing(active=CURRENT)
FOREIGN = KeyRing(active=SigningKey.generate(now=NOW))


def _code(
    *,
    keyring: KeyRing = RING,
    code_type: CodeType = CodeType.CONFIRM,
    claims: Mapping[int, object] | None = None,
    issued_at: int = NOW,
    expires_at: int = NOW + 120,
) -> str:
    return encode_code(
        code_type=code_type,
        code_id=b"\x01" * 16,
        issued_at=issued_at,
        expires_at=expires_at,
        issuer="qrgate",
        claims={10: b"challenge", 11: "alice"} if claims is None else claims,
        keyring=keyring,
    )


VALID = _code()


def _decode(text: str, *, now: float = NOW, keys: object = RING) -> object:
    return decode_code(
        text,
        keys=keys,  # type: ignore[arg-type]
        now=now,
        expected_type=CodeType.CONFIRM,
    )


def _b45(raw: bytes) -> str:
    encoded: bytes = base45.b45encode(raw)
    return PREFIX + encoded.decode()


def _wrap(payload: bytes, *, keyring: KeyRing = RING) -> str:
    """A correctly signed code around an arbitrary claims payload."""
    return _b45(keyring.sign(payload))


# --- the happy path --------------------------------------------------------------------


def test_round_trip_fields() -> None:
    verified = decode_code(VALID, keys=RING, now=NOW, expected_type=CodeType.CONFIRM)
    assert verified.code_type is CodeType.CONFIRM
    assert verified.code_id == b"\x01" * 16
    assert (verified.issued_at, verified.expires_at) == (NOW, NOW + 120)
    assert verified.issuer == "qrgate"
    assert verified.kid == RING.active_kid
    assert dict(verified.claims) == {10: b"challenge", 11: "alice"}
    with pytest.raises(TypeError):
        verified.claims[12] = 1  # type: ignore[index]


def test_code_is_qr_alphanumeric_and_prefixed() -> None:
    assert VALID.startswith("QG1:")
    assert set(VALID) <= BASE45_ALPHABET


@pytest.mark.parametrize(
    "keys",
    [
        RING,
        RING.verifier,
        dict(RING.public_keys()),
        PublicKeySet.from_jwks(RING.verifier.to_jwks()),
    ],
)
def test_every_kind_of_key_source(keys: object) -> None:
    _decode(VALID, keys=keys)


def test_peek_kid() -> None:
    assert peek_kid(VALID) == RING.active_kid
    with pytest.raises(MalformedCode):
        peek_kid("QG1:AAAA")


class _SchemeClaim(IntEnum):
    THING = 12


def test_intenum_claim_keys_are_accepted() -> None:
    code = _code(claims={_SchemeClaim.THING: 1})
    verified = decode_code(code, keys=RING, now=NOW, expected_type=CodeType.CONFIRM)
    assert dict(verified.claims) == {12: 1}


_leaf = (
    st.text(max_size=20)
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.binary(max_size=20)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
)
_value = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.integers(-100, 100) | st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(min_value=10, max_value=2**32), _value, max_size=6))
def test_round_trip_arbitrary_claims(claims: dict[int, object]) -> None:
    try:
        code = _code(claims=claims)
    except PayloadTooLarge:
        return
    verified = decode_code(code, keys=RING, now=NOW, expected_type=CodeType.CONFIRM)
    assert dict(verified.claims) == claims


# --- tampering and garbage -------------------------------------------------------------


def _must_fail(text: str) -> None:
    with pytest.raises(QrgateError):
        _decode(text)


_SUBSTITUTES = st.sampled_from([*sorted(BASE45_ALPHABET), "a", "q", "\n", "\x00", "é", "😀"])


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), _SUBSTITUTES)
def test_any_single_character_change_fails(position: int, char: str) -> None:
    assume(VALID[position] != char)
    _must_fail(VALID[:position] + char + VALID[position + 1 :])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_any_truncation_fails(length: int) -> None:
    _must_fail(VALID[:length])


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=10))
def test_appended_data_fails(suffix: str) -> None:
    _must_fail(VALID + suffix)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.text(max_size=300).map(lambda t: PREFIX + t))
def test_arbitrary_text_raises_only_qrgate_errors(text: str) -> None:
    _must_fail(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=sorted(BASE45_ALPHABET), max_size=400))
def test_arbitrary_base45_raises_only_qrgate_errors(body: str) -> None:
    _must_fail(PREFIX + body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_signed_payload_raises_only_qrgate_errors(payload: bytes) -> None:
    with pytest.raises(QrgateError):
        _decode(_wrap(payload))


# --- the order of checks ---------------------------------------------------------------


def test_too_long_is_checked_first() -> None:
    with pytest.raises(PayloadTooLarge):
        _decode("x" * (MAX_CODE_CHARS + 1))
    with pytest.raises(PayloadTooLarge):
        _decode(VALID + "A" * MAX_CODE_CHARS)


@pytest.mark.parametrize("text", ["QG2:" + VALID[4:], "QG0:ABC", "QG12:ABC", "QG9"])
def test_other_versions_are_unsupported(text: str) -> None:
    with pytest.raises(UnsupportedVersion):
        _decode(text)


@pytest.mark.parametrize("text", ["", "QG", "QG1", "QG1X" + VALID[4:], "qg1:" + VALID[4:], "QGX:"])
def test_bad_prefix_is_malformed(text: str) -> None:
    with pytest.raises(MalformedCode) as caught:
        _decode(text)
    assert type(caught.value) is MalformedCode


def test_lowercase_is_refused() -> None:
    with pytest.raises(MalformedCode):
        _decode(PREFIX + VALID[4:].lower())


def test_trailing_newline_is_refused() -> None:
    # The base45 package would strip it; a code is exactly what the QR holds.
    with pytest.raises(MalformedCode):
        _decode(VALID + "\n")


def test_bad_base45_is_malformed() -> None:
    with pytest.raises(MalformedCode):
        _decode(PREFIX + "ZZZ")  # 3-char group above 0xFFFF
    with pytest.raises(MalformedCode):
        _decode(PREFIX + "A")  # impossible length


def test_envelope_must_be_exactly_what_we_sign() -> None:
    raw = base45.b45decode(VALID[4:])
    item = cbor2.loads(raw)
    untagged = cbor2.dumps(list(item.value))
    with pytest.raises(MalformedCode):
        _decode(_b45(untagged))
    protected, _, payload, signature = item.value
    extra = cbor2.dumps(cbor2.CBORTag(18, [protected, {99: 1}, payload, signature]))
    with pytest.raises(MalformedCode):
        _decode(_b45(extra))


def test_kid_must_be_protected() -> None:
    private = CURRENT.private_key
    payload = cbor2.loads(cbor2.loads(base45.b45decode(VALID[4:])).value[2])
    raw = sign1(payload=cbor2.dumps(payload), private_key=private, kid=b"")
    item = cbor2.loads(raw)
    moved = cbor2.dumps(
        cbor2.CBORTag(
            18, [cbor2.dumps({1: -7}), {4: RING.active_kid}, item.value[2], item.value[3]]
        )
    )
    with pytest.raises(MalformedCode):
        _decode(_b45(moved))


def test_bad_signature_comes_before_claims() -> None:
    forged = sign1(
        payload=b"not even cbor", private_key=FOREIGN.active.private_key, kid=RING.active_kid
    )
    with pytest.raises(BadSignature) as caught:
        _decode(_b45(forged))
    assert type(caught.value) is BadSignature


def test_wrong_type_comes_before_expiry() -> None:
    enrol = _code(code_type=CodeType.ENROL)
    with pytest.raises(WrongCodeType):
        _decode(enrol, now=NOW + 10**6)


# --- keys ------------------------------------------------------------------------------


def test_rotation_then_retirement() -> None:
    old_ring = KeyRing(active=OLD)
    code = _code(keyring=old_ring)
    rotated = KeyRing(active=CURRENT, verify_only={OLD.kid: OLD.public_key})
    assert _decode(code, keys=rotated)
    assert _decode(code, keys=rotated.verifier)
    retired = KeyRing(active=CURRENT)
    with pytest.raises(UnknownKey):
        _decode(code, keys=retired)
    with pytest.raises(UnknownKey):
        _decode(code, keys=retired.verifier)


def test_foreign_key_is_unknown() -> None:
    with pytest.raises(UnknownKey):
        _decode(_code(keyring=FOREIGN))


def test_known_kid_with_foreign_signature_is_bad_signature() -> None:
    genuine = cbor2.loads(base45.b45decode(VALID[4:])).value
    forged = sign1(payload=genuine[2], private_key=FOREIGN.active.private_key, kid=RING.active_kid)
    with pytest.raises(BadSignature) as caught:
        _decode(_b45(forged))
    assert type(caught.value) is BadSignature


def test_mapping_lookup_of_unknown_kid() -> None:
    with pytest.raises(UnknownKey):
        _decode(VALID, keys={})


# --- time ------------------------------------------------------------------------------


def test_expiry_with_leeway() -> None:
    _decode(VALID, now=NOW + 120 + 5)
    with pytest.raises(Expired) as caught:
        _decode(VALID, now=NOW + 120 + 5.001)
    assert caught.value.code == "expired"
    decode_code(VALID, keys=RING, now=NOW + 130, expected_type=CodeType.CONFIRM, leeway=10)


def test_issued_in_the_future() -> None:
    _decode(VALID, now=NOW - 5)
    with pytest.raises(Expired) as caught:
        _decode(VALID, now=NOW - 6)
    assert caught.value.code == "not_yet_valid"


# --- claims structure ------------------------------------------------------------------

_GOOD: dict[object, object] = {1: 1, 2: b"id", 3: NOW, 4: NOW + 60, 5: "qrgate"}


@pytest.mark.parametrize(
    "claims",
    [
        {k: v for k, v in _GOOD.items() if k != 1},
        {k: v for k, v in _GOOD.items() if k != 2},
        {k: v for k, v in _GOOD.items() if k != 3},
        {k: v for k, v in _GOOD.items() if k != 4},
        {k: v for k, v in _GOOD.items() if k != 5},
        {**_GOOD, 1: True},
        {**_GOOD, 1: "1"},
        {**_GOOD, 2: "id"},
        {**_GOOD, 2: b""},
        {**_GOOD, 3: float(NOW)},
        {**_GOOD, 4: str(NOW)},
        {**_GOOD, 5: b"qrgate"},
        {**_GOOD, 5: ""},
        {**_GOOD, 4: NOW - 1},  # expires before issued
        {**_GOOD, 7: 1},  # unassigned common claim
        {**_GOOD, 0: 1},
        {**_GOOD, -1: 1},
        {**_GOOD, "x": 1},
        {**_GOOD, 10: datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)},
        {**_GOOD, 10: cbor2.CBORTag(999, 1)},
        [1, 2, 3],
    ],
)
def test_ill_formed_claims_are_malformed(claims: object) -> None:
    with pytest.raises(MalformedCode):
        _decode(_wrap(cbor2.dumps(claims)))


def test_duplicate_claim_keys_are_malformed() -> None:
    payload = cbor2.dumps(_GOOD)
    dup = bytes([payload[0] + 1]) + payload[1:] + cbor2.dumps(1) + cbor2.dumps(2)
    with pytest.raises(MalformedCode):
        _decode(_wrap(dup))


def test_well_formed_handmade_claims_pass() -> None:
    assert _decode(_wrap(cbor2.dumps(_GOOD)))


# --- encoding guards -------------------------------------------------------------------


@pytest.mark.parametrize("key", [1, 5, 9, 0, -3, True])
def test_reserved_claim_keys_are_refused(key: int) -> None:
    with pytest.raises(InvalidField):
        _code(claims={key: 1})


@pytest.mark.parametrize(
    "value",
    [datetime.datetime.now(datetime.UTC), {1, 2}, object(), "\ud800", {(1, 2): 1}],
)
def test_unplain_claim_values_are_refused(value: object) -> None:
    with pytest.raises(InvalidField):
        _code(claims={10: value})


def test_bad_times_and_ids_are_refused() -> None:
    with pytest.raises(InvalidField):
        _code(issued_at=NOW, expires_at=NOW - 1)
    with pytest.raises(InvalidField):
        encode_code(
            code_type=CodeType.CONFIRM,
            code_id=b"",
            issued_at=NOW,
            expires_at=NOW,
            issuer="qrgate",
            claims={},
            keyring=RING,
        )


def test_oversized_code_is_not_issued() -> None:
    with pytest.raises(PayloadTooLarge):
        _code(claims={10: os.urandom(2000)})


def test_claim_enum_values() -> None:
    assert [int(c) for c in Claim] == [1, 2, 3, 4, 5]
    assert (int(CodeType.CONFIRM), int(CodeType.ENROL)) == (1, 2)
    assert isinstance(CURRENT.private_key, ec.EllipticCurvePrivateKey)
