"""Signed checkpoints stored next to the audit log, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from qrgate.audit_checkpointer import AuditCheckpointer
from qrgate.core.audit_checkpoint import Checkpoint, SignedCheckpoint, read_export
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import Rejected
from qrgate.storage.audit import verify_audit
from qrgate.storage.audit_checkpoints import (
    AnchoredReport,
    checkpoint_texts,
    latest_checkpoint,
    verify_anchored,
    write_checkpoint,
)
from qrgate.storage.db import READ_ONLY
from qrgate.storage.models import AuditEntry, audit_checkpoints, audit_head
from support.audit_attack import T0, edit_and_rehash, fill
from support.race import race
from support.stack import Stack, clock, stack_factory

__all__ = ["clock", "stack_factory"]

RING = KeyRing(active=SigningKey.generate(now=T0))
KEYS = RING.public_keys()
ATTACKER = KeyRing(active=SigningKey.generate(now=T0))


def checkpoint(engine: Engine, *, ring: KeyRing = RING, now: float = T0) -> SignedCheckpoint | None:
    return write_checkpoint(engine, signer=ring, issuer="qrgate", now=now)


def verify(
    engine: Engine, *, exported: dict[int, bytes] | None = None, batch_size: int = 1000
) -> AnchoredReport:
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        report = verify_anchored(conn, keys=KEYS, exported=exported, batch_size=batch_size)
        conn.rollback()
    return report


def problem(engine: Engine) -> tuple[str | None, int | None]:
    report = verify(engine).checkpoints
    return report.problem, report.first_bad_number


def test_nothing_to_sign_on_an_empty_log(engine: Engine) -> None:
    assert checkpoint(engine) is None
    report = verify(engine)
    assert report.ok and (report.covered, report.only_chained) == (0, 0)


def test_checkpoints_follow_the_head(engine: Engine) -> None:
    fill(engine, 5)
    first = checkpoint(engine)
    assert first is not None
    assert (first.checkpoint.number, first.checkpoint.seq) == (1, 5)
    assert checkpoint(engine) is None  # the head did not move
    fill(engine, 3)
    second = checkpoint(engine, now=T0 + 60)
    assert second is not None
    assert (second.checkpoint.number, second.checkpoint.seq) == (2, 8)
    assert second.checkpoint.prev == first.digest
    with engine.connect() as conn:
        assert list(checkpoint_texts(conn, batch_size=1)) == [first.text, second.text]
        assert latest_checkpoint(conn) == second.checkpoint
        conn.rollback()
    fill(engine, 2)
    report = verify(engine, batch_size=1)
    assert report.ok
    assert (report.chain.checked, report.covered, report.only_chained) == (10, 8, 2)


def test_edit_and_rehash_passes_the_chain_but_not_the_checkpoints(engine: Engine) -> None:
    fill(engine, 10)
    assert checkpoint(engine) is not None
    fill(engine, 2)
    edit_and_rehash(engine, seq=4, detail={"amount": "99999.00", "ip": "192.0.2.7"})
    with engine.connect() as conn:
        assert verify_audit(conn).ok  # what `qrgate audit verify` checked before checkpoints
        conn.rollback()
    report = verify(engine)
    assert report.chain.ok and not report.ok
    assert (report.checkpoints.problem, report.checkpoints.first_bad_number) == (
        "entry_mismatch", 1)
    # The writer will not sign on top of the rewritten log either.
    with pytest.raises(Rejected) as refused:
        checkpoint(engine)
    assert refused.value.code == "tampered_chain"


def test_edits_after_the_last_checkpoint_are_not_caught(engine: Engine) -> None:
    """The documented limit: entries after the newest checkpoint rest on the chain alone."""
    fill(engine, 10)
    checkpoint(engine)
    fill(engine, 5)
    edit_and_rehash(engine, seq=13, detail={"amount": "0.01"})
    report = verify(engine)
    assert report.ok and (report.covered, report.only_chained) == (10, 5)


def test_cut_tail_with_a_moved_head_is_caught(engine: Engine) -> None:
    fill(engine, 10)
    checkpoint(engine)
    with engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq > 6))
        six = conn.execute(select(AuditEntry.hash).where(AuditEntry.seq == 6)).scalar_one()
        conn.execute(update(audit_head).values(seq=6, hash=six))
    assert verify(engine).chain.ok
    assert problem(engine) == ("entry_missing", 1)
    with pytest.raises(Rejected, match="before checkpoint 1"):
        checkpoint(engine)


def test_deleted_or_edited_checkpoints_are_caught(engine: Engine) -> None:
    for _ in range(3):
        fill(engine, 2)
        checkpoint(engine)
    with engine.begin() as conn:
        text = conn.execute(
            select(audit_checkpoints.c.text).where(audit_checkpoints.c.number == 2)
        ).scalar_one()
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.number == 2)
                     .values(text=text[:-2] + ("AA" if text[-2:] != "AA" else "BA")))
    assert problem(engine)[1] == 2
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.number == 2))
    assert problem(engine) == ("gap", 2)


def test_forged_checkpoint_is_refused(engine: Engine) -> None:
    """The attacker rewrites the log and signs a checkpoint over it with a key of theirs."""
    fill(engine, 6)
    genuine = checkpoint(engine)
    assert genuine is not None
    edit_and_rehash(engine, seq=2, detail={"amount": "1.00"})
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints))
    forged = checkpoint(engine, ring=ATTACKER)
    assert forged is not None and forged.checkpoint.number == 1
    assert problem(engine) == ("unknown_key", 1)
    # Nor does putting the genuine one back help: it no longer matches the log.
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints))
        conn.execute(insert(audit_checkpoints).values(number=1, seq=6, text=genuine.text))
    assert problem(engine) == ("entry_mismatch", 1)


def test_deleted_newest_checkpoint_is_caught_only_against_an_export(engine: Engine) -> None:
    for _ in range(3):
        fill(engine, 2)
        checkpoint(engine)
    with engine.connect() as conn:
        exported = read_export(checkpoint_texts(conn), keys=KEYS)
        conn.rollback()
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.number == 3))
    assert verify(engine).ok
    report = verify(engine, exported=exported).checkpoints
    assert (report.problem, report.first_bad_number) == ("missing_exported", 3)


def test_racing_writers_keep_one_chain(engine: Engine, make_engine: Callable[[], Engine]) -> None:
    """Separate engines, as separate nodes: each round exactly one of them signs."""
    nodes = [make_engine() for _ in range(4)]
    for round_number in range(1, 6):
        fill(engine, 2, start=T0 + 10 * round_number)
        results = race([partial(checkpoint, node, now=T0 + i) for i, node in enumerate(nodes)])
        winners = [result.checkpoint for result in results if result is not None]
        assert [(w.number, w.seq) for w in winners] == [(round_number, 2 * round_number)]
    report = verify(engine)
    assert report.ok and report.checkpoints.checked == 5 and report.only_chained == 0


# --- the background task ---------------------------------------------------------------------


def wait_for_checkpoint(engine: Engine, *, seq: int, timeout: float = 15.0) -> Checkpoint:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            last = latest_checkpoint(conn)
            conn.rollback()
        if last is not None and last.seq >= seq:
            return last
        assert time.monotonic() < deadline, f"no checkpoint at entry {seq}; last {last}"
        time.sleep(0.1)


def test_running_server_signs_checkpoints_after_appends(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(audit_checkpoint_seconds=1)
    engine = stack.rt.engine
    fill(engine, 3)
    first = wait_for_checkpoint(engine, seq=3)
    assert first.issuer == stack.rt.settings.issuer
    fill(engine, 4)
    second = wait_for_checkpoint(engine, seq=7)
    assert second.number > first.number
    with engine.connect() as conn:
        report = verify_anchored(conn, keys=stack.rt.keyring.public_keys())
        conn.rollback()
    assert report.ok and report.covered == 7


def test_checkpointer_can_be_turned_off_and_survives_tampering(
    stack_factory: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    stack = stack_factory(audit_checkpoint_seconds=0)
    engine = stack.rt.engine
    fill(engine, 3)
    time.sleep(1.5)
    with engine.connect() as conn:
        assert latest_checkpoint(conn) is None
        conn.rollback()

    checkpointer = AuditCheckpointer(stack.rt, interval=0)

    async def start_and_close() -> None:
        checkpointer.start()
        await checkpointer.close()

    asyncio.run(start_and_close())  # turned off: nothing starts, closing returns at once
    assert checkpointer.tick() is not None
    fill(engine, 1)
    edit_and_rehash(engine, seq=2, detail={})
    with caplog.at_level(logging.ERROR, logger="qrgate.audit_checkpointer"):
        assert checkpointer.tick() is None
    assert "tampered_chain" in caplog.text
