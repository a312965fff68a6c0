"""Encryption of secrets at rest (TOTP seeds and the like) under the server's KEK.

Format: ``version (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext and tag``.

The caller's ``context`` (for example ``b"users.totp_secret:42"``) is authenticated but not
stored, so a ciphertext copied into another row or column no longer opens. The version byte
is authenticated too, so a future format cannot be confused with this one.

Nonces are random. With 96-bit random nonces one key stays safe for about 2**32 seals,
far more than the number of secrets a qrgate server stores; rotate the KEK long before.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qrgate.errors import DecryptionFailed, InvalidField

KEY_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
VERSION: Final = b"\x01"
OVERHEAD: Final = len(VERSION) + NONCE_LEN + TAG_LEN


class SecretBox:
    __slots__ = ("_aead",)

    def __init__(self, kek: bytes) -> None:
        if not isinstance(kek, bytes) or len(kek) != KEY_LEN:
            raise InvalidField("the KEK must be exactly 32 bytes", code="bad_key_material")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "SecretBox(<redacted>)"

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, VERSION + context)

    def open(self, ciphertext: bytes, *, context: bytes) -> bytes:
        if len(ciphertext) < OVERHEAD or ciphertext[:1] != VERSION:
            raise DecryptionFailed("unknown format or truncated ciphertext")
        nonce = ciphertext[1 : 1 + NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, ciphertext[1 + NONCE_LEN :], VERSION + context)
        except InvalidTag as exc:
            raise DecryptionFailed() from exc
