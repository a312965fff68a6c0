from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrgate.core.aead import OVERHEAD, SecretBox
from qrgate.errors import DecryptionFailed, InvalidField

BOX = SecretBox(os.urandom(32))
CONTEXT = b"users.totp_secret:42"


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512), st.binary(max_size=64))
def test_round_trip(plaintext: bytes, context: bytes) -> None:
    sealed = BOX.seal(plaintext, context=context)
    assert len(sealed) == len(plaintext) + OVERHEAD
    assert BOX.open(sealed, context=context) == plaintext


def test_layout_and_fresh_nonces() -> None:
    a = BOX.seal(b"secret", context=CONTEXT)
    b = BOX.seal(b"secret", context=CONTEXT)
    assert a[0] == 1 and b[0] == 1
    assert a[1:13] != b[1:13]
    assert a != b
    assert b"secret" not in a


def test_moved_to_another_row_fails() -> None:
    sealed = BOX.seal(b"JBSWY3DPEHPK3PXP", context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        BOX.open(sealed, context=b"users.totp_secret:43")
    with pytest.raises(DecryptionFailed):
        BOX.open(sealed, context=b"")


def test_other_key_fails() -> None:
    sealed = BOX.seal(b"x", context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        SecretBox(os.urandom(32)).open(sealed, context=CONTEXT)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_bit_flip_fails(data: st.DataObject) -> None:
    sealed = BOX.seal(b"some secret", context=CONTEXT)
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    tampered = bytearray(sealed)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionFailed):
        BOX.open(bytes(tampered), context=CONTEXT)


@pytest.mark.parametrize("length", [0, 1, 12, OVERHEAD - 1])
def test_truncated_fails(length: int) -> None:
    sealed = BOX.seal(b"", context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        BOX.open(sealed[:length], context=CONTEXT)


def test_unknown_version_fails() -> None:
    sealed = BOX.seal(b"x", context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        BOX.open(b"\x02" + sealed[1:], context=CONTEXT)


@pytest.mark.parametrize("kek", [b"", b"\x00" * 16, b"\x00" * 31, b"\x00" * 33])
def test_kek_must_be_32_bytes(kek: bytes) -> None:
    with pytest.raises(InvalidField):
        SecretBox(kek)


def test_repr_hides_key() -> None:
    kek = bytes(range(32))
    assert kek.hex() not in repr(SecretBox(kek))
