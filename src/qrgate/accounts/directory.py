"""Organisations, their applications and API keys, users and their devices.

Plain functions over a SQLAlchemy ``Connection`` that the caller opened in a transaction, so
a caller can put a change and its audit entry in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from qrgate.accounts.tokens import new_api_key
from qrgate.core import inputs
from qrgate.core.digests import SecretDigests
from qrgate.core.policy import AppPolicy, VerifierKind
from qrgate.errors import Blocked, Conflict, Frozen, Locked, NotFound, Unauthenticated
from qrgate.storage.models import api_keys, devices, users
from qrgate.storage.models import applications as apps
from qrgate.storage.models import organisations as orgs


@dataclass(frozen=True, kw_only=True)
class AppRecord:
    id: int
    org_id: int
    org_slug: str
    org_name: str
    business_id: str
    name: str
    origin: str | None
    policy: AppPolicy


@dataclass(frozen=True, kw_only=True)
class UserRecord:
    id: int
    org_id: int
    login: str
    display_name: str
    preferred_verifier: VerifierKind | None
    has_password: bool
    has_totp: bool
    frozen: bool
    failed_attempts: int
    # Until when a "this wasn't me" report pauses new challenges (qrgate.accounts.reports).
    blocked_until: float | None = None


@dataclass(frozen=True, kw_only=True)
class DeviceRecord:
    id: str
    user_id: int
    client_app_id: str
    name: str
    public_key: bytes
    status: str
    created_at: float

    @property
    def active(self) -> bool:
        return self.status == "active"


# --- organisations and applications ---------------------------------------------------


def create_org(conn: Connection, *, slug: str, name: str, now: float) -> int:
    inputs.slug(slug)
    inputs.line(name, what="organisation name")
    try:
        row = conn.execute(
            insert(orgs).values(slug=slug, name=name, created_at=now).returning(orgs.c.id)
        ).one()
    except IntegrityError:
        raise Conflict(f"organisation {slug!r} exists", code="org_exists") from None
    return int(row.id)


def org_id_by_slug(conn: Connection, slug: str) -> int:
    row = conn.execute(select(orgs.c.id).where(orgs.c.slug == slug)).first()
    if row is None:
        raise NotFound(f"no organisation {slug!r}", code="org_not_found")
    return int(row.id)


def create_app(
    conn: Connection,
    *,
    org_id: int,
    business_id: str,
    name: str,
    origin: str | None,
    policy: AppPolicy,
    now: float,
) -> int:
    inputs.business_id(business_id)
    inputs.line(name, what="application name")
    try:
        row = conn.execute(
            insert(apps)
            .values(org_id=org_id, business_id=business_id, name=name, origin=origin,
                    policy=policy.to_dict(), created_at=now)
            .returning(apps.c.id)
        ).one()
    except IntegrityError:
        raise Conflict(f"application {business_id!r} exists", code="app_exists") from None
    return int(row.id)


def set_app_policy(conn: Connection, *, app_id: int, policy: AppPolicy) -> None:
    conn.execute(update(apps).where(apps.c.id == app_id).values(policy=policy.to_dict()))


def app_id_by_business_id(conn: Connection, *, org_id: int, business_id: str) -> int:
    row = conn.execute(
        select(apps.c.id).where(apps.c.org_id == org_id, apps.c.business_id == business_id)
    ).first()
    if row is None:
        raise NotFound(f"no application {business_id!r}", code="app_not_found")
    return int(row.id)


def _app_query() -> Any:
    return select(
        apps.c.id, apps.c.org_id, apps.c.business_id, apps.c.name, apps.c.origin,
        apps.c.policy, orgs.c.slug, orgs.c.name.label("org_name"),
    ).join(orgs, orgs.c.id == apps.c.org_id)


# Per-request lookups, built once (building a statement costs more than running it).
_APP_BY_ID = _app_query().where(apps.c.id == bindparam("b_id"))
_APP_BY_KEY = (
    _app_query()
    .add_columns(api_keys.c.secret_hash, api_keys.c.revoked_at)
    .join(api_keys, api_keys.c.app_id == apps.c.id)
    .where(api_keys.c.prefix == bindparam("b_prefix"))
)
_USER_BY_LOGIN = select(users).where(users.c.org_id == bindparam("b_org"),
                                     users.c.login == bindparam("b_login"))
_USER_BY_ID = select(users).where(users.c.id == bindparam("b_id"))
_DEVICE_BY_ID = select(devices).where(devices.c.id == bindparam("b_id"))
_ACTIVE_DEVICES = (
    select(func.count()).select_from(devices)
    .where(devices.c.user_id == bindparam("b_user"), devices.c.status == "active")
)


def _app_record(row: Any) -> AppRecord:
    return AppRecord(
        id=row.id, org_id=row.org_id, org_slug=row.slug, org_name=row.org_name,
        business_id=row.business_id, name=row.name, origin=row.origin,
        policy=AppPolicy.from_dict(row.policy or {}),
    )


def get_app(conn: Connection, app_id: int) -> AppRecord:
    row = conn.execute(_APP_BY_ID, {"b_id": app_id}).first()
    if row is None:
        raise NotFound("no such application", code="app_not_found")
    return _app_record(row)


def resolve_app(conn: Connection, *, app: AppRecord, business_id: str | None) -> AppRecord:
    """The application a request names by business id, within the caller's organisation
    (an API key may act for another application of its organisation); default its own."""
    if business_id is None or business_id == app.business_id:
        return app
    return get_app(conn, app_id_by_business_id(conn, org_id=app.org_id, business_id=business_id))


# --- API keys ---------------------------------------------------------------------------


def create_api_key(conn: Connection, *, digests: SecretDigests, app_id: int, label: str,
                   now: float) -> str:
    """Returns the full key; only its digest is stored, so this is the one time it is seen."""
    key, prefix, secret = new_api_key()
    conn.execute(
        insert(api_keys).values(app_id=app_id, prefix=prefix,
                                secret_hash=digests.digest(secret, purpose="api_key"),
                                label=label, created_at=now)
    )
    return key


def revoke_api_key(conn: Connection, *, prefix: str, now: float) -> None:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount == 0:
        raise NotFound("no active API key with that prefix", code="api_key_not_found")


@dataclass(frozen=True, kw_only=True)
class ApiKeyRecord:
    app: AppRecord | None
    secret_hash: bytes
    revoked: bool


def lookup_api_key(conn: Connection, prefix: str) -> ApiKeyRecord:
    row = conn.execute(_APP_BY_KEY, {"b_prefix": prefix}).first()
    if row is None:
        return ApiKeyRecord(app=None, secret_hash=bytes(32), revoked=True)
    return ApiKeyRecord(app=_app_record(row), secret_hash=row.secret_hash,
                        revoked=row.revoked_at is not None)


def check_api_key(record: ApiKeyRecord, secret: str, *, digests: SecretDigests) -> AppRecord:
    # Compared even when the prefix is unknown, so timing does not reveal which exist.
    if (not digests.matches(secret, record.secret_hash, purpose="api_key") or record.revoked
            or record.app is None):
        raise Unauthenticated("API key is not valid", code="bad_api_key")
    return record.app



# --- users ------------------------------------------------------------------------------


def _user_record(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id, org_id=row.org_id, login=row.login, display_name=row.display_name,
        preferred_verifier=VerifierKind(row.preferred_verifier) if row.preferred_verifier else None,
        has_password=row.password_hash is not None, has_totp=row.totp_secret_enc is not None,
        frozen=row.frozen_at is not None, failed_attempts=row.failed_attempts,
        blocked_until=row.blocked_until,
    )


def create_user(
    conn: Connection,
    *,
    org_id: int,
    login: str,
    display_name: str = "",
    password_hash: str | None = None,
    now: float,
) -> int:
    """``password_hash`` from :func:`qrgate.core.passwords.hash_password`, computed by the
    caller outside the transaction (and off the event loop): scrypt is slow on purpose."""
    inputs.login(login)
    inputs.line(display_name, what="display name")
    try:
        row = conn.execute(
            insert(users)
            .values(org_id=org_id, login=login, display_name=display_name,
                    password_hash=password_hash, failed_attempts=0, created_at=now)
            .returning(users.c.id)
        ).one()
    except IntegrityError:
        raise Conflict(f"user {login!r} exists", code="user_exists") from None
    return int(row.id)


def find_user(conn: Connection, *, org_id: int, login: str) -> UserRecord:
    row = conn.execute(_USER_BY_LOGIN, {"b_org": org_id, "b_login": login}).first()
    if row is None:
        raise NotFound("no such user", code="user_not_found")
    return _user_record(row)


def get_user(conn: Connection, user_id: int) -> UserRecord:
    row = conn.execute(_USER_BY_ID, {"b_id": user_id}).first()
    if row is None:
        raise NotFound("no such user", code="user_not_found")
    return _user_record(row)


def list_users(conn: Connection, *, org_id: int) -> list[UserRecord]:
    rows = conn.execute(select(users).where(users.c.org_id == org_id).order_by(users.c.login))
    return [_user_record(row) for row in rows]


def set_preferred_verifier(conn: Connection, *, user_id: int, kind: VerifierKind | None) -> None:
    conn.execute(
        update(users).where(users.c.id == user_id)
        .values(preferred_verifier=None if kind is None else kind.value)
    )


def set_frozen(conn: Connection, *, user_id: int, frozen: bool, now: float) -> None:
    """Freezing a user blocks every new challenge and every decision for them; unfreezing
    also clears the count of failed proofs."""
    values: dict[str, Any] = {"frozen_at": now if frozen else None}
    if not frozen:
        values["failed_attempts"] = 0
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


_COUNT_USER_FAILURE = (
    update(users).where(users.c.id == bindparam("b_id"))
    .values(failed_attempts=users.c.failed_attempts + 1)
    .returning(users.c.failed_attempts)
)
# Conditional, so the common case (nothing to reset) writes nothing.
_RESET_USER_FAILURES = (
    update(users).where(users.c.id == bindparam("b_id"), users.c.failed_attempts > 0)
    .values(failed_attempts=0)
)


def count_user_failure(conn: Connection, *, user_id: int) -> int:
    """Count one more failed proof; returns the user's count now."""
    row = conn.execute(_COUNT_USER_FAILURE, {"b_id": user_id}).first()
    return 0 if row is None else int(row.failed_attempts)


def reset_user_failures(conn: Connection, *, user_id: int) -> None:
    conn.execute(_RESET_USER_FAILURES, {"b_id": user_id})


def ensure_not_frozen(user: UserRecord) -> None:
    if user.frozen:
        raise Frozen("user is frozen")


def ensure_not_locked(user: UserRecord, *, max_failures: int) -> None:
    if user.failed_attempts >= max_failures:
        raise Locked("too many failed proofs for this user; an operator must unfreeze",
                     code="user_locked")


def ensure_not_blocked(user: UserRecord, *, now: float) -> None:
    if user.blocked_until is not None and now < user.blocked_until:
        raise Blocked("the user reported a request they did not start; new ones are paused "
                      "until the pause ends or it is lifted")


def set_blocked_until(conn: Connection, *, user_id: int, until: float | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(blocked_until=until))


# --- devices ----------------------------------------------------------------------------


def _device_record(row: Any) -> DeviceRecord:
    return DeviceRecord(
        id=row.id, user_id=row.user_id, client_app_id=row.client_app_id, name=row.name,
        public_key=row.public_key, status=row.status, created_at=row.created_at,
    )


def get_device(conn: Connection, device_id: str) -> DeviceRecord:
    row = conn.execute(_DEVICE_BY_ID, {"b_id": device_id}).first()
    if row is None:
        raise Unauthenticated("unknown device", code="unknown_device")
    return _device_record(row)


def list_devices(conn: Connection, *, user_id: int) -> list[DeviceRecord]:
    rows = conn.execute(
        select(devices).where(devices.c.user_id == user_id).order_by(devices.c.created_at)
    )
    return [_device_record(row) for row in rows]


def count_active_devices(conn: Connection, *, user_id: int) -> int:
    return int(conn.execute(_ACTIVE_DEVICES, {"b_user": user_id}).scalar_one())


def unbind_device(conn: Connection, *, device_id: str, now: float) -> DeviceRecord:
    """Unbind an active or a frozen device (a lost phone is often frozen first)."""
    row = conn.execute(
        update(devices)
        .where(devices.c.id == device_id, devices.c.status.in_(("active", "frozen")))
        .values(status="unbound", unbound_at=now)
        .returning(*devices.c)
    ).first()
    if row is None:
        raise NotFound("no bound device with that id", code="device_not_found")
    return _device_record(row)


def set_device_frozen(conn: Connection, *, device_id: str, frozen: bool) -> None:
    old, new = ("active", "frozen") if frozen else ("frozen", "active")
    result = conn.execute(
        update(devices).where(devices.c.id == device_id, devices.c.status == old)
        .values(status=new)
    )
    if result.rowcount == 0:
        raise NotFound(f"no {old} device with that id", code="device_not_found")
