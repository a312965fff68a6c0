"""Scheme A: the card store. Issue, reissue, revoke and list a user's printed grid cards.

Step by step (SPEC A, issue 10 "Card issue"; the cells themselves are
:mod:`qrgate.core.gridcard`):

1.  **Issue** (:func:`issue`, in the caller's transaction). For a user who is not frozen,
    a fresh 32-byte card key and a fresh serial come from the runtime's random source; a
    serial already taken is drawn again. Every cell is derived, and only its keyed digest
    is stored (``qrgate.core.digests``, purpose ``gridcard_cell``: HMAC under a key derived
    from the KEK, so a stolen database alone checks no guess). The card key is never
    stored: the :class:`IssuedCard` returned carries the cells in clear once, for the
    printer, and nothing else keeps them.
2.  **Reissue revokes the old card at once**: issuing revokes the user's active card in
    the same transaction, so there is never a moment with two cards, or with none while the
    old one still works. The user's row is locked first (``FOR UPDATE`` on PostgreSQL;
    SQLite's writers are serialised already), so two issues at once cannot both keep theirs.
3.  **Revoke** (:func:`revoke`): one conditional UPDATE; the revoked card's cell digests are
    deleted with it, so none of its cells can be checked, let alone accepted, again.
4.  **List** (:func:`list_cards`, :func:`active_card`): serial, state, dates and how many
    cells were used; a card with :data:`NEAR_EXHAUSTION` of its cells used is flagged
    (``near_exhaustion``) for reissue.

:func:`run_issue` and :func:`run_revoke` do steps 1-3 as audited decisions
(``qrgate.decisions``: events ``gridcard.issue`` and ``gridcard.revoke``, scheme
``gridcard``); refusals are audited with their code too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id
from qrgate.core import gridcard
from qrgate.core.digests import SecretDigests
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import Conflict, InvalidField, NotFound
from qrgate.runtime import Runtime
from qrgate.storage.models import gridcard_cells, gridcards, organisations, users

DEFAULT_TTL_DAYS: Final = 730
MAX_TTL_DAYS: Final = 3650
# Share of a card's cells used from which it is flagged for reissue.
NEAR_EXHAUSTION: Final = 0.8
_SERIAL_DRAWS: Final = 5
_DAY: Final = 86_400

Issuer = Literal["operator", "relying_party"]


def cell_digester(digests: SecretDigests) -> gridcard.CellDigest:
    """The stored form of a cell: its keyed digest. Give it to
    :func:`qrgate.core.gridcard.verify_cell` as ``digest``."""
    return lambda content: digests.digest(content, purpose="gridcard_cell")


def check_ttl_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TTL_DAYS:
        raise InvalidField(f"a grid card lives 1 to {MAX_TTL_DAYS} days")
    return days


@dataclass(frozen=True, kw_only=True)
class CardRecord:
    id: str
    org_id: int
    user_id: int
    serial: str
    layout: gridcard.Layout
    status: Literal["active", "revoked"]
    created_at: float
    expires_at: float
    revoked_at: float | None
    # Cells answered so far; None once revoked (its cells are gone).
    used_cells: int | None

    @property
    def near_exhaustion(self) -> bool:
        """At least :data:`NEAR_EXHAUSTION` of the cells used: time to reissue."""
        return (self.used_cells is not None
                and self.used_cells >= math.ceil(NEAR_EXHAUSTION * self.layout.size))

    def expires_on(self) -> date:
        return datetime.fromtimestamp(self.expires_at, UTC).date()


@dataclass(frozen=True, kw_only=True)
class IssuedCard:
    record: CardRecord
    # The cells in clear, for the printer only: never stored, logged or audited.
    card: gridcard.IssuedCard
    # The organisation's name, printed on the card.
    issuer_name: str
    issued_by: Issuer
    # The serial of the card this one replaced (revoked in the same transaction), if any.
    replaced: str | None


_COLUMNS = (gridcards.c.id, gridcards.c.org_id, gridcards.c.user_id, gridcards.c.serial,
            gridcards.c.rows, gridcards.c.columns, gridcards.c.status, gridcards.c.created_at,
            gridcards.c.expires_at, gridcards.c.revoked_at)


def _records_query() -> Any:
    used = (select(gridcard_cells.c.card_id,
                   func.count(gridcard_cells.c.used_at).label("used"))
            .group_by(gridcard_cells.c.card_id).subquery())
    return (select(*_COLUMNS, used.c.used)
            .select_from(gridcards.outerjoin(used, used.c.card_id == gridcards.c.id)))


def _record(row: Any) -> CardRecord:
    revoked = row.status == "revoked"
    return CardRecord(
        id=row.id, org_id=row.org_id, user_id=row.user_id, serial=row.serial,
        layout=gridcard.Layout(rows=row.rows, columns=row.columns),
        status="revoked" if revoked else "active", created_at=row.created_at,
        expires_at=row.expires_at, revoked_at=row.revoked_at,
        used_cells=None if revoked else int(row.used or 0))


def list_cards(conn: Connection, user_id: int) -> list[CardRecord]:
    """The user's cards, newest first."""
    rows = conn.execute(_records_query().where(gridcards.c.user_id == user_id)
                        .order_by(gridcards.c.created_at.desc(), gridcards.c.id))
    return [_record(row) for row in rows]


def list_org_cards(conn: Connection, org_id: int, limit: int = 200) -> list[CardRecord]:
    """The organisation's latest cards, newest first."""
    rows = conn.execute(_records_query().where(gridcards.c.org_id == org_id)
                        .order_by(gridcards.c.created_at.desc(), gridcards.c.id).limit(limit))
    return [_record(row) for row in rows]


def active_card(conn: Connection, user_id: int) -> CardRecord | None:
    """The user's card that is not revoked, expired or not (the caller checks expiry
    against its own ``now``)."""
    row = conn.execute(_records_query().where(gridcards.c.user_id == user_id,
                                              gridcards.c.status == "active")).first()
    return None if row is None else _record(row)


def card_by_id(conn: Connection, card_id: str) -> CardRecord:
    return _record(conn.execute(_records_query().where(gridcards.c.id == card_id)).one())


def find_card(conn: Connection, serial: str) -> CardRecord:
    """The card with this serial, as an operator types it; ``not_found`` if none."""
    row = conn.execute(_records_query()
                       .where(gridcards.c.serial == gridcard.normalize_serial(serial))).first()
    if row is None:
        raise NotFound("no such grid card", code="not_found")
    return _record(row)


def card_digests(conn: Connection, card_id: str) -> dict[gridcard.Position, bytes]:
    """The stored (keyed) digests of a card's cells, by position: what
    :func:`qrgate.core.gridcard.verify_cell` checks a scan against."""
    rows = conn.execute(select(gridcard_cells.c.position, gridcard_cells.c.digest)
                        .where(gridcard_cells.c.card_id == card_id))
    return {gridcard.parse_position(row.position): bytes(row.digest) for row in rows}


def _end(conn: Connection, *, where: Any, now: float) -> Sequence[Any]:
    """Revoke the matching active cards and delete their cells; returns their rows."""
    ended = conn.execute(update(gridcards).where(where, gridcards.c.status == "active")
                         .values(status="revoked", revoked_at=now)
                         .returning(gridcards.c.id, gridcards.c.serial)).all()
    if ended:
        conn.execute(delete(gridcard_cells)
                     .where(gridcard_cells.c.card_id.in_([row.id for row in ended])))
    return ended


def issue(rt: Runtime, conn: Connection, *, user: directory.UserRecord,
          layout: gridcard.Layout, ttl_days: int, issuer: Issuer, now: float,
          replace_only: bool = False) -> IssuedCard:
    """A new card for ``user``, in the caller's transaction; the user's active card, if
    any, is revoked in it too. ``replace_only``: ``no_card`` when there is none (a
    reissue, told apart only once the user is locked)."""
    directory.ensure_not_frozen(user)
    check_ttl_days(ttl_days)
    # Serialises issues for one user on PostgreSQL (SQLite renders no FOR UPDATE: its
    # writers hold the database's write lock from BEGIN IMMEDIATE on).
    conn.execute(select(users.c.id).where(users.c.id == user.id).with_for_update())
    ended = _end(conn, where=gridcards.c.user_id == user.id, now=now)
    if replace_only and not ended:
        raise Conflict(f"{user.login} has no card to replace: issue one instead",
                       code="no_card")
    card_id, expires_at = new_id(), now + ttl_days * _DAY
    for _ in range(_SERIAL_DRAWS):
        serial = gridcard.serial_from_random(rt.random(gridcard.SERIAL_RANDOM_BYTES))
        try:
            with conn.begin_nested():
                conn.execute(insert(gridcards).values(
                    id=card_id, org_id=user.org_id, user_id=user.id, serial=serial,
                    rows=layout.rows, columns=layout.columns, status="active",
                    created_at=now, expires_at=expires_at))
            break
        except IntegrityError:
            continue  # the serial is taken (45 random bits: rare, but not impossible)
    else:
        raise Conflict("could not draw an unused card serial", code="conflict")
    card = gridcard.issue_card(card_key=rt.random(gridcard.CARD_KEY_BYTES), serial=serial,
                               layout=layout)
    digests = card.digests(cell_digester(rt.digests))
    conn.execute(insert(gridcard_cells), [
        {"card_id": card_id, "position": position.label, "digest": digest}
        for position, digest in digests.items()])
    issuer_name = conn.execute(select(organisations.c.name)
                               .where(organisations.c.id == user.org_id)).scalar_one()
    record = CardRecord(id=card_id, org_id=user.org_id, user_id=user.id, serial=serial,
                        layout=layout, status="active", created_at=now, expires_at=expires_at,
                        revoked_at=None, used_cells=0)
    return IssuedCard(record=record, card=card, issuer_name=issuer_name, issued_by=issuer,
                      replaced=ended[0].serial if ended else None)


def revoke(conn: Connection, serial: str, now: float, *, org_id: int | None = None) -> CardRecord:
    """Revoke the card now; its cells can no longer be checked. ``not_found`` for an
    unknown serial (or one of another organisation than ``org_id``, when given),
    ``conflict`` for a card already revoked."""
    card = find_card(conn, serial)
    if org_id is not None and card.org_id != org_id:
        raise NotFound("no such grid card", code="not_found")
    if not _end(conn, where=gridcards.c.id == card.id, now=now):
        raise Conflict(f"grid card {gridcard.format_serial(card.serial)} is already revoked",
                       code="conflict")
    return find_card(conn, card.serial)


def users_without_card(conn: Connection, *, org_id: int,
                       limit: int) -> list[directory.UserRecord]:
    """Up to ``limit`` users of the organisation, by login, who are not frozen and have no
    active card: whom a print run issues cards to. They are locked as :func:`issue` locks a
    user and checked again once locked, so that a run never replaces a card issued
    meanwhile; the list may then be shorter than ``limit`` while more users wait."""
    carded = (select(gridcards.c.id)
              .where(gridcards.c.user_id == users.c.id, gridcards.c.status == "active")
              .exists())
    locked = conn.execute(select(users.c.id)
                          .where(users.c.org_id == org_id, users.c.frozen_at.is_(None), ~carded)
                          .order_by(users.c.login).limit(limit).with_for_update()).scalars().all()
    # A new statement sees what was committed while this one waited for its locks.
    ids = conn.execute(select(users.c.id).where(users.c.id.in_(locked), ~carded)
                       .order_by(users.c.login)).scalars().all()
    return [directory.get_user(conn, user_id) for user_id in ids]


# --- audited decisions ----------------------------------------------------------------------


def run_issue(rt: Runtime, *, org_slug: str, login: str, layout: gridcard.Layout,
              ttl_days: int, issuer: Issuer, actor: str,
              deliver: Callable[[IssuedCard], None] | None = None,
              replace_only: bool = False) -> IssuedCard:
    """:func:`issue` as an audited decision. ``deliver`` runs before the commit (it writes
    the printable card): if it fails, no card is issued and the old one stays."""
    now = rt.clock()
    subject = AuditSubject(event="gridcard.issue", scheme="gridcard",
                           detail={"actor": actor, "issued_by": issuer})

    def work(conn: Connection) -> tuple[IssuedCard, str]:
        user = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, org_slug),
                                   login=login)
        subject.org_id, subject.user_id = user.org_id, user.id
        issued = issue(rt, conn, user=user, layout=layout, ttl_days=ttl_days, issuer=issuer,
                       now=now, replace_only=replace_only)
        subject.detail.update(serial=issued.record.serial, replaced=issued.replaced,
                              expires_at=issued.record.expires_at,
                              layout=f"{layout.rows}x{layout.columns}")
        if deliver is not None:
            deliver(issued)
        return issued, "issued"

    return run_decision(rt, subject=subject, now=now, work=work)


def run_revoke(rt: Runtime, *, serial: str, actor: str, org_id: int | None = None) -> CardRecord:
    """:func:`revoke` as an audited decision."""
    now = rt.clock()
    subject = AuditSubject(event="gridcard.revoke", scheme="gridcard", detail={"actor": actor})

    def work(conn: Connection) -> tuple[CardRecord, str]:
        card = revoke(conn, serial, now, org_id=org_id)
        subject.org_id, subject.user_id = card.org_id, card.user_id
        subject.detail["serial"] = card.serial
        return card, "revoked"

    return run_decision(rt, subject=subject, now=now, work=work)
