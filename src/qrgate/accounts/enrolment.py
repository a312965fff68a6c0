"""Binding a phone to a user: one-time enrolment, confirmed by password or a code shown once.

``begin_enrolment`` stores only digests of the QR secret and of the confirmation code;
``complete_enrolment`` consumes the enrolment with one conditional UPDATE, so a code used
twice, even on two nodes at once, binds one device.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from qrgate.accounts import directory
from qrgate.accounts.tokens import digest, matches, new_id, new_numeric_code, new_secret
from qrgate.core.enrolment import EnrolCode, issue_enrol_code
from qrgate.core.keyring import KeyRing
from qrgate.errors import BadCredentials, Expired, Locked, NotFound, Replayed
from qrgate.storage.models import devices, enrolments


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


def begin_enrolment(
    conn: Connection,
    *,
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
            id=enrolment_id, user_id=user.id, app_id=app.id, secret_hash=digest(secret),
            confirm_code_hash=digest(confirm_code), attempts=0, created_at=now,
            expires_at=expires_at,
        )
    )
    code = issue_enrol_code(
        enrolment_id=enrolment_id, secret=secret, org_id=app.org_id, login=user.login,
        server_url=server_url, issuer=issuer, now=int(now), expires_at=int(expires_at),
        keyring=keyring,
    )
    return EnrolmentStart(enrolment_id=enrolment_id, code=code, confirm_code=confirm_code,
                          expires_at=expires_at)


def complete_enrolment(
    conn: Connection,
    *,
    code: EnrolCode,
    public_key: bytes,
    client_app_id: str,
    device_name: str,
    password: str | None,
    confirm_code: str | None,
    now: float,
    max_failures: int,
) -> EnrolmentDone:
    """Raises ``BadCredentials`` on a wrong confirmation; the caller then records the
    failure with :func:`count_failed_confirmation` in a transaction of its own, so the count
    survives the rollback of this one."""
    parsed = code
    row = conn.execute(select(enrolments).where(enrolments.c.id == parsed.enrolment_id)).first()
    if row is None or not matches(parsed.secret, row.secret_hash):
        raise NotFound("no such enrolment", code="enrolment_not_found")
    if row.used_at is not None:
        raise Replayed("enrolment code was already used")
    if now >= row.expires_at:
        raise Expired("enrolment expired")
    if row.attempts >= max_failures:
        raise Locked("too many wrong confirmations for this enrolment")
    if not _confirmed(conn, user_id=row.user_id, stored_code=row.confirm_code_hash,
                      password=password, confirm_code=confirm_code):
        raise BadCredentials("password or confirmation code is wrong")
    device_id = new_id()
    consumed = conn.execute(
        update(enrolments)
        .where(enrolments.c.id == row.id, enrolments.c.used_at.is_(None),
               enrolments.c.expires_at > now, enrolments.c.attempts < max_failures)
        .values(used_at=now, device_id=device_id)
        .returning(enrolments.c.user_id)
    ).first()
    if consumed is None:
        raise Replayed("enrolment code was already used")
    user = directory.get_user(conn, row.user_id)
    directory.ensure_not_frozen(user)
    conn.execute(
        insert(devices).values(
            id=device_id, user_id=user.id, client_app_id=client_app_id, name=device_name,
            public_key=public_key, status="active", created_at=now,
        )
    )
    return EnrolmentDone(device=directory.get_device(conn, device_id), user=user)


def count_failed_confirmation(conn: Connection, *, enrolment_id: str) -> None:
    conn.execute(
        update(enrolments)
        .where(enrolments.c.id == enrolment_id, enrolments.c.used_at.is_(None))
        .values(attempts=enrolments.c.attempts + 1)
    )


def _confirmed(
    conn: Connection,
    *,
    user_id: int,
    stored_code: bytes,
    password: str | None,
    confirm_code: str | None,
) -> bool:
    if confirm_code is not None:
        return matches(confirm_code, stored_code)
    if password is not None:
        return directory.check_password(conn, user_id=user_id, password=password)
    return False
