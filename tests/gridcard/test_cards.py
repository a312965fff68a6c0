"""The grid card store (qrgate.gridcard.cards), on SQLite and PostgreSQL: a card is stored
as keyed cell digests only (no cell, secret or card key in any column), reissue revokes the
old card in the same transaction and its cells never check again, revocation and listing
work, a card near exhaustion is flagged, a frozen user gets no card, and every issue and
revoke is audited."""

from __future__ import annotations

import hashlib
import os
from collections import deque
from typing import Any

import pytest
from sqlalchemy import MetaData, select, update

from qrgate.accounts import directory
from qrgate.core.gridcard import (
    CARD_KEY_BYTES,
    SERIAL_RANDOM_BYTES,
    Layout,
    cell_digest,
    format_serial,
    parse_cell,
    serial_from_random,
    verify_cell,
)
from qrgate.errors import Conflict, Frozen, InvalidField, NotFound, Rejected
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.storage.audit import search_audit
from qrgate.storage.models import gridcard_cells
from support.stack import Stack


def issue(stack: Stack, login: str = "alice", **options: Any) -> IssuedCard:
    arguments: dict[str, Any] = {"layout": Layout(), "ttl_days": 365, "issuer": "operator",
                                 "actor": "test"}
    return cards.run_issue(stack.rt, org_slug="bank", login=login, **{**arguments, **options})


def user_id(stack: Stack, login: str = "alice") -> int:
    with stack.rt.read() as conn:
        return directory.find_user(conn, org_id=directory.org_id_by_slug(conn, "bank"),
                                   login=login).id


def raw_rows(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Every row of the two card tables, as the database holds them."""
    metadata = MetaData()
    metadata.reflect(bind=stack.rt.engine, only=["gridcards", "gridcard_cells"])
    with stack.rt.engine.connect() as conn:
        return {name: [dict(row._mapping) for row in conn.execute(select(table))]
                for name, table in metadata.tables.items()}


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def test_a_card_is_stored_as_keyed_cell_digests_only(stack: Stack) -> None:
    drawn: list[bytes] = []

    def recording(size: int) -> bytes:
        drawn.append(os.urandom(size))
        return drawn[-1]

    stack.rt.random = recording
    issued = issue(stack)
    (key,) = [value for value in drawn if len(value) == CARD_KEY_BYTES]
    rows = raw_rows(stack)
    (card,) = rows["gridcards"]
    assert (card["serial"], card["status"], card["rows"], card["columns"]) == (
        issued.record.serial, "active", 6, 5)
    assert card["expires_at"] == card["created_at"] + 365 * 86_400 == stack.clock() + 365 * 86_400
    stored = {row["position"]: bytes(row["digest"]) for row in rows["gridcard_cells"]}
    assert len(stored) == 30 and len(issued.card.cells) == 30
    for cell in issued.card.cells:
        assert stored[cell.position.label] == stack.rt.digests.digest(
            cell.content, purpose="gridcard_cell")
    # No cell, no cell's secret, no unkeyed digest and no card key, in any column.
    needles = {key, key.hex().encode(), key.hex().upper().encode()}
    for cell in issued.card.cells:
        content = cell.content.encode()
        needles |= {content, parse_cell(cell.content).secret.encode(),
                    hashlib.sha256(content).digest(), cell_digest(cell.content)}
    for table, table_rows in rows.items():
        for row in table_rows:
            for column, value in row.items():
                held = as_bytes(value)
                assert not any(needle in held for needle in needles), (table, column)


def test_stored_digests_check_the_printed_cells(stack: Stack) -> None:
    issued = issue(stack)
    with stack.rt.read() as conn:
        active = cards.active_card(conn, user_id(stack))
        assert active is not None and active.serial == issued.record.serial
        digests = cards.card_digests(conn, active.id)
    for cell in issued.card.cells[::7]:
        verified = verify_cell(content=cell.content, expected_serial=active.serial,
                               expected_position=cell.position, cell_digests=digests,
                               digest=cards.cell_digester(stack.rt.digests))
        assert verified.position == cell.position


def test_reissue_revokes_the_old_card_in_the_same_transaction(stack: Stack) -> None:
    old = issue(stack)
    stack.clock.advance(60)

    def printer_jams(issued: IssuedCard) -> None:
        raise OSError("printer jammed")

    # The new card is not delivered: nothing changes, the old card still works.
    with pytest.raises(OSError):
        issue(stack, deliver=printer_jams)
    with stack.rt.read() as conn:
        (only,) = cards.list_cards(conn, user_id(stack))
        assert (only.serial, only.status) == (old.record.serial, "active")
        assert len(cards.card_digests(conn, only.id)) == 30
    new = issue(stack)
    assert new.replaced == old.record.serial
    with stack.rt.read() as conn:
        listed = cards.list_cards(conn, user_id(stack))
        active = cards.active_card(conn, user_id(stack))
        digests = cards.card_digests(conn, new.record.id)
        assert cards.card_digests(conn, old.record.id) == {}
    assert [(card.serial, card.status) for card in listed] == [
        (new.record.serial, "active"), (old.record.serial, "revoked")]
    assert listed[1].revoked_at == listed[0].created_at == stack.clock()
    assert active is not None and active.id == new.record.id
    # An old cell is refused against the user's card now: it is of another card.
    cell = old.card.cells[0]
    with pytest.raises(Rejected) as refused:
        verify_cell(content=cell.content, expected_serial=active.serial,
                    expected_position=cell.position, cell_digests=digests,
                    digest=cards.cell_digester(stack.rt.digests))
    assert refused.value.code == "wrong_card"


def test_a_serial_already_taken_is_drawn_again(stack: Stack) -> None:
    taken = os.urandom(SERIAL_RANDOM_BYTES)
    serials = deque([taken, taken, os.urandom(SERIAL_RANDOM_BYTES)])

    def draws(size: int) -> bytes:
        return serials.popleft() if size == SERIAL_RANDOM_BYTES else os.urandom(size)

    stack.rt.random = draws
    first = issue(stack, login="bob")
    second = issue(stack, login="alice")
    assert first.record.serial == serial_from_random(taken) != second.record.serial
    assert not serials


def test_revoke(stack: Stack) -> None:
    issued = issue(stack)
    typed = format_serial(issued.record.serial).lower()
    revoked = cards.run_revoke(stack.rt, serial=typed, actor="test")
    assert (revoked.serial, revoked.status, revoked.revoked_at, revoked.used_cells) == (
        issued.record.serial, "revoked", stack.clock(), None)
    with stack.rt.read() as conn:
        assert cards.active_card(conn, user_id(stack)) is None
        assert cards.card_digests(conn, issued.record.id) == {}
    with pytest.raises(Conflict):
        cards.run_revoke(stack.rt, serial=issued.record.serial, actor="test")
    with pytest.raises(NotFound) as unknown:
        cards.run_revoke(stack.rt, serial=serial_from_random(os.urandom(6)), actor="test")
    assert unknown.value.code == "not_found"
    with pytest.raises(InvalidField):
        cards.run_revoke(stack.rt, serial="not a serial", actor="test")


def test_list_counts_used_cells_and_flags_near_exhaustion(stack: Stack) -> None:
    issued = issue(stack)
    labels = [cell.position.label for cell in issued.card.cells]

    def use(count: int) -> cards.CardRecord:
        with stack.rt.engine.begin() as conn:
            conn.execute(update(gridcard_cells)
                         .where(gridcard_cells.c.card_id == issued.record.id,
                                gridcard_cells.c.position.in_(labels[:count]))
                         .values(used_at=stack.clock()))
        with stack.rt.read() as conn:
            (listed,) = cards.list_cards(conn, user_id(stack))
        return listed

    assert (use(0).used_cells, use(0).near_exhaustion) == (0, False)
    assert (use(23).used_cells, use(23).near_exhaustion) == (23, False)
    assert (use(24).used_cells, use(24).near_exhaustion) == (24, True)  # 80 % of 30
    assert use(30).near_exhaustion
    with stack.rt.read() as conn:
        assert cards.list_cards(conn, user_id(stack, "bob")) == []


def test_a_frozen_user_gets_no_card(stack: Stack) -> None:
    old = issue(stack)
    with stack.rt.engine.begin() as conn:
        directory.set_frozen(conn, user_id=user_id(stack), frozen=True, now=stack.clock())
    with pytest.raises(Frozen):
        issue(stack)
    with stack.rt.read() as conn:
        (only,) = cards.list_cards(conn, user_id(stack))
    assert (only.serial, only.status) == (old.record.serial, "active")


def test_a_card_lives_1_to_3650_days(stack: Stack) -> None:
    for days in (0, 3651):
        with pytest.raises(InvalidField):
            issue(stack, ttl_days=days)
    assert issue(stack, ttl_days=3650).record.expires_at == stack.clock() + 3650 * 86_400


def test_issue_and_revoke_are_audited(stack: Stack) -> None:
    first = issue(stack)
    second = issue(stack)
    cards.run_revoke(stack.rt, serial=second.record.serial, actor="test")
    with stack.rt.engine.begin() as conn:
        directory.set_frozen(conn, user_id=user_id(stack), frozen=True, now=stack.clock())
    with pytest.raises(Frozen):
        issue(stack)
    with stack.rt.read() as conn:
        issues = search_audit(conn, event="gridcard.issue")
        revokes = search_audit(conn, event="gridcard.revoke")
    alice = user_id(stack)
    assert [(e["reason"], e["scheme"], e["user_id"], e["org_id"]) for e in issues] == [
        ("frozen", "gridcard", alice, 1), ("issued", "gridcard", alice, 1),
        ("issued", "gridcard", alice, 1)]
    assert issues[1]["detail"] == {
        "actor": "test", "issued_by": "operator", "serial": second.record.serial,
        "replaced": first.record.serial, "expires_at": second.record.expires_at,
        "layout": "6x5"}
    assert issues[2]["detail"]["replaced"] is None
    assert [(e["reason"], e["user_id"], e["detail"]) for e in revokes] == [
        ("revoked", alice, {"actor": "test", "serial": second.record.serial})]
    entries = repr(issues + revokes)
    assert not any(cell.content in entries or parse_cell(cell.content).secret in entries
                   for card in (first, second) for cell in card.card.cells)
