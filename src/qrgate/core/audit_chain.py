"""The audit log's hash chain, as pure functions (no I/O, no clock).

Entry ``n`` stores ``hash_n = SHA-256(canonical CBOR of [domain, hash_{n-1}, n, at, event,
reason, scheme, org_id, app_id, user_id, device_id, challenge_id, detail])`` with
``hash_0 = GENESIS``. CBOR is self-delimiting and typed, so no two different entries encode
alike (``None`` is not ``""``, ``1`` is not ``"1"``, field boundaries cannot shift), and the
canonical form fixes map key order and float width. Hashing ``seq`` makes moving an entry's
content to another position a hash mismatch; chaining ``prev_hash`` makes removal visible;
comparing the last entry with the separately stored head catches a truncated tail.

Values must hash exactly as they read back from SQLite and PostgreSQL, so callers store
``canonical_at(at)`` and ``canonical_detail(detail)`` and hash those very values.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cbor2

GENESIS = bytes(32)
DIGEST_SIZE = 32
_DOMAIN = "qrgate.audit.v1"

MAX_DETAIL_BYTES = 8192
_SECRET_KEY_MARKERS = ("password", "secret", "private")


class EntryView(Protocol):
    """What verification needs of a stored entry (an ``AuditRecord`` or a DB row)."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def event(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def scheme(self) -> str: ...
    @property
    def org_id(self) -> int | None: ...
    @property
    def app_id(self) -> int | None: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def challenge_id(self) -> str | None: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...
    @property
    def prev_hash(self) -> bytes: ...
    @property
    def hash(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: float
    event: str
    reason: str
    scheme: str
    org_id: int | None
    app_id: int | None
    user_id: int | None
    device_id: str | None
    challenge_id: str | None
    detail: Mapping[str, Any]
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of a verification; ``problem`` is one of the stable codes below or None.

    ``hash_mismatch``: an entry's content or links were edited. ``gap``: an entry is
    missing. ``order``: entries are out of order or duplicated. ``head_mismatch``: the last
    entry is not the recorded head (the tail was cut off, or the head was edited).
    ``first_bad_seq`` is the first position whose entry is not what it should be.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def canonical_at(at: float) -> float:
    """``at`` rounded to microseconds: the exact double both databases store and return."""
    value = float(at)
    if not math.isfinite(value):
        # SQLite stores NaN as NULL; infinities are never a real event time.
        raise ValueError("audit time must be finite")
    return round(value, 6)


def canonical_detail(detail: Mapping[str, object] | None) -> dict[str, Any]:
    """``detail`` as it will read back from a JSON column, so its hash survives storage.

    Detail must never carry secrets (passwords, codes, keys, tokens, seeds): the log is
    read by operators and kept for long. Keys naming obvious secrets are refused as a
    guard, and bytes are refused by JSON itself.
    """
    if not detail:
        return {}
    # mutation: sort_keys and allow_nan=None are equivalent: the entry hash is canonical
    # CBOR (key order does not matter), the size does not depend on order, and None
    # refuses NaN like False.
    text = json.dumps(dict(detail), sort_keys=True, allow_nan=False, separators=(",", ":"))
    if len(text.encode()) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit detail is larger than {MAX_DETAIL_BYTES} bytes")
    normal: dict[str, Any] = json.loads(text)
    _refuse_secret_keys(normal)
    return normal


def _refuse_secret_keys(value: object) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            lowered = key.lower()
            if any(marker in lowered for marker in _SECRET_KEY_MARKERS):
                raise ValueError(f"audit detail key looks like a secret: {key!r}")
            _refuse_secret_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            _refuse_secret_keys(inner)


def entry_digest(
    *,
    prev_hash: bytes,
    seq: int,
    at: float,
    event: str,
    reason: str,
    scheme: str,
    org_id: int | None,
    app_id: int | None,
    user_id: int | None,
    device_id: str | None,
    challenge_id: str | None,
    detail: Mapping[str, object],
) -> bytes:
    """SHA-256 of the canonical encoding of one entry linked to its predecessor."""
    if len(prev_hash) != DIGEST_SIZE:
        raise ValueError("prev_hash must be 32 bytes")
    encoded = cbor2.dumps(
        [
            _DOMAIN,
            bytes(prev_hash),
            int(seq),
            # A float even when the caller passed an int: the database returns a float.
            float(at),
            event,
            reason,
            scheme,
            org_id,
            app_id,
            user_id,
            device_id,
            challenge_id,
            dict(detail),
        ],
        canonical=True,
    )
    return hashlib.sha256(encoded).digest()


def digest_of(entry: EntryView, *, prev_hash: bytes) -> bytes:
    """The digest ``entry`` should carry when it follows an entry hashing to ``prev_hash``."""
    return entry_digest(
        prev_hash=prev_hash,
        seq=entry.seq,
        at=entry.at,
        event=entry.event,
        reason=entry.reason,
        scheme=entry.scheme,
        org_id=entry.org_id,
        app_id=entry.app_id,
        user_id=entry.user_id,
        device_id=entry.device_id,
        challenge_id=entry.challenge_id,
        detail=entry.detail,
    )


def verify_chain(
    entries: Iterable[EntryView], *, head: tuple[int, bytes] | None = None
) -> ChainReport:
    """Check a chain from seq 1, in the order given; stop at the first problem.

    ``head`` is the separately stored tip ``(seq, hash)``; without it a cut-off tail
    cannot be told from a shorter log. Streams: holds one entry (plus one of look-ahead).
    """
    expected = 1
    prev_hash = GENESIS
    checked = 0
    stream = iter(entries)
    for entry in stream:
        if entry.seq > expected:
            # A jump forward is a removal, unless an earlier seq follows: then entries were
            # moved (one look-ahead tells a swap from a gap).
            following = next(stream, None)
            moved = following is not None and following.seq < entry.seq
            return _bad(checked, expected, "order" if moved else "gap")
        if entry.seq < expected:
            return _bad(checked, expected, "order")
        if bytes(entry.prev_hash) != prev_hash:
            return _bad(checked, expected, "hash_mismatch")
        try:
            digest = digest_of(entry, prev_hash=prev_hash)
        except (ValueError, TypeError):
            # Stored fields that cannot even be encoded were tampered with too.
            return _bad(checked, expected, "hash_mismatch")
        if bytes(entry.hash) != digest:
            return _bad(checked, expected, "hash_mismatch")
        prev_hash = digest
        checked += 1
        expected += 1
    if head is not None:
        head_seq, head_hash = head
        last_seq = expected - 1
        if head_seq != last_seq:
            return _bad(checked, min(head_seq, last_seq) + 1, "head_mismatch")
        if bytes(head_hash) != prev_hash:
            return _bad(checked, max(last_seq, 1), "head_mismatch")
    return ChainReport(ok=True, checked=checked)


def _bad(checked: int, seq: int, problem: str) -> ChainReport:
    return ChainReport(ok=False, checked=checked, first_bad_seq=seq, problem=problem)
