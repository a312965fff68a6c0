"""A software WebAuthn platform authenticator (ES256, attestation "none") and the phone's
side of the app lock, so the server's checks run without a browser.

It builds what a browser and authenticator hand the app: clientDataJSON, authenticatorData
(rpIdHash, flags, sign count, attested credential data) and the signature over
``authenticatorData || SHA-256(clientDataJSON)`` (WebAuthn Level 2, §6.1 and §6.3.3).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.clients.phone import PhoneSimulator
from qrgate.core.app_lock import PIN_ITERATIONS, pin_proof

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One credential of a platform authenticator at ``origin`` (the RP id is its host)."""

    origin: str
    user_verified: bool = True
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0

    @property
    def rp_id(self) -> str:
        return urlsplit(self.origin).hostname or ""

    def _flags(self, extra: int = 0) -> int:
        return FLAG_UP | (FLAG_UV if self.user_verified else 0) | extra

    def _client_data(self, kind: str, challenge: bytes) -> bytes:
        return json.dumps({"type": kind, "challenge": b64u(challenge), "origin": self.origin,
                           "crossOrigin": False}).encode()

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """``navigator.credentials.create`` answered, as the app sends it to the server."""
        assert options["rp"]["id"] == self.rp_id
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id))
                    + self.credential_id + self._cose_key())
        auth_data = rp_hash + bytes([self._flags(FLAG_AT)]) + struct.pack(
            ">I", self.sign_count) + attested
        client_data = self._client_data("webauthn.create", unb64u(options["challenge"]))
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64u(self.credential_id), "rawId": b64u(self.credential_id),
                "type": "public-key", "authenticatorAttachment": "platform",
                "response": {"clientDataJSON": b64u(client_data),
                             "attestationObject": b64u(attestation),
                             "transports": ["internal"]}}

    def assert_(self, challenge: bytes, *, credential_id: bytes | None = None,
                count: int | None = None) -> dict[str, Any]:
        """``navigator.credentials.get`` over ``challenge``, as the ``unlock`` object."""
        self.sign_count = self.sign_count + 1 if count is None else count
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([self._flags()])
                     + struct.pack(">I", self.sign_count))
        client_data = self._client_data("webauthn.get", challenge)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"method": "webauthn",
                "credential_id": b64u(credential_id or self.credential_id),
                "authenticator_data": b64u(auth_data), "client_data_json": b64u(client_data),
                "signature": b64u(signature)}


def pin_key(phone: PhoneSimulator, pin: str) -> bytes:
    """What the app derives from the PIN (js/shared/lock.js)."""
    assert phone.device_id is not None
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), f"qrgate-pin:{phone.device_id}".encode(),
                               PIN_ITERATIONS)


def pin_unlock(key: bytes, message: bytes) -> dict[str, str]:
    return {"method": "pin", "proof": b64u(pin_proof(key=key, message=message))}
