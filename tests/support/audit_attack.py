"""Audit log helpers: fill a log, and rewrite it the way an attacker with database write
access (but no signing key) would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from qrgate.core.audit_chain import entry_digest
from qrgate.storage.audit import append_audit
from qrgate.storage.models import AuditEntry, audit_head, audit_log

T0 = 1_700_000_000.0


def fill(engine: Engine, count: int, *, start: float = T0) -> None:
    for i in range(count):
        with engine.begin() as conn:
            append_audit(conn, now=start + i, event="challenge.approved", reason="ok",
                         scheme="confirm", user_id=i % 3, challenge_id=f"{i:032x}",
                         detail={"amount": f"{10 + i}.00", "ip": "192.0.2.7"})


def edit_and_rehash(engine: Engine, *, seq: int, detail: dict[str, Any]) -> None:
    """Replace entry ``seq``'s detail, then recompute every later hash and the head."""
    with engine.begin() as conn:
        conn.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(detail=detail))
        entries = conn.execute(
            select(audit_log).where(audit_log.c.seq >= seq).order_by(audit_log.c.seq)
        ).all()
        prev_hash = bytes(conn.execute(
            select(AuditEntry.hash).where(AuditEntry.seq == seq - 1)
        ).scalar_one()) if seq > 1 else bytes(32)
        for entry in entries:
            digest = entry_digest(
                prev_hash=prev_hash, seq=entry.seq, at=entry.at, event=entry.event,
                reason=entry.reason, scheme=entry.scheme, org_id=entry.org_id,
                app_id=entry.app_id, user_id=entry.user_id, device_id=entry.device_id,
                challenge_id=entry.challenge_id, detail=entry.detail,
            )
            conn.execute(update(AuditEntry).where(AuditEntry.seq == entry.seq)
                         .values(prev_hash=prev_hash, hash=digest))
            prev_hash = digest
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=prev_hash))
