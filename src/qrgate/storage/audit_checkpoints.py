"""Write, list and verify the signed checkpoints of the audit chain.

Writing a checkpoint never takes the audit head's row lock and never signs inside a write
transaction: it reads the head and the last checkpoint in a read-only transaction, signs
with no transaction open, then inserts in a transaction of one statement. Appenders are
therefore never held up by signing. Nodes racing to write the same next checkpoint
collide on its number (or seq) and ``INSERT ... ON CONFLICT DO NOTHING`` keeps the
first; the others simply wrote nothing and try again at their next turn.

The writer refuses to extend the checkpoints over a log that no longer holds what the last
checkpoint signed (``Rejected``, code ``tampered_chain``), so a rewrite is reported at the
next turn instead of waiting for someone to run ``qrgate audit verify``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from qrgate.core.audit_chain import ChainReport
from qrgate.core.audit_checkpoint import (
    Checkpoint,
    CheckpointReport,
    SignedCheckpoint,
    Signer,
    StoredCheckpoint,
    next_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoints,
)
from qrgate.errors import Malformed, Rejected
from qrgate.storage.audit import verify_audit
from qrgate.storage.db import READ_ONLY
from qrgate.storage.models import audit_checkpoints, audit_head, audit_log

# RETURNING says whether the row went in: a driver's rowcount for ON CONFLICT DO NOTHING
# is not reliable (psycopg reports -1 here).
_INSERT_OR_NOTHING = {
    "postgresql": postgresql.insert(audit_checkpoints)
    .on_conflict_do_nothing().returning(audit_checkpoints.c.number),
    "sqlite": sqlite.insert(audit_checkpoints)
    .on_conflict_do_nothing().returning(audit_checkpoints.c.number),
}
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_LAST_TEXT = (
    select(audit_checkpoints.c.text).order_by(audit_checkpoints.c.number.desc()).limit(1)
)


@dataclass(frozen=True, kw_only=True, slots=True)
class AnchoredReport:
    """The chain's report and the checkpoints' report of one ``verify_anchored`` run."""

    chain: ChainReport
    checkpoints: CheckpointReport

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.checkpoints.ok

    @property
    def covered(self) -> int:
        """Entries up to the newest verified checkpoint: edits to them are detected."""
        return self.checkpoints.covered_seq

    @property
    def only_chained(self) -> int:
        """Entries after the newest checkpoint: protected by the hash chain alone."""
        return max(0, self.chain.checked - self.covered)


def write_checkpoint(
    engine: Engine, *, signer: Signer, issuer: str, now: float
) -> SignedCheckpoint | None:
    """Sign and store a checkpoint of the current head; None when there is nothing new
    since the last checkpoint, or when another node stored the next one first."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        head_seq, head_hash, last = _tip(conn)
        conn.rollback()
    if head_seq == 0 or (last is not None and last.seq == head_seq):
        return None
    checkpoint = next_checkpoint(
        previous=last, seq=head_seq, entry_hash=head_hash, now=now, issuer=issuer
    )
    signed = sign_checkpoint(checkpoint, signer=signer)
    with engine.begin() as conn:
        insert = _INSERT_OR_NOTHING[conn.dialect.name]
        inserted = conn.execute(
            insert, {"number": checkpoint.number, "seq": checkpoint.seq, "text": signed.text}
        ).first()
    return signed if inserted is not None else None


def _tip(conn: Connection) -> tuple[int, bytes, Checkpoint | None]:
    """The head and the last checkpoint, after checking the log still matches both."""
    head = conn.execute(_HEAD).one_or_none()
    if head is None:
        raise RuntimeError("audit head row is missing: run qrgate.storage.schema.upgrade")
    head_seq, head_hash = int(head[0]), bytes(head[1])
    last_text = conn.execute(_LAST_TEXT).scalar_one_or_none()
    last = None if last_text is None else _parse_stored(last_text)
    wanted = {head_seq} if last is None else {head_seq, last.seq}
    hashes = {
        int(seq): bytes(digest)
        for seq, digest in conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.seq.in_(wanted))
        )
    }
    if last is not None:
        if last.seq > head_seq:
            raise Rejected(
                f"the log ends at entry {head_seq}, before checkpoint {last.number}'s entry "
                f"{last.seq}", code="tampered_chain",
            )
        if not hmac.compare_digest(hashes.get(last.seq, b""), last.entry_hash):
            raise Rejected(
                f"entry {last.seq} no longer matches checkpoint {last.number}",
                code="tampered_chain",
            )
    if head_seq and not hmac.compare_digest(hashes.get(head_seq, b""), head_hash):
        raise Rejected(f"the head does not match entry {head_seq}", code="tampered_chain")
    return head_seq, head_hash, last


def _parse_stored(text: str) -> Checkpoint:
    try:
        return parse_checkpoint(text).checkpoint
    except Malformed as error:
        raise Rejected(
            f"the last stored checkpoint does not parse: {error.detail}", code="tampered_chain"
        ) from error


def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    """The newest stored checkpoint, parsed but not verified."""
    text = conn.execute(_LAST_TEXT).scalar_one_or_none()
    return None if text is None else parse_checkpoint(text).checkpoint


def stored_checkpoints(conn: Connection, *, batch_size: int = 1000) -> Iterator[StoredCheckpoint]:
    """Every stored checkpoint in number order, with the hash the log holds at its seq."""
    after = 0
    while True:
        # Keyset paging, and the log's hash joined in: one index lookup per checkpoint.
        rows = conn.execute(
            select(
                audit_checkpoints.c.number,
                audit_checkpoints.c.seq,
                audit_checkpoints.c.text,
                audit_log.c.hash,
            )
            .select_from(
                audit_checkpoints.outerjoin(audit_log, audit_log.c.seq == audit_checkpoints.c.seq)
            )
            .where(audit_checkpoints.c.number > after)
            .order_by(audit_checkpoints.c.number)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        for number, seq, text, log_hash in rows:
            yield StoredCheckpoint(
                number=int(number),
                seq=int(seq),
                text=text,
                log_hash=None if log_hash is None else bytes(log_hash),
            )
        after = int(rows[-1][0])


def checkpoint_texts(conn: Connection, *, batch_size: int = 1000) -> Iterator[str]:
    """The stored checkpoints as exported: one line of text each, in number order."""
    for stored in stored_checkpoints(conn, batch_size=batch_size):
        yield stored.text


def verify_anchored(
    conn: Connection,
    *,
    keys: Mapping[bytes, ec.EllipticCurvePublicKey],
    exported: Mapping[int, bytes] | None = None,
    batch_size: int = 1000,
) -> AnchoredReport:
    """Verify the stored checkpoints (and an exported copy's, if given), then the chain.

    Checkpoints come first: the head read afterwards is at or past every checkpoint read,
    so while other nodes append, no checkpoint looks newer than the chain it covers.
    """
    checkpoints = verify_checkpoints(
        stored_checkpoints(conn, batch_size=batch_size), keys=keys, exported=exported
    )
    chain = verify_audit(conn, batch_size=batch_size)
    return AnchoredReport(chain=chain, checkpoints=checkpoints)
