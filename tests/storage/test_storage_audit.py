"""The stored audit chain on real SQLite and PostgreSQL: appends, tampering, concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Engine

from qrgate.core.audit_chain import GENESIS, canonical_at
from qrgate.storage.audit import append_audit, search_audit, verify_audit
from qrgate.storage.db import READ_ONLY
from qrgate.storage.models import AuditEntry

T0 = 1_700_000_000.0


def fill(engine: Engine, count: int, *, start: float = T0) -> None:
    for i in range(count):
        with engine.begin() as conn:
            append_audit(
                conn,
                now=start + i * 0.001,
                event="challenge.approved" if i % 2 else "challenge.created",
                reason="ok",
                scheme="C",
                org_id=1,
                app_id=2,
                user_id=i % 5,
                device_id=f"{i % 3:032x}",
                challenge_id=f"{i // 4:032x}",
                detail={"n": i, "ip": "192.0.2.7", "nested": {"ok": True, "f": 0.5}},
            )


def verify(engine: Engine, **kwargs: Any) -> tuple[bool, str | None, int | None, int]:
    with engine.connect() as conn:
        report = verify_audit(conn, **kwargs)
        conn.rollback()
    return report.ok, report.problem, report.first_bad_seq, report.checked


def test_empty_log_verifies(engine: Engine) -> None:
    assert verify(engine) == (True, None, None, 0)


def test_thousand_appends_verify(engine: Engine) -> None:
    fill(engine, 1000)
    assert verify(engine) == (True, None, None, 1000)
    # Small batches cross many page boundaries and must give the same answer.
    assert verify(engine, batch_size=7) == (True, None, None, 1000)
    with engine.connect() as conn:
        seqs = conn.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars().all()
        head = conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one()
        conn.rollback()
    assert seqs == list(range(1, 1001))
    assert head == 1000


def test_chain_links_start_at_genesis(engine: Engine) -> None:
    fill(engine, 3)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.prev_hash, AuditEntry.hash).order_by(AuditEntry.seq)
        ).all()
        conn.rollback()
    assert bytes(rows[0][0]) == GENESIS
    assert bytes(rows[1][0]) == bytes(rows[0][1])
    assert bytes(rows[2][0]) == bytes(rows[1][1])


@pytest.mark.parametrize(
    "values",
    [{"reason": "edited"}, {"detail": {"n": 99}}, {"at": T0 + 5}, {"user_id": None}],
    ids=["reason", "detail", "at", "user_id"],
)
def test_edited_entry_is_a_hash_mismatch(engine: Engine, values: dict[str, Any]) -> None:
    fill(engine, 20)
    with engine.begin() as conn:
        conn.execute(update(AuditEntry).where(AuditEntry.seq == 7).values(**values))
    assert verify(engine)[:3] == (False, "hash_mismatch", 7)


def test_edit_in_raw_sql_is_a_hash_mismatch(engine: Engine) -> None:
    fill(engine, 20)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = :r WHERE seq = :s"), {"r": "x", "s": 11})
    assert verify(engine)[:3] == (False, "hash_mismatch", 11)


def test_deleted_middle_entry_is_a_gap(engine: Engine) -> None:
    fill(engine, 20)
    with engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq == 10))
    assert verify(engine)[:3] == (False, "gap", 10)
    assert verify(engine, batch_size=3)[:3] == (False, "gap", 10)


def test_swapped_contents_are_detected(engine: Engine) -> None:
    fill(engine, 20)
    movable = [c for c in AuditEntry.__table__.columns if c.name != "seq"]
    with engine.begin() as conn:
        five, six = (
            conn.execute(select(*movable).where(AuditEntry.seq == seq)).one()._asdict()
            for seq in (5, 6)
        )
        conn.execute(update(AuditEntry).where(AuditEntry.seq == 5).values(**six))
        conn.execute(update(AuditEntry).where(AuditEntry.seq == 6).values(**five))
    assert verify(engine)[:3] == (False, "hash_mismatch", 5)


def test_cut_tail_is_a_head_mismatch(engine: Engine) -> None:
    fill(engine, 20)
    with engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq == 20))
    assert verify(engine)[:3] == (False, "head_mismatch", 20)


def test_missing_head_row_is_reported(engine: Engine) -> None:
    fill(engine, 2)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    assert verify(engine)[:2] == (False, "head_mismatch")
    with engine.begin() as conn, pytest.raises(RuntimeError, match="head row"):
        append_audit(conn, now=T0, event="x", reason="y")


def test_rolled_back_append_leaves_no_trace(engine: Engine) -> None:
    fill(engine, 2)
    with engine.connect() as conn:
        conn.begin()
        assert append_audit(conn, now=T0, event="x", reason="y") == 3
        conn.rollback()
    fill(engine, 1)
    assert verify(engine) == (True, None, None, 3)


def test_append_needs_the_callers_transaction(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(RuntimeError, match="transaction"):
        append_audit(conn, now=T0, event="x", reason="y")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": ""},
        {"event": "e" * 49},
        {"reason": "r" * 49},
        {"scheme": "s" * 17},
        {"challenge_id": "c" * 33},
        {"detail": {"api_secret": "x"}},
        {"detail": {"raw": b"\x00"}},
        {"now": float("nan")},
    ],
)
def test_invalid_entries_are_refused(engine: Engine, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"now": T0, "event": "e", "reason": "r", **kwargs}
    with engine.begin() as conn, pytest.raises((ValueError, TypeError)):
        append_audit(conn, **args)
    assert verify(engine) == (True, None, None, 0)


@pytest.mark.parametrize(
    "at",
    [0.0, 0.1, 1e-7, 123.4567891, T0 + 0.123456, T0 + 0.1234567, 4_102_444_800.999999, 2**40 + 0.5],
)
def test_times_round_trip_exactly(engine: Engine, at: float) -> None:
    with engine.begin() as conn:
        seq = append_audit(conn, now=at, event="t", reason="r", detail={"f": 0.1, "big": 2**60})
    with engine.connect() as conn:
        stored = conn.execute(select(AuditEntry.at).where(AuditEntry.seq == seq)).scalar_one()
        conn.rollback()
    assert stored == canonical_at(at)
    assert verify(engine) == (True, None, None, 1)


def run_appenders(engine: Engine, *, threads: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(worker: int) -> None:
        barrier.wait()
        try:
            with engine.connect() as conn:
                for i in range(each):
                    with conn.begin():
                        append_audit(
                            conn,
                            now=T0 + i,
                            event="concurrent",
                            reason="ok",
                            user_id=worker,
                            detail={"i": i},
                        )
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


def test_concurrent_appenders_form_one_chain(engine: Engine) -> None:
    assert run_appenders(engine, threads=8, each=50) == []
    assert verify(engine) == (True, None, None, 400)
    with engine.connect() as conn:
        seqs = conn.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars().all()
        per_user = conn.execute(
            select(AuditEntry.user_id, text("count(*)")).group_by(AuditEntry.user_id)
        ).all()
        conn.rollback()
    assert seqs == list(range(1, 401))
    assert sorted(count for _, count in per_user) == [50] * 8


def test_verify_on_a_read_only_connection(engine: Engine) -> None:
    fill(engine, 5)
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        assert verify_audit(conn).ok
        # A writer is not blocked meanwhile (on SQLite the reader holds no write lock).
        fill(engine, 1, start=T0 + 100)
        conn.rollback()
    assert verify(engine) == (True, None, None, 6)


def test_search_filters_and_pages(engine: Engine) -> None:
    fill(engine, 40)
    with engine.connect() as conn:
        by_challenge = search_audit(conn, challenge_id=f"{3:032x}")
        by_user = search_audit(conn, user_id=2, event="challenge.created", limit=3)
        next_page = search_audit(
            conn, user_id=2, event="challenge.created", limit=3, before_seq=by_user[-1]["seq"]
        )
        everything = search_audit(conn, limit=10_000)
        conn.rollback()
    assert [row["seq"] for row in by_challenge] == [16, 15, 14, 13]
    assert all(row["challenge_id"] == f"{3:032x}" for row in by_challenge)
    assert by_challenge[0]["detail"] == {
        "n": 15,
        "ip": "192.0.2.7",
        "nested": {"ok": True, "f": 0.5},
    }
    assert isinstance(by_challenge[0]["hash"], str) and len(by_challenge[0]["hash"]) == 64
    assert [row["seq"] for row in by_user] == [33, 23, 13]
    assert [row["seq"] for row in next_page] == [3]
    assert len(everything) == 40
