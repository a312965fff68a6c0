"""One error hierarchy for every layer of qrgate.

Each subclass carries a stable machine-readable ``code`` (what clients branch on and what
lands in the audit log as the reason) and the HTTP status the API maps it to. Callers can
tell malformed input from a forged code from an expired challenge by type alone.
"""

from __future__ import annotations

from typing import ClassVar


class QrgateError(Exception):
    """Base of every error qrgate raises on purpose."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # A subclass instance may narrow its code (e.g. Rejected("...", code="wrong_user")).
        if code is not None:
            self.code = code  # type: ignore[misc]


# --- malformed or oversized input -------------------------------------------------------


class Malformed(QrgateError):
    code = "malformed"
    status = 400
    title = "Malformed input"


class MalformedCode(Malformed):
    """A QR payload that does not parse: wrong prefix, bad Base45, bad CBOR, bad COSE."""

    code = "malformed_code"
    title = "Malformed QR code"


class UnsupportedVersion(MalformedCode):
    code = "unsupported_version"
    title = "Unsupported code version"


class PayloadTooLarge(Malformed):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class InvalidField(Malformed):
    code = "invalid_field"
    status = 422
    title = "Invalid field"


# --- cryptographic failures -------------------------------------------------------------


class BadSignature(QrgateError):
    code = "bad_signature"
    status = 401
    title = "Signature does not verify"


class UnknownKey(BadSignature):
    code = "unknown_key"
    title = "Unknown or retired key id"


class WrongCodeType(QrgateError):
    code = "wrong_code_type"
    status = 422
    title = "Code is of another kind"


class DecryptionFailed(QrgateError):
    code = "decryption_failed"
    status = 500
    title = "Stored secret could not be decrypted"


# --- authentication of callers ----------------------------------------------------------


class Unauthenticated(QrgateError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(QrgateError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class BadCredentials(Unauthenticated):
    code = "bad_credentials"
    title = "Wrong password or code"


# --- lookups ----------------------------------------------------------------------------


class NotFound(QrgateError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(QrgateError):
    code = "conflict"
    status = 409
    title = "Conflict"


# --- challenge lifecycle ----------------------------------------------------------------


class Expired(QrgateError):
    code = "expired"
    status = 410
    title = "Expired"


class Replayed(QrgateError):
    code = "replayed"
    status = 409
    title = "Already used"


class AlreadyDecided(Replayed):
    code = "already_decided"
    title = "Challenge already decided"


class Superseded(QrgateError):
    """A rotated-out code: the page shows a newer one."""

    code = "code_superseded"
    status = 410
    title = "Code was replaced by a newer one"


class NotBound(QrgateError):
    code = "not_bound"
    status = 403
    title = "Device is not bound to this user"


class WrongDevice(NotBound):
    code = "wrong_device"
    title = "Challenge was scanned by another device"


class NumberMismatch(QrgateError):
    code = "number_mismatch"
    status = 403
    title = "Number does not match"


class Locked(QrgateError):
    code = "locked"
    status = 423
    title = "Locked after too many failures"


class Frozen(Locked):
    code = "frozen"
    title = "Account or device is frozen"


class VerifierUnavailable(QrgateError):
    code = "verifier_unavailable"
    status = 409
    title = "Verifier not available for this user"


class Rejected(QrgateError):
    """A check failed in a way that has no more specific type; ``code`` says which check."""

    code = "rejected"
    status = 403
    title = "Rejected"
