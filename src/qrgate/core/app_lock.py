"""App lock, the pure part: what an unlock proves and how a PIN proof is checked.

An application's policy may require that approvals come from a *locked* phone app: one
that asks its user for a PIN or for the platform authenticator (fingerprint, face) before
it approves, and proves to the server that it did. The proof travels with the decision it
unlocks and is bound to it, so it cannot be replayed for anything else:

1. The app and the server each compute the *unlock message*, ``decision_message``:
   SHA-256 of ``QGUNLOCK1 \\n challenge_id \\n decision \\n number`` (``-`` without a
   number). A challenge is decided once, so the message is single-use.
2. With a PIN, the app derives ``k = PBKDF2-SHA256(PIN, "qrgate-pin:" + device_id,
   PIN_ITERATIONS)`` (WebCrypto) and sends ``HMAC-SHA256(k, message)``. The server holds
   ``k`` (registered once, sealed at rest) and compares in constant time
   (``verify_pin_proof``). Wrong proofs are counted per device; at the limit the PIN is
   refused for good (``check_pin_budget``).
3. With the platform authenticator, the app sends a WebAuthn assertion made with user
   verification whose challenge is the message; the service checks it with py_webauthn.

Changing or removing a lock is itself unlocked (``change_message``), so whoever holds the
unlocked phone cannot simply replace the PIN.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from qrgate.errors import BadCredentials, Locked, Malformed

PIN_KEY_LEN: Final = 32
# What the app uses (js/shared/lock.js); the server never sees the PIN, only k.
PIN_ITERATIONS: Final = 310_000
_DECISION_DOMAIN: Final = "QGUNLOCK1"
_CHANGE_DOMAIN: Final = "QGLOCKSET1"


class UnlockMethod(StrEnum):
    PIN = "pin"
    WEBAUTHN = "webauthn"


class LockChange(StrEnum):
    """What a change of the lock does; part of the message its proof covers."""

    SET_PIN = "set_pin"
    ADD_WEBAUTHN = "add_webauthn"
    TURN_OFF = "turn_off"


@dataclass(frozen=True, kw_only=True)
class PinProof:
    proof: bytes


@dataclass(frozen=True, kw_only=True)
class WebAuthnAssertion:
    """The parts of a WebAuthn assertion (``navigator.credentials.get``) the server needs."""

    credential_id: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes
    user_handle: bytes | None = None


UnlockProof = PinProof | WebAuthnAssertion


def decision_message(*, challenge_id: str, decision: str, number: int | None) -> bytes:
    """The 32 bytes an unlock proof of this decision covers (step 1 above)."""
    shown = "-" if number is None else str(number)
    text = "\n".join((_DECISION_DOMAIN, challenge_id, decision, shown))
    return hashlib.sha256(text.encode()).digest()


def change_message(*, device_id: str, change: LockChange, material: bytes = b"") -> bytes:
    """The 32 bytes the proof of a change of the lock covers: the device, the change, and
    the digest of what is being set (the new PIN key, the new credential id)."""
    text = "\n".join((_CHANGE_DOMAIN, device_id, change.value,
                      hashlib.sha256(material).hexdigest()))
    return hashlib.sha256(text.encode()).digest()


def pin_proof(*, key: bytes, message: bytes) -> bytes:
    """What the app sends for a PIN unlock (the Python phone simulator and tests use it)."""
    return hmac.new(key, message, hashlib.sha256).digest()


def check_pin_key(key: bytes) -> bytes:
    if len(key) != PIN_KEY_LEN:
        raise Malformed(f"a PIN key is {PIN_KEY_LEN} bytes", code="bad_unlock_proof")
    return key


def check_pin_budget(*, failures: int, max_failures: int) -> None:
    """Refuse the PIN for good once ``max_failures`` wrong ones were counted."""
    if failures >= max_failures:
        raise Locked("too many wrong PINs: unlock with the fingerprint or enrol the phone "
                     "again", code="pin_locked")


def verify_pin_proof(*, expected_key: bytes, message: bytes, proof: bytes) -> None:
    if not hmac.compare_digest(pin_proof(key=expected_key, message=message), proof):
        raise BadCredentials("wrong PIN", code="wrong_pin")
