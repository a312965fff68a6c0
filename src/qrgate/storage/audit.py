"""Append to, verify and search the hash-chained audit log.

Appending takes the head row's lock first, so appenders on every node form one queue and
the chain never forks: on PostgreSQL the ``UPDATE ... RETURNING`` on ``audit_head`` holds
that row lock until the caller's transaction ends; on SQLite the write lock taken by
``BEGIN IMMEDIATE`` already admits one writer at a time. Because the entry is written in
the caller's transaction, a state change and the entry recording it commit (or vanish)
together.

Never put secrets in ``detail`` (passwords, one-time codes, API keys, TOTP seeds, browser
secrets, private keys): the log is kept long and read by operators. Key names that look
like secrets are refused; record identifiers or digests instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row

from qrgate.core.audit_chain import (
    AuditRecord,
    ChainReport,
    canonical_at,
    canonical_detail,
    entry_digest,
    verify_chain,
)
from qrgate.storage.models import AuditEntry, AuditHead, audit_head

MAX_SEARCH_LIMIT = 1000

# Column widths of audit_log: PostgreSQL rejects longer values while SQLite would keep
# them, so check here to behave the same on both.
_WIDTHS = {"event": 48, "reason": 48, "scheme": 16, "device_id": 32, "challenge_id": 32}

# Core statements rather than text(): their compiled form, result metadata included, is
# cached, where a text() RETURNING rebuilt its result metadata on every append.
_LOCK_HEAD = (
    update(audit_head).where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + 1).returning(audit_head.c.seq, audit_head.c.hash)
)
_SET_HEAD_HASH = (
    update(audit_head).where(audit_head.c.id == 1).values(hash=bindparam("b_hash"))
)
# Built once and given parameters per call: building ``.values(...)`` each time cost more
# than the three statements themselves.
_INSERT_ENTRY = insert(AuditEntry)

_ENTRY_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.event,
    AuditEntry.reason,
    AuditEntry.scheme,
    AuditEntry.org_id,
    AuditEntry.app_id,
    AuditEntry.user_id,
    AuditEntry.device_id,
    AuditEntry.challenge_id,
    AuditEntry.detail,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


def append_audit(
    conn: Connection,
    *,
    now: float,
    event: str,
    reason: str,
    scheme: str = "",
    org_id: int | None = None,
    app_id: int | None = None,
    user_id: int | None = None,
    device_id: str | None = None,
    challenge_id: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> int:
    """Append one entry inside the caller's open transaction; returns its seq.

    The head row stays locked until that transaction ends, so keep it short.
    """
    if not conn.in_transaction():
        raise RuntimeError("append_audit must run inside the caller's transaction")
    if not event:
        raise ValueError("audit event must not be empty")
    _check_widths(
        event=event, reason=reason, scheme=scheme, device_id=device_id, challenge_id=challenge_id
    )
    at = canonical_at(now)
    body = canonical_detail(detail)

    head = conn.execute(_LOCK_HEAD).one_or_none()
    if head is None:
        raise RuntimeError("audit head row is missing: run qrgate.storage.schema.upgrade")
    seq, prev_hash = int(head[0]), bytes(head[1])
    digest = entry_digest(
        prev_hash=prev_hash,
        seq=seq,
        at=at,
        event=event,
        reason=reason,
        scheme=scheme,
        org_id=org_id,
        app_id=app_id,
        user_id=user_id,
        device_id=device_id,
        challenge_id=challenge_id,
        detail=body,
    )
    conn.execute(
        _INSERT_ENTRY,
        {
            "seq": seq,
            "at": at,
            "event": event,
            "reason": reason,
            "scheme": scheme,
            "org_id": org_id,
            "app_id": app_id,
            "user_id": user_id,
            "device_id": device_id,
            "challenge_id": challenge_id,
            "detail": body,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    conn.execute(_SET_HEAD_HASH, {"b_hash": digest})
    return seq


def _check_widths(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and len(value) > _WIDTHS[name]:
            raise ValueError(f"audit {name} is longer than {_WIDTHS[name]} characters")


def verify_audit(conn: Connection, *, batch_size: int = 1000) -> ChainReport:
    """Verify the whole stored chain against the head row, reading ``batch_size`` at a time.

    Entries appended after the head is read are left for the next run, so this is safe
    while other nodes append. On SQLite, a connection with ``READ_ONLY`` set (see
    ``qrgate.storage.db``) verifies without holding the write lock.
    """
    head = conn.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
    ).one_or_none()
    if head is None:
        return ChainReport(ok=False, checked=0, first_bad_seq=None, problem="head_mismatch")
    head_seq, head_hash = int(head[0]), bytes(head[1])
    entries = _stream_entries(conn, up_to=head_seq, batch_size=batch_size)
    return verify_chain(entries, head=(head_seq, head_hash))


def _stream_entries(conn: Connection, *, up_to: int, batch_size: int) -> Iterator[AuditRecord]:
    after = 0
    while True:
        # Keyset paging: each batch is an index range scan, however deep into the log.
        rows = conn.execute(
            select(*_ENTRY_COLUMNS)
            .where(AuditEntry.seq > after, AuditEntry.seq <= up_to)
            .order_by(AuditEntry.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _record(row)
        after = int(rows[-1].seq)


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        at=float(row.at),
        event=row.event,
        reason=row.reason,
        scheme=row.scheme,
        org_id=row.org_id,
        app_id=row.app_id,
        user_id=row.user_id,
        device_id=row.device_id,
        challenge_id=row.challenge_id,
        detail=row.detail,
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
    )


def search_audit(
    conn: Connection,
    *,
    challenge_id: str | None = None,
    user_id: int | None = None,
    event: str | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries matching every given filter, newest first; pass the last seq seen as
    ``before_seq`` for the next page. Hashes come back as hex strings."""
    stmt = select(*_ENTRY_COLUMNS)
    if challenge_id is not None:
        stmt = stmt.where(AuditEntry.challenge_id == challenge_id)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    if event is not None:
        stmt = stmt.where(AuditEntry.event == event)
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    stmt = stmt.order_by(AuditEntry.seq.desc()).limit(max(1, min(limit, MAX_SEARCH_LIMIT)))
    found = []
    for row in conn.execute(stmt):
        item = dict(row._mapping)
        item["prev_hash"] = bytes(row.prev_hash).hex()
        item["hash"] = bytes(row.hash).hex()
        found.append(item)
    return found
