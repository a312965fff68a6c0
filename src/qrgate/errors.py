"""One error hierarchy for every layer of qrgate.

Each subclass carries a stable machine-readable ``code`` (what clients branch on and what
lands in the audit log as the reason) and the HTTP status the API maps it to. Callers can
tell malformed input from a forged code from an expired challenge by type alone.

Every code qrgate can emit is listed in :data:`ErrorCode`: ``code=`` arguments are typed
with it, so mypy refuses a code that is not listed, and the OpenAPI document enumerates
exactly this list.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

ErrorCode = Literal[
    # malformed or oversized input
    "malformed", "malformed_code", "unsupported_version", "payload_too_large",
    "headers_too_large", "invalid_field", "invalid_request", "invalid_amount",
    "unreadable_image", "bad_public_key", "bad_key_material", "unsupported_key",
    "kid_mismatch", "bad_jwks", "reserved_claim", "bad_ocra_suite", "bad_ocra_input",
    "bad_chain", "bad_webhook_url", "bad_unlock_proof",
    # cryptographic failures
    "bad_signature", "unknown_key", "wrong_code_type", "decryption_failed",
    # callers
    "missing_api_key", "bad_api_key", "missing_signature",
    "missing_credentials", "unknown_device", "device_unbound", "stale_request",
    "bad_credentials", "wrong_browser",
    # lookups and conflicts
    "not_found", "challenge_not_found", "transaction_not_found", "token_not_found",
    "user_not_found", "device_not_found", "app_not_found", "org_not_found",
    "enrolment_not_found", "api_key_not_found", "webhook_not_found", "event_not_found",
    "access_pass_not_found",
    "method_not_allowed",
    "conflict", "org_exists", "app_exists", "user_exists", "token_exists",
    # challenge lifecycle and checks
    "expired", "not_yet_valid", "replayed", "already_decided", "scanned_twice",
    "response_replayed", "otp_replayed", "already_activated", "code_superseded",
    "not_bound", "wrong_device", "wrong_user", "number_mismatch", "number_required",
    "locked", "user_locked", "token_locked", "frozen", "verifier_unavailable",
    "wrong_verifier", "wrong_issuer", "field_mismatch", "not_pending",
    "not_scanned", "not_signed", "wrong_otp", "wrong_response", "resync_failed",
    "token_inactive", "no_token", "unknown_parent", "tampered_chain", "chain_too_long",
    "broken_chain", "text_mismatch",
    # real life with the phone app: lost phones, no network, app lock, reports
    "access_pass_expired", "access_pass_used", "wrong_offline_code", "offline_unavailable",
    "app_lock_required", "wrong_pin", "pin_locked", "lock_not_set_up", "user_blocked",
    # scheme A, the printed grid card
    "attempt_not_found", "wrong_attempt_token", "no_card", "card_revoked", "card_expired",
    "card_exhausted", "wrong_cell", "wrong_card", "cell_used", "late_answer", "window_open",
    "reissue_limit",
    # the server itself
    "internal_error", "database_unavailable",
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


class QrgateError(Exception):
    """Base of every error qrgate raises on purpose."""

    code: ClassVar[ErrorCode]
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str | None = None, *, code: ErrorCode | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # A subclass instance may narrow its code (e.g. Rejected("...", code="wrong_user")).
        if code is not None:
            self.code = code  # type: ignore[misc]


class _Family(QrgateError):
    """Refusals grouped for their status and for ``except`` clauses, with no code of their
    own: each raise names its code (a family default would be a code nobody emits)."""

    def __init__(self, detail: str, *, code: ErrorCode) -> None:
        super().__init__(detail, code=code)


# --- malformed or oversized input -------------------------------------------------------


class Malformed(QrgateError):
    code: ClassVar[ErrorCode] = "malformed"
    status = 400
    title = "Malformed input"


class MalformedCode(Malformed):
    """A QR payload that does not parse: wrong prefix, bad Base45, bad CBOR, bad COSE."""

    code: ClassVar[ErrorCode] = "malformed_code"
    title = "Malformed QR code"


class UnsupportedVersion(MalformedCode):
    code: ClassVar[ErrorCode] = "unsupported_version"
    title = "Unsupported code version"


class PayloadTooLarge(Malformed):
    code: ClassVar[ErrorCode] = "payload_too_large"
    status = 413
    title = "Payload too large"


class InvalidField(Malformed):
    code: ClassVar[ErrorCode] = "invalid_field"
    status = 422
    title = "Invalid field"


# --- cryptographic failures -------------------------------------------------------------


class BadSignature(QrgateError):
    code: ClassVar[ErrorCode] = "bad_signature"
    status = 401
    title = "Signature does not verify"


class UnknownKey(BadSignature):
    code: ClassVar[ErrorCode] = "unknown_key"
    title = "Unknown or retired key id"


class WrongCodeType(QrgateError):
    code: ClassVar[ErrorCode] = "wrong_code_type"
    status = 422
    title = "Code is of another kind"


class DecryptionFailed(QrgateError):
    code: ClassVar[ErrorCode] = "decryption_failed"
    status = 500
    title = "Stored secret could not be decrypted"


# --- authentication of callers ----------------------------------------------------------


class Unauthenticated(_Family):
    status = 401
    title = "Authentication required"


class Forbidden(_Family):
    status = 403
    title = "Not allowed"


class BadCredentials(Unauthenticated):
    code: ClassVar[ErrorCode] = "bad_credentials"
    title = "Wrong password or code"

    def __init__(self, detail: str | None = None, *, code: ErrorCode | None = None) -> None:
        QrgateError.__init__(self, detail, code=code)  # a code of its own: naming one is optional


# --- lookups ----------------------------------------------------------------------------


class NotFound(QrgateError):
    code: ClassVar[ErrorCode] = "not_found"
    status = 404
    title = "Not found"


class Conflict(QrgateError):
    code: ClassVar[ErrorCode] = "conflict"
    status = 409
    title = "Conflict"


# --- challenge lifecycle ----------------------------------------------------------------


class Expired(QrgateError):
    code: ClassVar[ErrorCode] = "expired"
    status = 410
    title = "Expired"


class Replayed(QrgateError):
    code: ClassVar[ErrorCode] = "replayed"
    status = 409
    title = "Already used"


class AlreadyDecided(Replayed):
    code: ClassVar[ErrorCode] = "already_decided"
    title = "Challenge already decided"


class Superseded(QrgateError):
    """A rotated-out code: the page shows a newer one."""

    code: ClassVar[ErrorCode] = "code_superseded"
    status = 410
    title = "Code was replaced by a newer one"


class NotBound(QrgateError):
    code: ClassVar[ErrorCode] = "not_bound"
    status = 403
    title = "Device is not bound to this user"


class WrongDevice(NotBound):
    code: ClassVar[ErrorCode] = "wrong_device"
    title = "Challenge was scanned by another device"


class NumberMismatch(QrgateError):
    code: ClassVar[ErrorCode] = "number_mismatch"
    status = 403
    title = "Number does not match"


class Locked(QrgateError):
    code: ClassVar[ErrorCode] = "locked"
    status = 423
    title = "Locked after too many failures"


class Frozen(Locked):
    code: ClassVar[ErrorCode] = "frozen"
    title = "Account or device is frozen"


class Blocked(Locked):
    """New requests paused after the user's "this wasn't me" (qrgate.accounts.reports)."""

    code: ClassVar[ErrorCode] = "user_blocked"
    title = "Paused after the user's report"


class VerifierUnavailable(QrgateError):
    code: ClassVar[ErrorCode] = "verifier_unavailable"
    status = 409
    title = "Verifier not available for this user"


class Rejected(_Family):
    """A check failed in a way that has no more specific type; ``code`` says which check."""

    status = 403
    title = "Rejected"


# --- the server itself --------------------------------------------------------------------


class DatabaseUnavailable(QrgateError):
    """The database refused or dropped the connection: the request may be retried."""

    code: ClassVar[ErrorCode] = "database_unavailable"
    status = 503
    title = "Database unavailable"
