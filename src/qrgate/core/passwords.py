"""Password hashing with scrypt (RFC 7914) from ``cryptography``.

Passwords confirm a device enrolment and start a grid card sign-in (scheme A); a
memory-hard cost (about 0.1 s of one core) is what makes a stolen hash expensive, so those
routes run it in a worker thread, never on the event loop.
Format: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``.
"""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

_LOG2_N, _R, _P, _LEN = 15, 8, 1, 32


def hash_password(password: str, *, salt: bytes) -> str:
    digest = _derive(password, salt=salt, log2_n=_LOG2_N, r=_R, p=_P)
    return "$".join(
        ("scrypt", str(_LOG2_N), str(_R), str(_P), _b64(salt), _b64(digest))
    )


def new_password_hash(password: str) -> str:
    """A hash with a fresh random salt: the stored form of a new password."""
    return hash_password(password, salt=os.urandom(16))


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, log2_n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _derive(password, salt=base64.b64decode(salt), log2_n=int(log2_n),
                         r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


def _derive(password: str, *, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_LEN, n=2**log2_n, r=r, p=p).derive(password.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
