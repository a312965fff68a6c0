"""Temporary access passes: a user who lost their phone enrols a new one without it.

1. **Issue.** An operator (``qrgate admin user access-pass``) or the relying party
   (``POST /v1/users/{login}/access-passes``) asks for a pass for a user.
   :func:`issue_pass` draws 80 random bits and shows them once as 16 Crockford base32
   characters in four groups (``7K3M-Q9XD-2HVA-RT0E``), easy to read out over the phone
   and to type. Only the keyed digest of the normalised pass is stored
   (``qrgate.core.digests``, purpose ``access_pass``), so the database alone is no use to
   a thief. The pass lives ``ttl`` seconds (300 s to 7 days; ``QRGATE_ACCESS_PASS_TTL``
   when the issuer names none). A user has at most one live pass: issuing one ends every
   earlier unused pass of the user (they then answer ``access_pass_expired``).
2. **Redeem.** The new phone makes its device key and sends ``POST /v1/devices`` with the
   pass instead of an enrolment code, signed with that key. :func:`find_pass` finds the
   pass by its digest (typing mistakes of case, spaces, dashes, O for 0 and I or L for 1
   do not matter); :func:`redeem_pass` consumes it with one conditional UPDATE (unused and
   unexpired), so a pass sent twice, even to two nodes at once, binds one device. A frozen
   user is refused (``qrgate.accounts.enrolment.bind_device``) and the pass stays usable.
3. **Replace.** A pass issued with ``revoke_devices`` (the default) unbinds every other
   active device of the user in the same transaction: the lost phone is refused from then
   on (``device_unbound``). Every application of the organisation hears ``device.added``
   (by ``device``) and one ``device.removed`` per old phone (by ``access_pass``).

Issuing and redeeming are audited by the caller (``qrgate.decisions``); the pass itself is
never logged, audited or stored in clear.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import Connection, insert, select, update

from qrgate.accounts import device_changes, directory
from qrgate.accounts.enrolment import EnrolmentDone, bind_device
from qrgate.accounts.tokens import new_id
from qrgate.core.digests import SecretDigests
from qrgate.errors import Expired, InvalidField, NotFound, Replayed
from qrgate.runtime import Runtime
from qrgate.storage.models import access_passes
from qrgate.webhooks.catalogue import DeviceChange

# Crockford's base32: no I, L, O or U, so nothing reads as another character.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PASS_CHARS: Final = 16  # 80 bits
GROUP: Final = 4
MIN_TTL: Final = 300
MAX_TTL: Final = 604_800
# What people type for what they see, as Crockford's decoding allows.
_LOOKALIKES: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})

Issuer = Literal["operator", "relying_party"]


def new_access_pass() -> str:
    """A fresh pass, as stored (16 characters); :func:`shown` groups it for people."""
    return "".join(secrets.choice(ALPHABET) for _ in range(PASS_CHARS))


def shown(stored: str) -> str:
    """``XXXX-XXXX-XXXX-XXXX``."""
    return "-".join(stored[i:i + GROUP] for i in range(0, len(stored), GROUP))


def normalise_pass(text: str) -> str | None:
    """The pass as stored (16 upper-case characters), or None when ``text`` cannot be one.
    Case, spaces and dashes are ignored; O reads as 0, I and L as 1."""
    chars = "".join(text.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(chars) != PASS_CHARS or any(c not in ALPHABET for c in chars):
        return None
    return chars


def check_ttl(ttl: int) -> int:
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidField(f"an access pass lives {MIN_TTL} to {MAX_TTL} seconds")
    return ttl


@dataclass(frozen=True, kw_only=True)
class IssuedPass:
    access_pass_id: str
    # Shown once to whoever issued it; never stored, logged or audited.
    access_pass: str
    user: directory.UserRecord
    expires_at: float
    revoke_devices: bool


def issue_pass(conn: Connection, *, digests: SecretDigests, user: directory.UserRecord,
               issued_by: Issuer, app_id: int | None, revoke_devices: bool, now: float,
               ttl: int) -> IssuedPass:
    """A new pass for ``user``; the user's earlier unused passes end now."""
    directory.ensure_not_frozen(user)
    check_ttl(ttl)
    stored = new_access_pass()
    conn.execute(
        update(access_passes)
        .where(access_passes.c.user_id == user.id, access_passes.c.used_at.is_(None),
               access_passes.c.expires_at > now)
        .values(expires_at=now)
    )
    pass_id = new_id()
    conn.execute(insert(access_passes).values(
        id=pass_id, user_id=user.id, pass_hash=digests.digest(stored, purpose="access_pass"),
        issued_by=issued_by, app_id=app_id, revoke_devices=revoke_devices, created_at=now,
        expires_at=now + ttl,
    ))
    return IssuedPass(access_pass_id=pass_id, access_pass=shown(stored), user=user,
                      expires_at=now + ttl, revoke_devices=revoke_devices)


@dataclass(frozen=True, kw_only=True)
class AccessPassRecord:
    id: str
    user: directory.UserRecord
    revoke_devices: bool
    expires_at: float
    used_at: float | None


def find_pass(conn: Connection, *, digests: SecretDigests, access_pass: str) -> AccessPassRecord:
    """The pass the user typed, used or not; ``access_pass_not_found`` if there is none."""
    stored = normalise_pass(access_pass)
    row = None if stored is None else conn.execute(
        select(access_passes).where(
            access_passes.c.pass_hash == digests.digest(stored, purpose="access_pass"))
    ).first()
    if row is None:
        raise NotFound("no such access pass", code="access_pass_not_found")
    return AccessPassRecord(id=row.id, user=directory.get_user(conn, row.user_id),
                            revoke_devices=row.revoke_devices, expires_at=row.expires_at,
                            used_at=row.used_at)


@dataclass(frozen=True, kw_only=True)
class Redeemed:
    done: EnrolmentDone
    # The devices the new phone replaced (unbound), oldest first.
    unbound: tuple[str, ...]


def redeem_pass(rt: Runtime, conn: Connection, *, record: AccessPassRecord, public_key: bytes,
                client_app_id: str, device_name: str, now: float) -> Redeemed:
    """Consume the pass and bind the new phone, in the caller's transaction; with
    ``revoke_devices``, unbind the user's other devices too, frozen ones included (an
    operator often freezes a lost phone first)."""
    if record.used_at is not None:
        raise Replayed("access pass was already used", code="access_pass_used")
    if now >= record.expires_at:
        raise Expired("access pass expired", code="access_pass_expired")
    device_id = new_id()
    consumed = conn.execute(
        update(access_passes)
        .where(access_passes.c.id == record.id, access_passes.c.used_at.is_(None),
               access_passes.c.expires_at > now)
        .values(used_at=now, device_id=device_id)
        .returning(access_passes.c.id)
    ).first()
    if consumed is None:  # another request (or node) used it since it was read
        raise Replayed("access pass was already used", code="access_pass_used")
    # Read again here: find_pass may have run in another transaction, before a freeze.
    user = directory.get_user(conn, record.user.id)
    done = bind_device(conn, box=rt.box, user=user, device_id=device_id, public_key=public_key,
                       client_app_id=client_app_id, device_name=device_name, now=now)
    unbound: list[str] = []
    if record.revoke_devices:
        for old in directory.list_devices(conn, user_id=user.id):
            if old.id != device_id and old.status in ("active", "frozen"):
                device_changes.unbind(rt, conn, device_id=old.id, by=DeviceChange.ACCESS_PASS,
                                      now=now)
                unbound.append(old.id)
    device_changes.bound(rt, conn, device=done.device, user=user, now=now)
    return Redeemed(done=done, unbound=tuple(unbound))
