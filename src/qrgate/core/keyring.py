"""Server signing keys, their rotation, and the public half that phones carry.

A :class:`KeyRing` signs with exactly one active key but verifies with the active key plus
older keys that are not yet retired, so codes already on screens (or printed) keep working
across a rotation. Retiring a key means dropping it from ``verify_only``.

Key ids are derived from the public key (first 8 bytes of SHA-256 over the DER
SubjectPublicKeyInfo) rather than chosen, so the same key has the same kid on the server,
in the JWKS and on every phone, and a kid can never silently point at another key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.cose import require_p256, sign1
from qrgate.errors import InvalidField, Malformed, UnknownKey

KID_LEN: Final = 8
_COORD_LEN: Final = 32
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


def kid_for(public_key: ec.EllipticCurvePublicKey) -> bytes:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:KID_LEN]


def _same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    kid: bytes
    private_key: ec.EllipticCurvePrivateKey
    created_at: float

    def __post_init__(self) -> None:
        require_p256(self.private_key)
        if self.kid != kid_for(self.private_key.public_key()):
            raise InvalidField("kid does not match the signing key", code="kid_mismatch")

    def __repr__(self) -> str:
        # Keep private key objects out of logs and tracebacks.
        return f"SigningKey(kid={self.kid.hex()}, created_at={self.created_at})"

    @classmethod
    def from_private_key(
        cls, private_key: ec.EllipticCurvePrivateKey, *, created_at: float
    ) -> SigningKey:
        return cls(
            kid=kid_for(private_key.public_key()), private_key=private_key, created_at=created_at
        )

    @classmethod
    def generate(cls, *, now: float) -> SigningKey:
        return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()), created_at=now)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()


def _b64url(data: bytes) -> str:
    # mutation: stripping "X" too is equivalent for the 8- and 32-byte values written
    # here: their last base64 character carries 4 data bits and 2 zero bits, never X.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: object, *, field: str) -> bytes:
    # RFC 7515 base64url: no padding, no '+' or '/', which the stdlib decoder would let by.
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise Malformed(f"JWK {field} is not a base64url string", code="bad_jwks")
    try:
        # mutation: more padding is equivalent: the decoder ignores excess padding, and the
        # pattern above refuses "=" in the text itself.
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"JWK {field} is not base64url", code="bad_jwks") from exc


def _jwk_to_key(jwk: Mapping[str, object]) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    x = _unb64url(jwk.get("x"), field="x")
    y = _unb64url(jwk.get("y"), field="y")
    if len(x) != _COORD_LEN or len(y) != _COORD_LEN:
        raise Malformed("JWK P-256 coordinates must be 32 bytes", code="bad_jwks")
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise Malformed("JWK point is not on P-256", code="bad_jwks") from exc
    kid = _unb64url(jwk.get("kid"), field="kid")
    if kid != kid_for(key):
        raise Malformed("JWK kid does not match its key", code="bad_jwks")
    return kid, key


def _is_our_kind_of_jwk(jwk: Mapping[str, object]) -> bool:
    # Skip rather than reject keys of other kinds so a server can later publish
    # additional algorithms without breaking phones that only know ES256.
    return (
        jwk.get("kty") == "EC"
        and jwk.get("crv") == "P-256"
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", "ES256") == "ES256"
    )


class PublicKeySet(Mapping[bytes, ec.EllipticCurvePublicKey]):
    """Immutable kid → public key mapping: what a phone holds to verify codes offline."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[bytes, ec.EllipticCurvePublicKey]) -> None:
        checked: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for kid, key in keys.items():
            require_p256(key)
            if kid != kid_for(key):
                raise InvalidField("kid does not match its public key", code="kid_mismatch")
            checked[kid] = key
        self._keys = MappingProxyType(checked)

    def __getitem__(self, kid: bytes) -> ec.EllipticCurvePublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"PublicKeySet({sorted(k.hex() for k in self._keys)})"

    def public_key(self, kid: bytes) -> ec.EllipticCurvePublicKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(f"no key with kid {kid.hex()}") from None

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        keys = []
        for kid, key in self._keys.items():
            numbers = key.public_numbers()
            keys.append(
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": _b64url(kid),
                    "use": "sig",
                    "alg": "ES256",
                    "x": _b64url(numbers.x.to_bytes(_COORD_LEN, "big")),
                    "y": _b64url(numbers.y.to_bytes(_COORD_LEN, "big")),
                }
            )
        return {"keys": keys}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, object]) -> PublicKeySet:
        entries = jwks.get("keys")
        if not isinstance(entries, list):
            raise Malformed("JWKS needs a 'keys' list", code="bad_jwks")
        keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for jwk in entries:
            if not isinstance(jwk, Mapping):
                raise Malformed("JWKS entries must be objects", code="bad_jwks")
            if not _is_our_kind_of_jwk(jwk):
                continue
            kid, key = _jwk_to_key(jwk)
            keys[kid] = key
        return cls(keys)


class KeyRing:
    """The server's signing key plus the older keys it still accepts."""

    __slots__ = ("_active", "_verifier")

    def __init__(
        self,
        *,
        active: SigningKey,
        verify_only: Mapping[bytes, ec.EllipticCurvePublicKey] | None = None,
    ) -> None:
        keys = dict(verify_only or {})
        listed = keys.pop(active.kid, None)
        if listed is not None and not _same_key(listed, active.public_key):
            raise InvalidField("kid does not match its public key", code="kid_mismatch")
        keys[active.kid] = active.public_key
        self._active = active
        self._verifier = PublicKeySet(keys)

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active_kid.hex()}, keys={len(self._verifier)})"

    @property
    def active(self) -> SigningKey:
        return self._active

    @property
    def active_kid(self) -> bytes:
        return self._active.kid

    @property
    def verifier(self) -> PublicKeySet:
        return self._verifier

    def sign(self, payload: bytes) -> bytes:
        return sign1(payload=payload, private_key=self._active.private_key, kid=self.active_kid)

    def public_key(self, kid: bytes) -> ec.EllipticCurvePublicKey:
        return self._verifier.public_key(kid)

    def public_keys(self) -> dict[bytes, ec.EllipticCurvePublicKey]:
        return dict(self._verifier)
