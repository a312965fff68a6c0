"""Wire models of the app lock (``/v1/devices/me/lock`` and the decision's ``unlock``).

Binary fields are base64url without padding; the pattern refuses a length no encoding has,
so decoding them never fails past validation.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from qrgate.core.app_lock import PinProof, UnlockProof, WebAuthnAssertion


def _b64u(max_chars: int, *, min_chars: int = 2) -> object:
    return StringConstraints(
        min_length=min_chars, max_length=max_chars,
        pattern=r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$")


# 32 bytes: an HMAC-SHA256 proof or a PIN key.
B64u32 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
# Sized so the largest body (a registration with its unlock) fits QRGATE_MAX_BODY_BYTES'
# default: credential ids are at most 1023 bytes, client data a few hundred, and
# attestation "none" (what the options ask for) carries no certificates.
CredentialId = Annotated[str, _b64u(1366)]
ClientData = Annotated[str, _b64u(1500)]
AuthenticatorData = Annotated[str, _b64u(1024)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PinUnlockIn(_Strict):
    method: Literal["pin"]
    proof: B64u32 = Field(description="HMAC-SHA256 under the PIN key of the unlock message")


class WebAuthnUnlockIn(_Strict):
    method: Literal["webauthn"]
    credential_id: CredentialId
    authenticator_data: AuthenticatorData
    client_data_json: ClientData
    signature: Annotated[str, _b64u(200)]
    user_handle: Annotated[str, _b64u(128)] | None = None


UnlockIn = Annotated[PinUnlockIn | WebAuthnUnlockIn, Field(discriminator="method")]


class PinIn(_Strict):
    key: B64u32 = Field(description="PBKDF2-SHA256(PIN, 'qrgate-pin:' + device id), 32 bytes")
    unlock: UnlockIn | None = Field(default=None,
                                    description="Needed once a lock is set: covers the change")


class LockOffIn(_Strict):
    unlock: UnlockIn


class RegistrationResponseIn(_Strict):
    client_data_json: ClientData = Field(alias="clientDataJSON")
    attestation_object: Annotated[str, _b64u(6000)] = Field(alias="attestationObject")
    transports: list[Annotated[str, StringConstraints(pattern=r"^[a-z-]{1,20}$")]] = Field(
        default_factory=list, max_length=8)


class RegistrationCredentialIn(_Strict):
    id: CredentialId
    raw_id: CredentialId = Field(alias="rawId")
    type: Literal["public-key"]
    response: RegistrationResponseIn
    authenticator_attachment: Literal["platform", "cross-platform"] | None = Field(
        default=None, alias="authenticatorAttachment")


class WebAuthnIn(_Strict):
    credential: RegistrationCredentialIn = Field(
        description="PublicKeyCredential of navigator.credentials.create, as JSON")
    unlock: UnlockIn = Field(description="An unlock with the PIN over the change")


class LockOut(BaseModel):
    pin: bool
    webauthn: bool
    credential_id: str | None
    pin_failures: int
    pin_locked: bool


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unlock_proof(unlock: PinUnlockIn | WebAuthnUnlockIn | None) -> UnlockProof | None:
    if unlock is None:
        return None
    if isinstance(unlock, PinUnlockIn):
        return PinProof(proof=decode(unlock.proof))
    return WebAuthnAssertion(
        credential_id=decode(unlock.credential_id),
        authenticator_data=decode(unlock.authenticator_data),
        client_data_json=decode(unlock.client_data_json), signature=decode(unlock.signature),
        user_handle=None if unlock.user_handle is None else decode(unlock.user_handle))
