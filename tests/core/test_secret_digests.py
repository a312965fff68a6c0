"""Keyed digests of stored secrets (``qrgate.core.digests``), checked against an independent
HKDF/HMAC computation so the construction, its constants and its purposes are pinned."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from qrgate.core.digests import Purpose, SecretDigests

KEK = bytes(range(32))
PURPOSES: tuple[Purpose, ...] = ("api_key", "browser_token", "enrol_secret", "enrol_confirm",
                                 "token_client")


def expected(kek: bytes, secret: str, purpose: str) -> bytes:
    """RFC 5869 HKDF-SHA256 (no salt, info "qrgate secret digests v1", 32 bytes), then
    HMAC-SHA256(key, purpose || 0x00 || SHA-256(secret))."""
    prk = hmac.digest(bytes(32), kek, "sha256")
    key = hmac.digest(prk, b"qrgate secret digests v1\x01", "sha256")
    inner = hashlib.sha256(secret.encode()).digest()
    return hmac.digest(key, purpose.encode() + b"\0" + inner, "sha256")


@pytest.mark.parametrize("purpose", PURPOSES)
def test_the_digest_is_the_documented_construction(purpose: Purpose) -> None:
    digests = SecretDigests(KEK)
    assert digests.digest("s3cret", purpose=purpose) == expected(KEK, "s3cret", purpose)


def test_rekeying_a_plain_digest_gives_the_keyed_digest() -> None:
    digests = SecretDigests(KEK)
    plain = hashlib.sha256(b"s3cret").digest()
    assert digests.rekey(plain, purpose="api_key") == digests.digest("s3cret",
                                                                     purpose="api_key")


def test_a_digest_matches_only_its_secret_purpose_and_key() -> None:
    digests = SecretDigests(KEK)
    stored = digests.digest("s3cret", purpose="api_key")
    assert digests.matches("s3cret", stored, purpose="api_key")
    assert not digests.matches("s3cret!", stored, purpose="api_key")
    assert not digests.matches("s3cret", stored, purpose="browser_token")
    assert not SecretDigests(bytes(32)).matches("s3cret", stored, purpose="api_key")
    assert len({digests.digest("s3cret", purpose=p) for p in PURPOSES}) == len(PURPOSES)


def test_the_key_stays_out_of_reprs() -> None:
    assert repr(SecretDigests(KEK)) == "SecretDigests(<redacted>)"
