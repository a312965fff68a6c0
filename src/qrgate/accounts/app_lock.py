"""App lock, the service: a device's PIN key and platform credential, and the unlock
checks that approvals and changes of the lock go through.

Step by step (the pure part, messages and PIN proofs, is ``qrgate.core.app_lock``):

1. *PIN first.* The app derives a key from the PIN and registers it (``set_pin``); the
   server keeps it sealed under the KEK with the device id as context.
2. *Then, optionally, the fingerprint or face.* ``begin_webauthn`` hands out WebAuthn
   creation options (platform authenticator, user verification required, ES256) whose
   challenge is the sealed time of the request, so nothing is stored between the two steps
   and a challenge opens only for this device, for ``REGISTRATION_TTL`` seconds;
   ``complete_webauthn`` checks the attestation with py_webauthn and keeps the credential.
   A PIN must exist first: a changed fingerprint (which may invalidate the credential)
   then never locks the user out, the PIN is the fallback.
3. *Approvals.* ``require_unlock`` runs inside the decision's transaction: when the
   application's policy says ``require_app_lock``, an approval needs a proof over its own
   decision (``app_lock_required`` without one); a proof sent anyway is checked as well.
   Denials need none: a user can always say no.
4. *Wrong PINs* are counted per device by ``after_failure``, in the transaction that
   records the refusal (the decision's own rolled back); a right PIN resets the count. At
   ``max_pin_failures`` the PIN is refused for good (``pin_locked``): a fingerprint unlock
   may set a new PIN, else the phone is enrolled again. (Guesses sent at the same instant
   each pass the check before any is counted: the bound holds to within the number of
   requests one device has in flight, each of which also counts against its challenge.)
5. *Changes* (a new PIN, a credential, turning the lock off) are unlocked too, once a lock
   exists: whoever holds the unlocked phone cannot replace the lock it has.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update
from webauthn import (
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from qrgate.accounts import directory
from qrgate.core.app_lock import (
    LockChange,
    PinProof,
    UnlockProof,
    WebAuthnAssertion,
    change_message,
    check_pin_budget,
    check_pin_key,
    decision_message,
    verify_pin_proof,
)
from qrgate.core.confirm import Decision
from qrgate.errors import DecryptionFailed, Forbidden, NotFound, QrgateError, Rejected
from qrgate.runtime import Runtime
from qrgate.storage.models import devices

REGISTRATION_TTL: Final = 300
_ES256: Final = COSEAlgorithmIdentifier.ECDSA_SHA_256


@dataclass(frozen=True, kw_only=True)
class LockState:
    """A device's lock as the server knows it (what the app's settings screen shows)."""

    pin: bool
    webauthn: bool
    pin_failures: int
    pin_locked: bool
    credential_id: bytes | None


@dataclass(frozen=True, kw_only=True)
class _LockRow:
    device_id: str
    pin_enc: bytes | None
    pin_failures: int
    credential_id: bytes | None
    public_key: bytes | None
    sign_count: int

    @property
    def is_set(self) -> bool:
        return self.pin_enc is not None or self.credential_id is not None


def _load(conn: Connection, device_id: str) -> _LockRow:
    row = conn.execute(
        select(devices.c.lock_pin_enc, devices.c.lock_pin_failures,
               devices.c.webauthn_credential_id, devices.c.webauthn_public_key,
               devices.c.webauthn_sign_count).where(devices.c.id == device_id)
    ).first()
    if row is None:
        raise NotFound("no such device", code="device_not_found")
    return _LockRow(device_id=device_id, pin_enc=row.lock_pin_enc,
                    pin_failures=int(row.lock_pin_failures or 0),
                    credential_id=row.webauthn_credential_id,
                    public_key=row.webauthn_public_key,
                    sign_count=int(row.webauthn_sign_count or 0))


def lock_state(rt: Runtime, conn: Connection, *, device_id: str) -> LockState:
    row = _load(conn, device_id)
    return LockState(pin=row.pin_enc is not None, webauthn=row.credential_id is not None,
                     pin_failures=row.pin_failures,
                     pin_locked=row.pin_failures >= rt.settings.max_pin_failures,
                     credential_id=row.credential_id)


def _pin_context(device_id: str) -> bytes:
    return f"devices.lock_pin:{device_id}".encode()


def _challenge_context(device_id: str) -> bytes:
    return f"devices.lock_webauthn_challenge:{device_id}".encode()


def relying_party(rt: Runtime) -> tuple[str, str]:
    """The WebAuthn RP id (the host of the public URL) and the origin the app runs at."""
    parts = urlsplit(rt.settings.public_url)
    return parts.hostname or "", f"{parts.scheme}://{parts.netloc}"


# --- unlocking ---------------------------------------------------------------------------


def require_unlock(rt: Runtime, conn: Connection, *, device_id: str, app_id: int,
                   challenge_id: str, decision: Decision, number: int | None,
                   proof: UnlockProof | None) -> None:
    """Step 3: refuse an approval that the application's policy wants unlocked and that
    carries no valid proof over this very decision."""
    if decision != Decision.APPROVE:
        return
    if proof is None:
        if directory.get_app(conn, app_id).policy.require_app_lock:
            raise Forbidden("this service accepts approvals only from a locked app: unlock "
                            "it with its PIN or fingerprint", code="app_lock_required")
        return
    message = decision_message(challenge_id=challenge_id, decision=decision.value,
                               number=number)
    verify_unlock(rt, conn, device_id=device_id, message=message, proof=proof)


def verify_unlock(rt: Runtime, conn: Connection, *, device_id: str, message: bytes,
                  proof: UnlockProof) -> None:
    row = _load(conn, device_id)
    if isinstance(proof, PinProof):
        _verify_pin(rt, conn, row=row, message=message, proof=proof)
    else:
        _verify_assertion(rt, conn, row=row, message=message, assertion=proof)


def _verify_pin(rt: Runtime, conn: Connection, *, row: _LockRow, message: bytes,
                proof: PinProof) -> None:
    if row.pin_enc is None:
        raise Forbidden("this phone has no PIN set up", code="lock_not_set_up")
    check_pin_budget(failures=row.pin_failures, max_failures=rt.settings.max_pin_failures)
    try:
        key = rt.box.open(row.pin_enc, context=_pin_context(row.device_id))
    except DecryptionFailed:
        raise Rejected("the stored PIN key does not open", code="bad_unlock_proof") from None
    verify_pin_proof(expected_key=key, message=message, proof=proof.proof)
    if row.pin_failures:
        conn.execute(update(devices).where(devices.c.id == row.device_id)
                     .values(lock_pin_failures=0))


def _verify_assertion(rt: Runtime, conn: Connection, *, row: _LockRow, message: bytes,
                      assertion: WebAuthnAssertion) -> None:
    if row.credential_id is None or row.public_key is None:
        raise Forbidden("this phone has no fingerprint or face unlock set up",
                        code="lock_not_set_up")
    if assertion.credential_id != row.credential_id:
        raise Rejected("the assertion is of another credential", code="bad_unlock_proof")
    rp_id, origin = relying_party(rt)
    response: dict[str, Any] = {
        "authenticatorData": _b64u(assertion.authenticator_data),
        "clientDataJSON": _b64u(assertion.client_data_json),
        "signature": _b64u(assertion.signature),
    }
    if assertion.user_handle is not None:
        response["userHandle"] = _b64u(assertion.user_handle)
    credential = {"id": _b64u(assertion.credential_id), "rawId": _b64u(assertion.credential_id),
                  "type": "public-key", "response": response}
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=message, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise Rejected(f"the unlock assertion does not verify: {error}",
                       code="bad_unlock_proof") from None
    # Only forward: a clone that replays an older count loses against the newer one.
    conn.execute(update(devices)
                 .where(devices.c.id == row.device_id,
                        devices.c.webauthn_credential_id == row.credential_id)
                 .values(webauthn_sign_count=max(verified.new_sign_count, row.sign_count)))


def after_failure(rt: Runtime, conn: Connection, *, device_id: str,
                  error: QrgateError) -> None:
    """Step 4: count a wrong PIN, in the transaction that records the refusal."""
    if error.code == "wrong_pin":
        conn.execute(update(devices).where(devices.c.id == device_id)
                     .values(lock_pin_failures=devices.c.lock_pin_failures + 1))


# --- setting the lock up -----------------------------------------------------------------


def _authorise_change(rt: Runtime, conn: Connection, *, row: _LockRow, change: LockChange,
                      material: bytes, proof: UnlockProof | None) -> None:
    """Step 5: once a lock exists, changing it takes an unlock over the change."""
    if not row.is_set:
        return
    if proof is None:
        raise Forbidden("unlock the app to change its lock", code="app_lock_required")
    message = change_message(device_id=row.device_id, change=change, material=material)
    verify_unlock(rt, conn, device_id=row.device_id, message=message, proof=proof)


def set_pin(rt: Runtime, conn: Connection, *, device_id: str, key: bytes,
            proof: UnlockProof | None) -> LockState:
    """Step 1: register (or replace) the key derived from the PIN; the count of wrong
    PINs starts again."""
    check_pin_key(key)
    row = _load(conn, device_id)
    _authorise_change(rt, conn, row=row, change=LockChange.SET_PIN, material=key, proof=proof)
    conn.execute(update(devices).where(devices.c.id == device_id).values(
        lock_pin_enc=rt.box.seal(key, context=_pin_context(device_id)), lock_pin_failures=0))
    return lock_state(rt, conn, device_id=device_id)


def turn_off(rt: Runtime, conn: Connection, *, device_id: str,
             proof: UnlockProof | None) -> LockState:
    row = _load(conn, device_id)
    if not row.is_set:
        raise Forbidden("this phone has no lock", code="lock_not_set_up")
    _authorise_change(rt, conn, row=row, change=LockChange.TURN_OFF, material=b"", proof=proof)
    conn.execute(update(devices).where(devices.c.id == device_id).values(
        lock_pin_enc=None, lock_pin_failures=0, webauthn_credential_id=None,
        webauthn_public_key=None, webauthn_sign_count=None))
    return lock_state(rt, conn, device_id=device_id)


def begin_webauthn(rt: Runtime, conn: Connection, *, device: directory.DeviceRecord,
                   now: float) -> dict[str, Any]:
    """Step 2, first half: creation options for ``navigator.credentials.create``."""
    row = _load(conn, device.id)
    if row.pin_enc is None:
        raise Forbidden("set a PIN first: it is the fallback when the fingerprint changes",
                        code="lock_not_set_up")
    user = directory.get_user(conn, device.user_id)
    rp_id, _ = relying_party(rt)
    challenge = rt.box.seal(struct.pack(">d", now), context=_challenge_context(device.id))
    options = generate_registration_options(
        rp_id=rp_id, rp_name="qrgate", user_name=user.login, user_id=device.id.encode(),
        user_display_name=device.name or user.login, challenge=challenge,
        timeout=REGISTRATION_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=([PublicKeyCredentialDescriptor(id=row.credential_id)]
                             if row.credential_id else None),
        supported_pub_key_algs=[_ES256],
    )
    created: dict[str, Any] = json.loads(options_to_json(options))
    return created


def complete_webauthn(rt: Runtime, conn: Connection, *, device_id: str,
                      credential: dict[str, Any], proof: UnlockProof | None,
                      now: float) -> LockState:
    """Step 2, second half: check the new credential (user verified) and keep it."""
    row = _load(conn, device_id)
    if row.pin_enc is None:
        raise Forbidden("set a PIN first", code="lock_not_set_up")
    challenge = _registration_challenge(rt, credential, device_id=device_id, now=now)
    rp_id, origin = relying_party(rt)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, require_user_verification=True,
            supported_pub_key_algs=[_ES256])
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise Rejected(f"the new credential does not verify: {error}",
                       code="bad_unlock_proof") from None
    _authorise_change(rt, conn, row=row, change=LockChange.ADD_WEBAUTHN,
                      material=verified.credential_id, proof=proof)
    conn.execute(update(devices).where(devices.c.id == device_id).values(
        webauthn_credential_id=verified.credential_id,
        webauthn_public_key=verified.credential_public_key,
        webauthn_sign_count=verified.sign_count))
    return lock_state(rt, conn, device_id=device_id)


def _registration_challenge(rt: Runtime, credential: dict[str, Any], *, device_id: str,
                            now: float) -> bytes:
    """The challenge the client says it signed, if this server issued it to this device
    within ``REGISTRATION_TTL`` seconds."""
    try:
        client_data = json.loads(_unb64u(credential["response"]["clientDataJSON"]))
        challenge = _unb64u(client_data["challenge"])
        (issued,) = struct.unpack(">d", rt.box.open(challenge,
                                                     context=_challenge_context(device_id)))
    except (DecryptionFailed, ValueError, KeyError, TypeError, struct.error):
        raise Rejected("the registration's challenge was not issued to this phone",
                       code="bad_unlock_proof") from None
    if not 0 <= now - issued <= REGISTRATION_TTL:
        raise Rejected("the registration's challenge expired", code="bad_unlock_proof")
    return challenge


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
