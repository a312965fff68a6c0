"""Scheme A: the rows of grid card attempts and the statements that change them.

Every change of state is one conditional UPDATE on the state the caller read, so two nodes
acting on one attempt at once change it once; each change is published to the attempt's
waiting streams (topic: its id) with the transaction. The rules are in
``qrgate.core.gridcard_attempt``; who may do what, and when, in ``qrgate.gridcard.attempts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from qrgate.core import gridcard
from qrgate.core.gridcard_attempt import AttemptState, Risk
from qrgate.errors import AlreadyDecided, NotFound
from qrgate.gridcard import cards
from qrgate.runtime import Runtime
from qrgate.storage.models import (
    applications,
    gridcard_attempts,
    gridcard_cells,
    gridcards,
    organisations,
)
from qrgate.webhooks import catalogue, outbox


@dataclass(frozen=True, kw_only=True)
class AttemptRow:
    id: str
    org_id: int
    app_id: int | None
    user_id: int
    card_id: str
    login: str
    operation: str
    risk: Risk
    state: AttemptState
    reason: str | None
    position: str
    position_seq: int
    window_seconds: int
    position_issued_at: float
    position_expires_at: float
    reissues: int
    attempts: int
    requester_ip: str
    requester_ua: str
    answer_seconds: float | None
    created_at: float
    expires_at: float
    decided_at: float | None

    def effective_state(self, now: float) -> AttemptState:
        if self.state == AttemptState.PENDING and now > self.expires_at:
            return AttemptState.EXPIRED
        return self.state


def row_of(raw: Any) -> AttemptRow:
    values = dict(raw._mapping)
    values["risk"], values["state"] = Risk(values["risk"]), AttemptState(values["state"])
    return AttemptRow(**values)


def find(conn: Connection, attempt_id: str) -> AttemptRow | None:
    raw = conn.execute(select(gridcard_attempts)
                       .where(gridcard_attempts.c.id == attempt_id)).first()
    return None if raw is None else row_of(raw)


def load(conn: Connection, attempt_id: str) -> AttemptRow:
    row = find(conn, attempt_id)
    if row is None:
        raise NotFound("no such grid card attempt", code="attempt_not_found")
    return row


@dataclass(frozen=True, kw_only=True)
class Names:
    """What an attempt's answer shows besides its row: who asked, with which card."""

    organisation: str
    application: str | None
    serial: str


def names_of(conn: Connection, row: AttemptRow) -> Names:
    found = conn.execute(
        select(organisations.c.name.label("org"), applications.c.name.label("app"),
               gridcards.c.serial)
        .select_from(gridcard_attempts
                     .join(organisations, organisations.c.id == gridcard_attempts.c.org_id)
                     .join(gridcards, gridcards.c.id == gridcard_attempts.c.card_id)
                     .outerjoin(applications, applications.c.id == gridcard_attempts.c.app_id))
        .where(gridcard_attempts.c.id == row.id)).one()
    return Names(organisation=found.org, application=found.app, serial=found.serial)


def free_positions(conn: Connection, card_id: str) -> list[gridcard.Position]:
    rows = conn.execute(select(gridcard_cells.c.position)
                        .where(gridcard_cells.c.card_id == card_id,
                               gridcard_cells.c.used_at.is_(None)))
    return [gridcard.parse_position(row.position) for row in rows]


def used_positions(conn: Connection, card_id: str) -> set[gridcard.Position]:
    rows = conn.execute(select(gridcard_cells.c.position)
                        .where(gridcard_cells.c.card_id == card_id,
                               gridcard_cells.c.used_at.is_not(None)))
    return {gridcard.parse_position(row.position) for row in rows}


def supersede(rt: Runtime, conn: Connection, *, user_id: int, now: float) -> None:
    ended = conn.execute(
        update(gridcard_attempts)
        .where(gridcard_attempts.c.user_id == user_id,
               gridcard_attempts.c.state == AttemptState.PENDING.value)
        .values(state=AttemptState.FAILED.value, reason="superseded", decided_at=now)
        .returning(*gridcard_attempts.c)).all()
    for raw in ended:
        _announce(rt, conn, row_of(raw), state=AttemptState.FAILED, reason="superseded",
                  now=now)


def _announce(rt: Runtime, conn: Connection, row: AttemptRow, *, state: AttemptState,
              reason: str, now: float) -> None:
    """Tell the waiting streams, and the relying party (no webhook for an expiry: written
    only when something touches the attempt, it would come late or never)."""
    rt.events.publish(conn, topic=row.id, state=state.value)
    if state != AttemptState.EXPIRED:
        outbox.emit(rt, conn, catalogue.attempt_ended(row, state=state.value, reason=reason,
                                                      at=now))


def transition(rt: Runtime, conn: Connection, row: AttemptRow, *, state: AttemptState,
               reason: str, now: float, answer_seconds: float | None = None) -> AttemptRow:
    """``pending -> state`` for the position the caller read, in one conditional UPDATE:
    of two nodes answering or ending the same attempt at once, one wins."""
    changed = conn.execute(
        update(gridcard_attempts)
        .where(gridcard_attempts.c.id == row.id,
               gridcard_attempts.c.state == AttemptState.PENDING.value,
               gridcard_attempts.c.position_seq == row.position_seq)
        .values(state=state.value, reason=reason, decided_at=now,
                answer_seconds=answer_seconds)
        .returning(*gridcard_attempts.c)).first()
    if changed is None:
        raise AlreadyDecided("this grid card attempt has ended or moved on",
                             code="not_pending")
    _announce(rt, conn, row, state=state, reason=reason, now=now)
    return row_of(changed)


def end(rt: Runtime, conn: Connection, row: AttemptRow, *, state: AttemptState, reason: str,
         now: float) -> None:
    """End a pending attempt after a failure (in the failure's own transaction)."""
    ended = conn.execute(
        update(gridcard_attempts)
        .where(gridcard_attempts.c.id == row.id,
               gridcard_attempts.c.state == AttemptState.PENDING.value)
        .values(state=state.value, reason=reason, decided_at=now)).rowcount
    if ended:
        _announce(rt, conn, row, state=state, reason=reason, now=now)


def count_attempt(rt: Runtime, conn: Connection, row: AttemptRow, *, now: float) -> None:
    attempts = conn.execute(
        update(gridcard_attempts).where(gridcard_attempts.c.id == row.id)
        .values(attempts=gridcard_attempts.c.attempts + 1)
        .returning(gridcard_attempts.c.attempts)).scalar_one()
    if attempts >= rt.settings.max_failures:
        end(rt, conn, row, state=AttemptState.FAILED, reason="too_many_failures", now=now)


def card_usable(conn: Connection, row: AttemptRow, now: float) -> bool:
    card = cards.card_by_id(conn, row.card_id)
    return card.status == "active" and now <= card.expires_at
