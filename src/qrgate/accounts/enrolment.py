"""Binding a phone to a user: one-time enrolment, confirmed by password or a code shown once.

``begin_enrolment`` stores only keyed digests of the QR secret and of the confirmation
code; ``find_pending`` and ``confirmed`` check the code and the confirmation outside any
write transaction; ``complete_enrolment`` consumes the enrolment with one conditional
UPDATE, so a code used twice, even on two nodes at once, binds one device.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id, new_numeric_code, new_secret
from qrgate.core.aead import SecretBox
from qrgate.core.digests import SecretDigests
from qrgate.core.enrolment import EnrolCode, issue_enrol_code
from qrgate.core.keyring import KeyRing
from qrgate.core.passwords import verify_password
from qrgate.errors import BadCredentials, Expired, Locked, NotFound, Replayed
from qrgate.storage.models import devices, enrolments, users


@dataclass(frozen=True, kw_only=True)
class EnrolmentStart:
    enrolment_id: str
    code: str
    confirm_code: str
    expires_at: float


@dataclass(frozen=True, kw_only=True)
class EnrolmentDone:
    device: directory.DeviceRecord
    user: directory.UserRecord
    # Handed to the phone once, for offline approval codes (qrgate.confirm.offline).
    offline_secret: bytes


def begin_enrolment(
    conn: Connection,
    *,
    digests: SecretDigests,
    app: directory.AppRecord,
    user: directory.UserRecord,
    server_url: str,
    issuer: str,
    keyring: KeyRing,
    now: float,
    ttl: int,
) -> EnrolmentStart:
    directory.ensure_not_frozen(user)
    enrolment_id, secret, confirm_code = new_id(), new_secret(), new_numeric_code(8)
    expires_at = now + ttl
    conn.execute(
        insert(enrolments).values(
            id=enrolment_id, user_id=user.id, app_id=app.id,
            secret_hash=digests.digest(secret, purpose="enrol_secret"),
            confirm_code_hash=digests.digest(confirm_code, purpose="enrol_confirm"),
            attempts=0, created_at=now, expires_at=expires_at,
        )
    )
    code = issue_enrol_code(
        enrolment_id=enrolment_id, secret=secret, org_id=app.org_id, login=user.login,
        server_url=server_url, issuer=issuer, now=int(now), expires_at=int(expires_at),
        keyring=keyring,
    )
    return EnrolmentStart(enrolment_id=enrolment_id, code=code, confirm_code=confirm_code,
                          expires_at=expires_at)


@dataclass(frozen=True, kw_only=True)
class PendingEnrolment:
    """An enrolment the code names, still usable, with what its confirmation is checked
    against. Read first, so the password (scrypt, tens of milliseconds) is checked outside
    any write transaction: a slow hash must not hold the database's write lock."""

    enrolment_id: str
    user_id: int
    confirm_code_hash: bytes
    password_hash: str | None


def find_pending(conn: Connection, *, digests: SecretDigests, code: EnrolCode, now: float,
                 max_failures: int) -> PendingEnrolment:
    row = conn.execute(
        select(enrolments, users.c.password_hash)
        .join(users, users.c.id == enrolments.c.user_id)
        .where(enrolments.c.id == code.enrolment_id)
    ).first()
    if row is None or not digests.matches(code.secret, row.secret_hash,
                                          purpose="enrol_secret"):
        raise NotFound("no such enrolment", code="enrolment_not_found")
    if row.used_at is not None:
        raise Replayed("enrolment code was already used")
    if now >= row.expires_at:
        raise Expired("enrolment expired")
    if row.attempts >= max_failures:
        raise Locked("too many wrong confirmations for this enrolment")
    return PendingEnrolment(enrolment_id=row.id, user_id=row.user_id,
                            confirm_code_hash=row.confirm_code_hash,
                            password_hash=row.password_hash)


def confirmed(pending: PendingEnrolment, *, digests: SecretDigests, password: str | None,
              confirm_code: str | None) -> bool:
    """Whether the user confirmed with the code shown once or their password (CPU-bound:
    run it off the event loop)."""
    if confirm_code is not None:
        return digests.matches(confirm_code, pending.confirm_code_hash, purpose="enrol_confirm")
    if password is not None and pending.password_hash is not None:
        return verify_password(password, pending.password_hash)
    return False


def complete_enrolment(
    conn: Connection,
    *,
    box: SecretBox,
    pending: PendingEnrolment,
    confirmed: bool,
    public_key: bytes,
    client_app_id: str,
    device_name: str,
    now: float,
    max_failures: int,
) -> EnrolmentDone:
    """Raises ``BadCredentials`` when not ``confirmed``; the caller then records the failure
    with :func:`count_failed_confirmation` in a transaction of its own, so the count
    survives the rollback of this one."""
    if not confirmed:
        raise BadCredentials("password or confirmation code is wrong")
    device_id = new_id()
    consumed = conn.execute(
        update(enrolments)
        .where(enrolments.c.id == pending.enrolment_id, enrolments.c.used_at.is_(None),
               enrolments.c.expires_at > now, enrolments.c.attempts < max_failures)
        .values(used_at=now, device_id=device_id)
        .returning(enrolments.c.user_id)
    ).first()
    if consumed is None:
        raise Replayed("enrolment code was already used")
    user = directory.get_user(conn, pending.user_id)
    return bind_device(conn, box=box, user=user, device_id=device_id, public_key=public_key,
                       client_app_id=client_app_id, device_name=device_name, now=now)


def bind_device(conn: Connection, *, box: SecretBox, user: directory.UserRecord,
                device_id: str, public_key: bytes, client_app_id: str, device_name: str,
                now: float) -> EnrolmentDone:
    """Store a new phone of ``user`` with its device key and a fresh offline secret."""
    directory.ensure_not_frozen(user)
    offline_secret = new_offline_secret()
    conn.execute(
        insert(devices).values(
            id=device_id, user_id=user.id, client_app_id=client_app_id, name=device_name,
            public_key=public_key, status="active", created_at=now,
            offline_secret_enc=box.seal(offline_secret,
                                        context=offline_secret_context(device_id)),
        )
    )
    return EnrolmentDone(device=directory.get_device(conn, device_id), user=user,
                         offline_secret=offline_secret)


def new_offline_secret() -> bytes:
    # 32 bytes: the HMAC-SHA256 key size of the offline codes' OCRA suite.
    return secrets.token_bytes(32)


def offline_secret_context(device_id: str) -> bytes:
    return f"devices.offline_secret:{device_id}".encode()


def count_failed_confirmation(conn: Connection, *, enrolment_id: str) -> None:
    conn.execute(
        update(enrolments)
        .where(enrolments.c.id == enrolment_id, enrolments.c.used_at.is_(None))
        .values(attempts=enrolments.c.attempts + 1)
    )
