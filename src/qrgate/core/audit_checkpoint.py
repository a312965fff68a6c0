"""Signed checkpoints of the audit hash chain, as pure functions (no I/O, no clock).

The hash chain (:mod:`qrgate.core.audit_chain`) shows that the log was not edited *unless*
whoever edited it also recomputed every later hash and the head, which anyone with write
access to the database can do. A checkpoint anchors the chain to a key the database does
not hold:

1. **Build.** :func:`next_checkpoint` states "the entry at ``seq`` hashes to
   ``entry_hash``", numbered one past the previous checkpoint and carrying the digest of
   that previous checkpoint's statement (``GENESIS`` for the first), the time and the
   issuer. The statement is the canonical CBOR array::

       ["qrgate.audit.checkpoint.v1", number, seq, entry_hash, at, prev, issuer]

2. **Sign.** :func:`sign_checkpoint` signs the statement as a COSE_Sign1 with the server's
   ES256 key (kid and alg in the protected header) and encodes it as one line of text:
   ``"QGA1:" + base64url(COSE_Sign1)`` without padding. Its :attr:`SignedCheckpoint.digest`
   is SHA-256 of the statement, not of the COSE message: ECDSA signatures are malleable, so
   the signed bytes identify a checkpoint and the signature does not.
3. **Verify one.** :func:`verify_checkpoint` parses a line strictly (only the exact bytes
   step 2 writes are accepted) and checks its signature against a ``kid -> public key``
   mapping. Every failure is a :class:`~qrgate.errors.Malformed` or
   :class:`~qrgate.errors.BadSignature` (``UnknownKey`` for a kid not in the mapping).
4. **Verify the sequence.** :func:`verify_checkpoints` walks the stored checkpoints in
   number order and checks each signature, that numbers have no gap, that each links to
   its predecessor's digest and moves forward in the log, and that the log still holds the
   signed hash at the signed seq. With the checkpoints of an exported copy
   (:func:`read_export`), it also finds checkpoints deleted from or changed in the database.

Removing or reordering checkpoints breaks the ``prev`` links or the numbering, so an
attacker without the key can only cut off the newest ones, which only an exported copy
reveals. See docs/audit.md for what this does and does not prove.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TypeGuard

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.cose import (
    Sign1Message,
    loads_strict,
    parse_own_sign1,
    verify_sign1,
)
from qrgate.errors import (
    BadSignature,
    InvalidField,
    Malformed,
    PayloadTooLarge,
    QrgateError,
    UnknownKey,
    UnsupportedVersion,
)

VERSION: Final = "1"
PREFIX: Final = f"QGA{VERSION}:"
GENESIS: Final = bytes(32)
DIGEST_SIZE: Final = 32
MAX_TEXT_CHARS: Final = 2048
# Numbers and seqs are stored in BIGINT columns.
MAX_INT: Final = 2**63 - 1

_DOMAIN: Final = "qrgate.audit.checkpoint.v1"
_FIELDS: Final = 7
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_VERSIONED: Final = re.compile(r"QGA([0-9]+):", re.ASCII)


class Signer(Protocol):
    """Signs a payload into a COSE_Sign1 with the kid in its protected header (a KeyRing)."""

    def sign(self, payload: bytes) -> bytes: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Checkpoint:
    """The signed statement: the log's entry ``seq`` hashes to ``entry_hash``."""

    number: int
    seq: int
    entry_hash: bytes
    at: int
    prev: bytes
    issuer: str

    def __post_init__(self) -> None:
        if not (_is_int(self.number) and 1 <= self.number <= MAX_INT):
            raise InvalidField("checkpoint number must be 1..2**63-1")
        if not (_is_int(self.seq) and 1 <= self.seq <= MAX_INT):
            raise InvalidField("checkpoint seq must be 1..2**63-1")
        if not (_is_int(self.at) and 0 <= self.at <= MAX_INT):
            raise InvalidField("checkpoint time must be 0..2**63-1 seconds")
        if not (_is_digest(self.entry_hash) and _is_digest(self.prev)):
            raise InvalidField("checkpoint hashes must be 32 bytes")
        if not isinstance(self.issuer, str) or not self.issuer:
            raise InvalidField("checkpoint issuer must not be empty")

    @property
    def statement(self) -> bytes:
        """The canonical CBOR bytes that get signed."""
        try:
            return cbor2.dumps(
                [_DOMAIN, self.number, self.seq, self.entry_hash, self.at, self.prev,
                 self.issuer],
                canonical=True,
            )
        except (cbor2.CBOREncodeError, ValueError) as exc:  # e.g. lone surrogates
            raise InvalidField(f"checkpoint cannot be encoded: {exc}") from exc

    @property
    def digest(self) -> bytes:
        """What the next checkpoint's ``prev`` carries."""
        return hashlib.sha256(self.statement).digest()


@dataclass(frozen=True, kw_only=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    kid: bytes
    text: str

    @property
    def digest(self) -> bytes:
        return self.checkpoint.digest


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredCheckpoint:
    """A checkpoint row as stored, with the hash the log now holds at its seq."""

    number: int
    seq: int
    text: str
    # None when the log has no entry at ``seq`` (any more).
    log_hash: bytes | None


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckpointReport:
    """Outcome of :func:`verify_checkpoints`; ``problem`` is a stable code or None.

    From parsing and signatures: ``malformed`` (or ``unsupported_version``,
    ``payload_too_large``), ``bad_signature``, ``unknown_key``. From the sequence:
    ``stored_mismatch`` (a row's number or seq column disagrees with what was signed),
    ``gap`` (a checkpoint is missing), ``link_mismatch`` (``prev`` is not the previous
    checkpoint's digest), ``order`` (seq does not move forward), ``entry_missing`` /
    ``entry_mismatch`` (the log no longer holds the signed hash at the signed seq).
    Against an export: ``missing_exported`` (an exported checkpoint is not stored) and
    ``export_mismatch`` (a stored checkpoint differs from the exported one of that number).
    ``covered_seq`` is the seq of the newest checkpoint that verified (0 for none).
    """

    ok: bool
    checked: int
    covered_seq: int
    first_bad_number: int | None = None
    problem: str | None = None
    detail: str = ""


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; True must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_digest(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == DIGEST_SIZE


def next_checkpoint(
    *,
    previous: Checkpoint | None,
    seq: int,
    entry_hash: bytes,
    now: float,
    issuer: str,
) -> Checkpoint:
    """The checkpoint that follows ``previous`` (None: the first) and covers up to ``seq``."""
    if not math.isfinite(now):
        raise InvalidField("checkpoint time must be finite")
    if previous is not None and seq <= previous.seq:
        raise InvalidField("a checkpoint must cover a later entry than the previous one")
    return Checkpoint(
        number=1 if previous is None else previous.number + 1,
        seq=seq,
        entry_hash=entry_hash,
        at=math.floor(now),
        prev=GENESIS if previous is None else previous.digest,
        issuer=issuer,
    )


def sign_checkpoint(checkpoint: Checkpoint, *, signer: Signer) -> SignedCheckpoint:
    """Sign ``checkpoint`` and encode it as one line of text."""
    signed = signer.sign(checkpoint.statement)
    text = PREFIX + base64.urlsafe_b64encode(signed).rstrip(b"=").decode("ascii")
    if len(text) > MAX_TEXT_CHARS:
        # Never write what parse_checkpoint would refuse (only a very long issuer gets here).
        raise PayloadTooLarge(f"checkpoint would be {len(text)} characters")
    _, kid = parse_own_sign1(signed)
    return SignedCheckpoint(checkpoint=checkpoint, kid=kid, text=text)


def parse_checkpoint(text: str) -> SignedCheckpoint:
    """Parse one line without checking its signature (see :func:`verify_checkpoint`)."""
    return _parse(text)[0]


def verify_checkpoint(
    text: str, *, keys: Mapping[bytes, ec.EllipticCurvePublicKey]
) -> SignedCheckpoint:
    """Parse one line and check its signature with the key its kid names in ``keys``."""
    signed, message = _parse(text)
    key = keys.get(signed.kid)
    if key is None:
        raise UnknownKey(f"checkpoint is signed by unknown key {signed.kid.hex()}")
    verify_sign1(message, public_key=key)
    return signed


def _parse(text: str) -> tuple[SignedCheckpoint, Sign1Message]:
    if not isinstance(text, str):
        raise Malformed("a checkpoint is text")
    if len(text) > MAX_TEXT_CHARS:
        raise PayloadTooLarge(f"checkpoint longer than {MAX_TEXT_CHARS} characters")
    if not text.startswith(PREFIX):
        versioned = _VERSIONED.match(text)
        if versioned:
            raise UnsupportedVersion(f"checkpoint version {versioned.group(1)} is not supported")
        raise Malformed(f"a checkpoint starts with {PREFIX}")
    message, kid = parse_own_sign1(_unb64url(text[len(PREFIX) :]))
    checkpoint = _statement(message.payload)
    return SignedCheckpoint(checkpoint=checkpoint, kid=kid, text=text), message


def _unb64url(body: str) -> bytes:
    # Checked up front: the stdlib decoder skips characters outside the alphabet and
    # accepts non-zero trailing bits, either of which would give one checkpoint many texts.
    # mutation: weakening this early check is equivalent: what it refuses fails the
    # decoder or the canonical re-encoding below with the same Malformed.
    if not _B64URL.fullmatch(body) or len(body) % 4 == 1:
        raise Malformed("checkpoint is not base64url")
    try:
        # mutation: more padding is equivalent: the decoder ignores excess padding.
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed("checkpoint is not base64url") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise Malformed("checkpoint is not canonical base64url")
    return raw


def _statement(payload: bytes) -> Checkpoint:
    item = loads_strict(payload)
    if not isinstance(item, list) or len(item) != _FIELDS or item[0] != _DOMAIN:
        raise Malformed("payload is not an audit checkpoint")
    _, number, seq, entry_hash, at, prev, issuer = item
    try:
        checkpoint = Checkpoint(
            number=number, seq=seq, entry_hash=entry_hash, at=at, prev=prev, issuer=issuer
        )
    except InvalidField as exc:
        raise Malformed(exc.detail) from exc
    if checkpoint.statement != payload:
        raise Malformed("checkpoint statement is not canonical CBOR")
    return checkpoint


def read_export(
    lines: Iterable[str], *, keys: Mapping[bytes, ec.EllipticCurvePublicKey]
) -> dict[int, bytes]:
    """Checkpoint number -> digest from an exported copy, every line verified.

    Blank lines are skipped and repeats of one checkpoint are allowed (concatenated
    copies). Raises the line's error, its detail naming the line; two different checkpoints
    with one number are refused too: the signing key signed both, which is a fork.
    """
    exported: dict[int, bytes] = {}
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            signed = verify_checkpoint(text, keys=keys)
        except QrgateError as error:
            # mutation: dropping code= is equivalent today: every error reaching here carries
            # its class's own code.
            raise type(error)(f"line {line_number}: {error.detail}", code=error.code) from error
        number = signed.checkpoint.number
        known = exported.setdefault(number, signed.digest)
        if not hmac.compare_digest(known, signed.digest):
            raise Malformed(f"line {line_number}: two different checkpoints numbered {number}")
    return exported


def verify_checkpoints(
    stored: Iterable[StoredCheckpoint],
    *,
    keys: Mapping[bytes, ec.EllipticCurvePublicKey],
    exported: Mapping[int, bytes] | None = None,
) -> CheckpointReport:
    """Check stored checkpoints, in number order, against the log; stop at the first problem.

    ``exported`` (from :func:`read_export`) adds: every exported checkpoint is stored,
    unchanged. Streams: holds one checkpoint besides the set of exported numbers seen.
    """
    previous: Checkpoint | None = None
    checked = 0
    unseen = set(exported or {})

    def bad(number: int, problem: str, detail: str) -> CheckpointReport:
        covered = previous.seq if previous is not None else 0
        return CheckpointReport(ok=False, checked=checked, covered_seq=covered,
                                first_bad_number=number, problem=problem, detail=detail)

    for row in stored:
        try:
            current = verify_checkpoint(row.text, keys=keys).checkpoint
        except (Malformed, BadSignature) as error:
            return bad(row.number, error.code, error.detail)
        problem = _sequence_problem(current, row=row, previous=previous)
        if problem is not None:
            return bad(*problem)
        if exported is not None and current.number in exported:
            if not hmac.compare_digest(exported[current.number], current.digest):
                return bad(current.number, "export_mismatch",
                           f"checkpoint {current.number} differs from the exported copy")
            unseen.discard(current.number)
        previous = current
        checked += 1
    if unseen:
        first = min(unseen)
        return bad(first, "missing_exported",
                   f"{len(unseen)} exported checkpoints are not stored, from number {first}")
    return CheckpointReport(
        ok=True, checked=checked, covered_seq=previous.seq if previous is not None else 0
    )


def _sequence_problem(
    current: Checkpoint, *, row: StoredCheckpoint, previous: Checkpoint | None
) -> tuple[int, str, str] | None:
    """(number of the first bad checkpoint, problem, detail), or None."""
    number = current.number
    if (number, current.seq) != (row.number, row.seq):
        return row.number, "stored_mismatch", f"checkpoint {row.number}'s columns differ from it"
    expected = 1 if previous is None else previous.number + 1
    if number != expected:
        return expected, "gap", f"checkpoint {expected} is missing"
    if not hmac.compare_digest(current.prev, GENESIS if previous is None else previous.digest):
        return number, "link_mismatch", f"checkpoint {number} does not follow the one before"
    if previous is not None and current.seq <= previous.seq:
        return number, "order", f"checkpoint {number} does not move forward in the log"
    if row.log_hash is None:
        return number, "entry_missing", f"entry {current.seq} of checkpoint {number} is gone"
    if not hmac.compare_digest(bytes(row.log_hash), current.entry_hash):
        return (number, "entry_mismatch",
                f"entry {current.seq} differs from the hash signed in checkpoint {number}")
    return None
