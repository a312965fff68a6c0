"""SQL for scheme C challenges. Each transition is one conditional ``UPDATE ... RETURNING``:
it succeeds for exactly one caller, on any node, or for none; Python never reads a state and
then writes the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, or_, select, update

from qrgate.core.confirm import ChallengeView, ConfirmState
from qrgate.core.policy import VerifierKind
from qrgate.errors import NotFound
from qrgate.storage.models import challenges, devices, users

OPEN_STATES = (ConfirmState.PENDING.value, ConfirmState.SCANNED.value)
HISTORY_LIMIT = 200


@dataclass(frozen=True, kw_only=True)
class ChallengeRow:
    """A challenge as stored, with what every caller of the repository may need."""

    id: str
    org_id: int
    app_id: int
    user_id: int
    login: str
    business_id: str
    scene: dict[str, Any]
    url: str | None
    verifier: str
    state: ConfirmState
    reason: str | None
    number: int | None
    code_nonce: bytes
    code_seq: int
    code_expires_at: float
    browser_hash: bytes
    requester_ip: str
    requester_ua: str
    device_id: str | None
    attempts: int
    created_at: float
    expires_at: float
    scanned_at: float | None
    decided_at: float | None

    def view(self) -> ChallengeView:
        return ChallengeView(
            challenge_id=bytes.fromhex(self.id),
            state=self.state,
            org_id=self.org_id,
            user_id=self.user_id,
            business_id=self.business_id,
            login=self.login,
            operation=str(self.scene.get("operation", "")),
            amount=self.scene.get("amount"),
            url=self.url,
            number=self.number,
            verification_code=self.code_nonce,
            device_id=self.device_id,
            expires_at=self.expires_at,
            verifier=VerifierKind(self.verifier),
        )

    def effective_state(self, now: float) -> ConfirmState:
        """Expiry is lazy in storage; readers see it at once."""
        if self.state in (ConfirmState.PENDING, ConfirmState.SCANNED) and now >= self.expires_at:
            return ConfirmState.EXPIRED
        return self.state


def row_of(row: Any) -> ChallengeRow:
    values = dict(row._mapping)
    values.pop("scheme", None)
    values.pop("search_text", None)
    values["state"] = ConfirmState(values["state"])
    return ChallengeRow(**values)


# Hot-path statements are built once: constructing and cache-keying a SQLAlchemy statement
# costs more than SQLite takes to run it. Bind names carry a ``b_`` prefix because names of
# updated columns are reserved for the SET clause.
_INSERT = insert(challenges)
_LOAD = select(challenges).where(challenges.c.id == bindparam("b_id"))
_OPEN = challenges.c.state.in_(OPEN_STATES)
# A decision is taken only while its user is not frozen and (for scans and decisions) its
# device is active: checked in the very statement that takes it, so a freeze committed on
# any node stops every later decision at once, with no window between check and write.
_USER_NOT_FROZEN = ~exists().where(users.c.id == challenges.c.user_id,
                                   users.c.frozen_at.is_not(None))
_DEVICE_ACTIVE = exists().where(devices.c.id == bindparam("b_device"),
                                devices.c.status == "active")
_MARK_SCANNED = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"),
           challenges.c.state == ConfirmState.PENDING.value,
           challenges.c.code_nonce == bindparam("b_nonce"),
           challenges.c.expires_at > bindparam("b_now"), _USER_NOT_FROZEN, _DEVICE_ACTIVE)
    .values(state=ConfirmState.SCANNED.value, device_id=bindparam("b_device"),
            scanned_at=bindparam("b_at"))
    .returning(*challenges.c)
)
_DECIDE = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"),
           challenges.c.state == ConfirmState.SCANNED.value,
           challenges.c.device_id == bindparam("b_device"),
           challenges.c.expires_at > bindparam("b_now"), _USER_NOT_FROZEN, _DEVICE_ACTIVE)
    .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
            decided_at=bindparam("b_at"))
    .returning(*challenges.c)
)
_FINISH_PENDING = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"),
           challenges.c.state == ConfirmState.PENDING.value,
           challenges.c.expires_at > bindparam("b_now"), _USER_NOT_FROZEN)
    .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
            decided_at=bindparam("b_at"))
    .returning(*challenges.c)
)
_KILL = (
    update(challenges)
    # An expired challenge stays expired: it is terminal even before a reader marks it.
    .where(challenges.c.id == bindparam("b_id"), _OPEN,
           challenges.c.expires_at > bindparam("b_now"))
    .values(state=ConfirmState.REJECTED.value, reason=bindparam("b_reason"),
            decided_at=bindparam("b_at"))
    .returning(*challenges.c)
)
_EXPIRE = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"), _OPEN,
           challenges.c.expires_at <= bindparam("b_now"))
    .values(state=ConfirmState.EXPIRED.value, reason="expired", decided_at=bindparam("b_at"))
)
_ROTATE = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"),
           challenges.c.state == ConfirmState.PENDING.value,
           challenges.c.expires_at > bindparam("b_now"))
    .values(code_nonce=bindparam("b_nonce"), code_seq=challenges.c.code_seq + 1,
            code_expires_at=bindparam("b_code_expires_at"))
    .returning(*challenges.c)
)
_COUNT_FAILURE = (
    update(challenges)
    .where(challenges.c.id == bindparam("b_id"))
    .values(attempts=challenges.c.attempts + 1)
    .returning(challenges.c.attempts)
)


def _one(conn: Connection, statement: Any, params: dict[str, Any]) -> ChallengeRow | None:
    row = conn.execute(statement, params).first()
    return None if row is None else row_of(row)


def insert_challenge(conn: Connection, *, search_text: str, **values: Any) -> ChallengeRow:
    conn.execute(_INSERT, {"scheme": "confirm", "search_text": search_text, **values})
    return ChallengeRow(
        **{**values, "state": ConfirmState(values["state"]), "reason": None, "device_id": None,
           "scanned_at": None, "decided_at": None}
    )


def find(conn: Connection, challenge_id: str) -> ChallengeRow | None:
    return _one(conn, _LOAD, {"b_id": challenge_id})


def load(conn: Connection, challenge_id: str) -> ChallengeRow:
    row = find(conn, challenge_id)
    if row is None:
        raise NotFound("no such challenge", code="challenge_not_found")
    return row


def mark_scanned(
    conn: Connection, *, challenge_id: str, code_nonce: bytes, device_id: str, now: float
) -> ChallengeRow | None:
    return _one(conn, _MARK_SCANNED, {"b_id": challenge_id, "b_nonce": code_nonce,
                                      "b_now": now, "b_device": device_id, "b_at": now})


def decide(
    conn: Connection,
    *,
    challenge_id: str,
    device_id: str,
    state: ConfirmState,
    reason: str,
    now: float,
) -> ChallengeRow | None:
    return _one(conn, _DECIDE, {"b_id": challenge_id, "b_device": device_id, "b_now": now,
                                "b_state": state.value, "b_reason": reason, "b_at": now})


def finish_pending(
    conn: Connection, *, challenge_id: str, state: ConfirmState, reason: str, now: float
) -> ChallengeRow | None:
    """Decide a challenge that no device scans (the TOTP verifier)."""
    return _one(conn, _FINISH_PENDING, {"b_id": challenge_id, "b_now": now,
                                        "b_state": state.value, "b_reason": reason, "b_at": now})


def kill(conn: Connection, *, challenge_id: str, reason: str,
         now: float) -> ChallengeRow | None:
    """Reject an open, unexpired challenge (a replayed scan, a wrong number, too many
    failures, a cancellation); the challenge as rejected, or None if it was not open."""
    return _one(conn, _KILL, {"b_id": challenge_id, "b_reason": reason, "b_now": now,
                              "b_at": now})


def expire(conn: Connection, *, challenge_id: str, now: float) -> bool:
    result = conn.execute(_EXPIRE, {"b_id": challenge_id, "b_now": now, "b_at": now})
    return result.rowcount == 1


def rotate(
    conn: Connection, *, challenge_id: str, code_nonce: bytes, code_expires_at: float, now: float
) -> ChallengeRow | None:
    return _one(conn, _ROTATE, {"b_id": challenge_id, "b_now": now, "b_nonce": code_nonce,
                                "b_code_expires_at": code_expires_at})


def end_open_for_user(conn: Connection, *, user_id: int, reason: str,
                      now: float) -> list[ChallengeRow]:
    """Reject every open, unexpired challenge of a user (frozen); returns them, rejected."""
    rows = conn.execute(
        update(challenges)
        .where(challenges.c.user_id == user_id, _OPEN, challenges.c.expires_at > now)
        .values(state=ConfirmState.REJECTED.value, reason=reason, decided_at=now)
        .returning(*challenges.c)
    )
    return [row_of(row) for row in rows]


def count_failure(conn: Connection, *, challenge_id: str) -> int:
    row = conn.execute(_COUNT_FAILURE, {"b_id": challenge_id}).first()
    return 0 if row is None else int(row.attempts)


def history(
    conn: Connection,
    *,
    app_id: int | None = None,
    user_id: int | None = None,
    login: str | None = None,
    device_id: str | None = None,
    query: str | None = None,
    state: ConfirmState | None = None,
    limit: int = 50,
) -> list[ChallengeRow]:
    """Newest first; ``query`` matches any word of the scene, login or operation."""
    stmt = select(challenges).order_by(challenges.c.created_at.desc())
    if app_id is not None:
        stmt = stmt.where(challenges.c.app_id == app_id)
    if user_id is not None:
        stmt = stmt.where(challenges.c.user_id == user_id)
    if login is not None:
        stmt = stmt.where(challenges.c.login == login)
    if device_id is not None:
        stmt = stmt.where(challenges.c.device_id == device_id)
    if state is not None:
        stmt = stmt.where(challenges.c.state == state.value)
    for word in (query or "").lower().split()[:5]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(or_(challenges.c.search_text.like(f"%{escaped}%", escape="\\")))
    rows = conn.execute(stmt.limit(min(max(limit, 1), HISTORY_LIMIT)))
    return [row_of(row) for row in rows]
