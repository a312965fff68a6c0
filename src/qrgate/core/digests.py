"""The stored form of secrets that are only ever compared, never read back: API keys,
browser-binding tokens, enrolment secrets and confirmation codes, token client ids,
temporary access passes, grid card cells.

HMAC-SHA256 under a key derived from the key-encryption key, which the database does not
hold. A plain hash would do for a 256-bit secret, but not for an 8-digit confirmation code:
its 10^8 values are searched in minutes once the database leaks. Keyed, the stored digest
is useless without the KEK as well. Each kind of secret has its own ``purpose`` so a digest
stored for one can never match as another.

The input is SHA-256(secret), so that digests stored before keying (plain SHA-256) can be
brought under the key in place (:meth:`SecretDigests.rekey`) without knowing the secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Purpose = Literal["api_key", "browser_token", "enrol_secret", "enrol_confirm", "token_client",
                  "access_pass", "gridcard_cell", "gridcard_answer_token"]


class SecretDigests:
    __slots__ = ("_key",)

    def __init__(self, kek: bytes) -> None:
        # mutation: dropping salt=None is equivalent: None is HKDF's default (a zero salt).
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=b"qrgate secret digests v1").derive(kek)

    def __repr__(self) -> str:
        return "SecretDigests(<redacted>)"

    def digest(self, secret: str, *, purpose: Purpose) -> bytes:
        return self.rekey(hashlib.sha256(secret.encode()).digest(), purpose=purpose)

    def matches(self, secret: str, stored: bytes, *, purpose: Purpose) -> bool:
        return hmac.compare_digest(self.digest(secret, purpose=purpose), stored)

    def rekey(self, plain_digest: bytes, *, purpose: Purpose) -> bytes:
        """The keyed digest of a secret whose plain SHA-256 is ``plain_digest``."""
        return hmac.digest(self._key, purpose.encode() + b"\0" + plain_digest, "sha256")
