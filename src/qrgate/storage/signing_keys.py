"""The ``signing_keys`` table: rows in, rows out, and the two state changes.

No cryptography here: rows carry the sealed private key as stored, and
:mod:`qrgate.keys` decides whether a row is trusted. Every change is one conditional
``UPDATE ... RETURNING`` inside the caller's transaction, so a caller learns whether it
won against a concurrent change instead of overwriting it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from qrgate.storage.models import signing_keys


class KeyState(StrEnum):
    ACTIVE = "active"  # signs new codes; verifies
    VERIFY = "verify"  # verifies codes signed before a rotation
    RETIRED = "retired"  # verifies no code; kept for the audit checkpoints it signed


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRow:
    kid: bytes
    public_key: bytes
    private_key_enc: bytes
    state: KeyState
    created_at: float
    retired_at: float | None = None

    def __repr__(self) -> str:
        # The sealed key stays out of logs even though it is ciphertext.
        return f"KeyRow(kid={self.kid.hex()}, state={self.state.value})"


_COLUMNS = (
    signing_keys.c.kid,
    signing_keys.c.public_key,
    signing_keys.c.private_key_enc,
    signing_keys.c.state,
    signing_keys.c.created_at,
    signing_keys.c.retired_at,
)
_ALL = select(*_COLUMNS).order_by(signing_keys.c.created_at, signing_keys.c.kid)
_ANY = select(signing_keys.c.kid).limit(1)


_STATES: Final = {state.value: state for state in KeyState}


def _row(row: Any) -> KeyRow:
    kid, public_key, sealed, state, created_at, retired_at = row
    return KeyRow(
        kid=bytes(kid),
        public_key=bytes(public_key),
        private_key_enc=bytes(sealed),
        # A state the check constraint should have refused reads as retired: it verifies
        # nothing and signs nothing.
        state=_STATES.get(state, KeyState.RETIRED),
        created_at=float(created_at),
        retired_at=None if retired_at is None else float(retired_at),
    )


def all_keys(conn: Connection) -> list[KeyRow]:
    """Every row, oldest first."""
    return [_row(row) for row in conn.execute(_ALL)]


def has_keys(conn: Connection) -> bool:
    return conn.execute(_ANY).first() is not None


def find_key(conn: Connection, kid: bytes, *, lock: bool = False) -> KeyRow | None:
    """One row; ``lock`` holds its row lock (PostgreSQL) until the transaction ends."""
    query = select(*_COLUMNS).where(signing_keys.c.kid == kid)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _row(row)


def active_key(conn: Connection, *, lock: bool = False) -> KeyRow | None:
    query = select(*_COLUMNS).where(signing_keys.c.state == KeyState.ACTIVE.value)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _row(row)


def insert_keys(conn: Connection, rows: Iterable[KeyRow]) -> None:
    """Insert rows; a kid already present, or a second active row, raises IntegrityError."""
    values = [
        {"kid": row.kid, "public_key": row.public_key, "private_key_enc": row.private_key_enc,
         "state": row.state.value, "created_at": row.created_at, "retired_at": row.retired_at}
        for row in rows
    ]
    if values:
        conn.execute(insert(signing_keys), values)


def demote_active(conn: Connection, *, kid: bytes) -> bool:
    """The active key ``kid`` becomes verify-only; False if it was not the active key."""
    demoted = conn.execute(
        update(signing_keys)
        .where(signing_keys.c.kid == kid, signing_keys.c.state == KeyState.ACTIVE.value)
        .values(state=KeyState.VERIFY.value)
        .returning(signing_keys.c.kid)
    ).first()
    return demoted is not None


def retire_key(conn: Connection, *, kid: bytes, now: float) -> bool:
    """A verify-only key stops verifying; False if ``kid`` was not verify-only."""
    retired = conn.execute(
        update(signing_keys)
        .where(signing_keys.c.kid == kid, signing_keys.c.state == KeyState.VERIFY.value)
        .values(state=KeyState.RETIRED.value, retired_at=now)
        .returning(signing_keys.c.kid)
    ).first()
    return retired is not None
