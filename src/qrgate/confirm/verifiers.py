"""Pluggable verifiers (SPEC step 603): the verification server may route a challenge to
the QR verifier (a phone scans a signed code) or to another one. We ship TOTP (RFC 6238) as
the second, so that routing by scene, business id and user preference is real.

A verifier says whether a user can use it and what the relying party must show; the QR
verifier's decision arrives through ``qrgate.confirm.verification``, a TOTP verifier's
through :func:`verify_totp`.
"""

from __future__ import annotations

import hmac
from typing import Protocol

import pyotp
from sqlalchemy import Connection, or_, select, update

from qrgate.accounts import directory
from qrgate.core.aead import SecretBox
from qrgate.core.policy import VerifierKind
from qrgate.errors import BadCredentials, Replayed, VerifierUnavailable
from qrgate.storage.models import users

TOTP_PERIOD = 30
TOTP_DIGITS = 6
# One step either side: enough for phone clock drift, small enough to keep guessing hard.
TOTP_WINDOW = 1


class Verifier(Protocol):
    kind: VerifierKind

    def available_for(self, conn: Connection, user: directory.UserRecord) -> bool: ...


class QrVerifier:
    kind = VerifierKind.QR

    def available_for(self, conn: Connection, user: directory.UserRecord) -> bool:
        return directory.count_active_devices(conn, user_id=user.id) > 0


class TotpVerifier:
    kind = VerifierKind.TOTP

    def available_for(self, conn: Connection, user: directory.UserRecord) -> bool:
        return user.has_totp


REGISTRY: dict[VerifierKind, Verifier] = {
    VerifierKind.QR: QrVerifier(),
    VerifierKind.TOTP: TotpVerifier(),
}


def available_verifiers(
    conn: Connection, user: directory.UserRecord
) -> frozenset[VerifierKind]:
    return frozenset(kind for kind, v in REGISTRY.items() if v.available_for(conn, user))


def _context(user_id: int) -> bytes:
    return f"users.totp_secret:{user_id}".encode()


def set_totp_secret(conn: Connection, *, box: SecretBox, user_id: int, secret: str) -> None:
    conn.execute(
        update(users).where(users.c.id == user_id)
        .values(totp_secret_enc=box.seal(secret.encode(), context=_context(user_id)),
                totp_last_step=None)
    )


def totp_uri(*, secret: str, login: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=login, issuer_name=issuer
    )


def _totp(conn: Connection, *, box: SecretBox, user_id: int) -> tuple[pyotp.TOTP, int | None]:
    row = conn.execute(
        select(users.c.totp_secret_enc, users.c.totp_last_step).where(users.c.id == user_id)
    ).first()
    if row is None or row.totp_secret_enc is None:
        raise VerifierUnavailable("user has no TOTP set up")
    secret = box.open(row.totp_secret_enc, context=_context(user_id)).decode()
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD), row.totp_last_step


def was_last_accepted(conn: Connection, *, box: SecretBox, user_id: int, otp: str) -> bool:
    """True when ``otp`` is the password of the last time step accepted for this user: a
    repeat of the request that used it, not a new guess."""
    totp, last_step = _totp(conn, box=box, user_id=user_id)
    return last_step is not None and hmac.compare_digest(totp.generate_otp(last_step), otp)


def verify_totp(
    conn: Connection, *, box: SecretBox, user_id: int, otp: str, now: float
) -> int:
    """Accepts each time step at most once (compare-and-set on the last used step)."""
    totp, _ = _totp(conn, box=box, user_id=user_id)
    current = int(now) // TOTP_PERIOD
    matched: int | None = None
    # No step before the epoch: there is no such password (pyotp refuses a negative counter).
    for step in range(max(current - TOTP_WINDOW, 0), current + TOTP_WINDOW + 1):
        # Check every step, not just until the first hit, to keep the timing flat.
        if hmac.compare_digest(totp.generate_otp(step), otp) and matched is None:
            matched = step
    if matched is None:
        raise BadCredentials("one-time password is wrong", code="wrong_otp")
    claimed = conn.execute(
        update(users)
        .where(users.c.id == user_id,
               or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < matched))
        .values(totp_last_step=matched)
    )
    if claimed.rowcount != 1:
        raise Replayed("one-time password was already used", code="otp_replayed")
    return matched
