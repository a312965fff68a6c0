"""Device request signatures: how a bound phone proves it holds its device key.

Every device request carries three headers: ``Qrgate-Device`` (the device id),
``Qrgate-Timestamp`` (Unix seconds) and ``Qrgate-Signature`` (base64url of the raw r||s
ES256 signature, the form WebCrypto produces). The signed input binds the method, the path,
the time and the SHA-256 of the exact body bytes, so a signature cannot be moved to another
request. Replays inside the clock-skew window only ever meet single-use state transitions.
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

from qrgate.errors import BadSignature, Expired, Malformed

DEVICE_HEADER = "qrgate-device"
TIMESTAMP_HEADER = "qrgate-timestamp"
SIGNATURE_HEADER = "qrgate-signature"
_DOMAIN = b"QGDEV1"


def signing_input(*, method: str, path: str, timestamp: int, device_id: str, body: bytes) -> bytes:
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
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
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
        raise Expired("device request timestamp is outside the allowed clock skew",
                      code="stale_request")
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        raise BadSignature("device signature is not base64url") from None
    if len(raw) != 64:
        raise BadSignature("device signature must be 64 bytes (r||s)")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    message = signing_input(
        method=method, path=path, timestamp=timestamp, device_id=device_id, body=body
    )
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("device signature does not verify") from None


def public_key_bytes(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
