"""Device request signatures: how a bound phone proves it holds its device key.

Every device request carries three headers: ``Qrgate-Device`` (the device id),
``Qrgate-Timestamp`` (Unix seconds) and ``Qrgate-Signature`` (base64url of the raw r||s
ES256 signature, the form WebCrypto produces). The signed input binds the method, the
target (the path, plus ``?`` and the raw query string when there is one), the time and the
SHA-256 of the exact body bytes, so a signature cannot be moved to another request.
Replays inside the clock-skew window only ever meet single-use state transitions, or are
recognised as the same request repeated (``qrgate.decisions``).

Only low-S signatures are accepted (``s <= n/2``, as Bitcoin and Ethereum require): ECDSA's
``(r, n - s)`` twin of a valid signature would verify too, so a signature could be varied
without the key. WebCrypto does not normalise ``s``; a client replaces a high ``s`` by
``n - s`` before sending (:func:`sign_request` does).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from qrgate.core.cose import P256_ORDER
from qrgate.errors import BadSignature, Malformed, Unauthenticated

DEVICE_HEADER = "qrgate-device"
TIMESTAMP_HEADER = "qrgate-timestamp"
SIGNATURE_HEADER = "qrgate-signature"
_DOMAIN = b"QGDEV1"


def request_target(path: str, query: str) -> str:
    """What the signature covers of the URL: the path, and the raw query if any."""
    return f"{path}?{query}" if query else path


def signing_input(*, method: str, path: str, timestamp: int, device_id: str, body: bytes) -> bytes:
    """``path`` is the request target: see :func:`request_target`."""
    digest = hashlib.sha256(body).hexdigest()
    return b"\n".join(
        (_DOMAIN, method.upper().encode(), path.encode(), str(timestamp).encode(),
         device_id.encode(), digest.encode())
    )


def sign_request(
    *,
    private_key: ec.EllipticCurvePrivateKey,
    method: str,
    path: str,
    timestamp: int,
    device_id: str,
    body: bytes,
) -> str:
    message = signing_input(
        method=method, path=path, timestamp=timestamp, device_id=device_id, body=body
    )
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_ORDER - s)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    # mutation: stripping "X" too is equivalent: the last character of 64 bytes in
    # base64 carries 2 data bits and 4 zero bits (A, Q, g or w), never X.
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_public_key(sec1: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sec1)
    except ValueError:
        raise Malformed("device public key is not a P-256 point", code="bad_public_key") from None


def verify_request(
    *,
    public_key: ec.EllipticCurvePublicKey,
    signature: str,
    method: str,
    path: str,
    timestamp: int,
    device_id: str,
    body: bytes,
    now: float,
    max_skew: int,
) -> None:
    if abs(now - timestamp) > max_skew:
        # A failed proof of the device, like a bad signature: 401, not an expired resource.
        raise Unauthenticated("device request timestamp is outside the allowed clock skew",
                              code="stale_request")
    try:
        # mutation: more padding is equivalent: the decoder ignores excess padding.
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        raise BadSignature("device signature is not base64url") from None
    if len(raw) != 64:
        raise BadSignature("device signature must be 64 bytes (r||s)")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    # mutation: ">=" or "/ 2" only move the bound to s = n // 2, or to float(n / 2) (at
    # most 2**202 below it): odds of 2**-53 that a real signature lands there, and one
    # exactly at the bound is refused as bad_signature either way.
    if s > P256_ORDER // 2:
        raise BadSignature("device signature must have a low s (s <= n/2)")
    der = encode_dss_signature(r, s)
    message = signing_input(
        method=method, path=path, timestamp=timestamp, device_id=device_id, body=body
    )
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("device signature does not verify") from None


def public_key_bytes(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
