"""The code-signing keys of a deployment, and the live copy each node signs and verifies with.

Where the keys live
    In the table ``signing_keys``, shared by every node: the public key, the private key
    sealed with :class:`~qrgate.core.aead.SecretBox` under the KEK (which stays a file, see
    :mod:`qrgate.keystore`), and a state: ``active`` (signs; exactly one), ``verify``
    (verifies codes signed before a rotation) or ``retired`` (verifies no code).

Trust
    A row is used only if its sealed key opens under this node's KEK, with the row's kid in
    the authenticated context, and the private key inside matches that kid and the row's
    public key. Someone who can write the database but does not hold the KEK can therefore
    neither plant a key nor move a sealed key to another row; such rows are refused, logged
    once, and never verify or sign anything.

First start
    On an empty table the first node imports the key files earlier versions kept under
    ``<data_dir>/keys`` (kids and states kept), or else makes a fresh ES256 key. Nodes
    starting together collide on the primary key or on the unique index that allows one
    active row; the losers read what won.

Rotation reaching every node
    :meth:`LiveKeys.rotate` and :meth:`LiveKeys.retire` change the table in the caller's
    transaction and publish the hint ``keys`` on the event bus. Each node's
    :class:`~qrgate.key_refresher.KeyRefresher` re-reads the table on that hint (PostgreSQL
    carries it to every node, even from the command line), every
    ``QRGATE_KEY_REFRESH_SECONDS`` in any case (SQLite processes hear no other process),
    and :meth:`LiveKeys.verifying` re-reads it, at most once a second, when a code names a
    kid this node does not know yet.

Keys from files (``QRGATE_SIGNING_KEY_FILE``)
    The ring is made from the files alone, nothing is refreshed, and rotation is refused:
    whoever manages those files rotates by deploying them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from qrgate.core.aead import SecretBox
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import Conflict, DecryptionFailed, InvalidField, NotFound, UnknownKey
from qrgate.events import EventBus
from qrgate.keystore import ENV_SIGNING_KEY_FILE, ENV_VERIFY_KEY_FILES, KeyMaterial
from qrgate.keystore import load_legacy_ring as _load_legacy_ring
from qrgate.storage import signing_keys as table
from qrgate.storage.db import READ_ONLY, after_commit
from qrgate.storage.signing_keys import KeyRow, KeyState

T = TypeVar("T")
PublicKeys = dict[bytes, ec.EllipticCurvePublicKey]

TOPIC: Final = "keys"
# A code naming an unknown kid costs at most one database read per second per node,
# however many forged codes arrive.
ON_DEMAND_INTERVAL: Final = 1.0
FROM_FILES: Final = (
    f"keys come from {ENV_SIGNING_KEY_FILE}: rotate by deploying a new file and listing "
    f"the old one in {ENV_VERIFY_KEY_FILES}"
)

_log = logging.getLogger(__name__)


def _context(kid: bytes) -> bytes:
    return b"signing_keys.private_key:" + kid.hex().encode("ascii")


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def seal_key(box: SecretBox, key: SigningKey, *, state: KeyState,
             retired_at: float | None = None) -> KeyRow:
    """The row that stores ``key``: its private half sealed under ``box``'s KEK."""
    der = key.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyRow(
        kid=key.kid,
        public_key=_spki(key.public_key),
        private_key_enc=box.seal(der, context=_context(key.kid)),
        state=state,
        created_at=key.created_at,
        retired_at=retired_at,
    )


def open_key(box: SecretBox, row: KeyRow) -> SigningKey:
    """The key a row stores, if the row is trustworthy; else ``bad_key_material``."""
    def refused(why: str) -> InvalidField:
        return InvalidField(f"signing key {row.kid.hex()} in the database {why}",
                            code="bad_key_material")

    try:
        der = box.open(row.private_key_enc, context=_context(row.kid))
    except DecryptionFailed:
        raise refused("does not open under this KEK") from None
    try:
        private_key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise refused("holds no readable private key") from None
    if (not isinstance(private_key, ec.EllipticCurvePrivateKey)
            or not isinstance(private_key.curve, ec.SECP256R1)):
        raise refused("holds no P-256 (ES256) key")
    key = SigningKey.from_private_key(private_key, created_at=row.created_at)
    if key.kid != row.kid or _spki(key.public_key) != row.public_key:
        raise refused("holds a private key that does not match its kid")
    return key


@dataclass(frozen=True, kw_only=True)
class Rotation:
    active_kid: bytes
    previous_kid: bytes


@dataclass(frozen=True, kw_only=True)
class KeyInfo:
    """One line of ``qrgate admin keys list``."""

    kid: bytes
    state: KeyState
    created_at: float | None
    retired_at: float | None
    source: str  # "database" or the variable naming the file
    trusted: bool  # False: a row that does not open under this node's KEK


class LiveKeys:
    """The key ring one node signs and verifies with, kept current from the database.

    ``ring`` is swapped whole (one attribute assignment), so a reader sees the old ring or
    the new one, never a mix. Build with :meth:`open`; the constructor is for callers that
    already hold a ring (tests, keys from files).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        box: SecretBox,
        events: EventBus,
        extra_verify: Mapping[bytes, ec.EllipticCurvePublicKey],
        managed: bool,
        ring: KeyRing | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._box = box
        self._events = events
        self._extra_verify: PublicKeys = dict(extra_verify)
        self._managed = managed
        self._monotonic = monotonic
        # kid -> (sealed key, public key, what it opened to): a row is opened, and a refused
        # one logged, once per content, not once per refresh.
        self._opened: dict[bytes, tuple[bytes, bytes, SigningKey | None]] = {}
        self._refresh_lock = threading.Lock()
        self._demand_lock = threading.Lock()
        self._last_demand: float | None = None
        self._trouble: str | None = None
        if ring is None:
            with self._refresh_lock:
                ring = self._ring_from(self._trusted(self._read_rows()))
        self._ring = ring

    @classmethod
    def open(
        cls,
        *,
        engine: Engine,
        box: SecretBox,
        events: EventBus,
        material: KeyMaterial,
        data_dir: Path,
        now: float,
    ) -> LiveKeys:
        """The node's keys: from the files the environment names, else from the database,
        seeding an empty table first (see the module docs). Raises ``bad_key_material``
        when the database holds keys but no active one that opens under this KEK."""
        if material.signing_key is not None:
            ring = KeyRing(active=material.signing_key, verify_only=material.verify_keys)
            return cls(engine=engine, box=box, events=events, extra_verify=material.verify_keys,
                       managed=False, ring=ring)
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            seeded = table.has_keys(conn)
            conn.rollback()
        if not seeded:
            _seed(engine, _first_rows(box, data_dir=data_dir, now=now))
        return cls(engine=engine, box=box, events=events, extra_verify=material.verify_keys,
                   managed=True)

    # --- reading ---------------------------------------------------------------------

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @property
    def managed(self) -> bool:
        """True when the keys come from the database (rotation applies, refreshes run)."""
        return self._managed

    def verifying(self, read: Callable[[KeyRing], T]) -> T:
        """``read(ring)``; if it names a kid this node does not know, refresh (at most once
        a second) and try once more: a key rotated in on another node verifies at once."""
        seen = self._ring
        try:
            return read(seen)
        except UnknownKey:
            if not self._refreshed_since(seen):
                raise
        return read(self._ring)

    def all_public_keys(self) -> PublicKeys:
        """Every key this deployment ever signed with and still trusts: the ring's, plus
        verify-only and retired rows that open under the KEK. For audit checkpoints, which
        outlive a key's retirement; never for codes."""
        with self._refresh_lock:
            trusted = self._trusted(self._read_rows())
        keys: PublicKeys = {key.kid: key.public_key for _, key in trusted}
        keys.update(self._ring.public_keys())
        return keys

    def describe(self) -> list[KeyInfo]:
        """Every key this node knows of, for operators."""
        if not self._managed:
            ring = self._ring
            return [KeyInfo(kid=ring.active_kid, state=KeyState.ACTIVE,
                            created_at=ring.active.created_at, retired_at=None,
                            source=ENV_SIGNING_KEY_FILE, trusted=True),
                    *self._extra_infos(exclude={ring.active_kid})]
        with self._refresh_lock:
            rows = self._read_rows()
            trusted = {key.kid for _, key in self._trusted(rows)}
        infos = [KeyInfo(kid=row.kid, state=row.state, created_at=row.created_at,
                         retired_at=row.retired_at, source="database",
                         trusted=row.kid in trusted) for row in rows]
        return [*infos, *self._extra_infos(exclude={row.kid for row in rows})]

    def _extra_infos(self, *, exclude: set[bytes]) -> list[KeyInfo]:
        return [KeyInfo(kid=kid, state=KeyState.VERIFY, created_at=None, retired_at=None,
                        source=ENV_VERIFY_KEY_FILES, trusted=True)
                for kid in sorted(self._extra_verify) if kid not in exclude]

    # --- refreshing ------------------------------------------------------------------

    def refresh(self) -> bool:
        """Re-read the keys; True if the ring changed. Raises what the database raises,
        and ``bad_key_material`` when no trusted active key is left (the ring is kept)."""
        if not self._managed:
            return False
        with self._refresh_lock:
            ring = self._ring_from(self._trusted(self._read_rows()))
            if _same(ring, self._ring):
                return False
            self._ring = ring
        _log.info("signing keys refreshed: active %s, verifying %s", ring.active_kid.hex(),
                  ", ".join(sorted(kid.hex() for kid in ring.public_keys())))
        return True

    def refresh_quietly(self) -> bool:
        """:meth:`refresh` that never raises: a failure is logged once (until it clears)
        and the current ring stays in use."""
        try:
            changed = self.refresh()
        except InvalidField as error:
            self._trouble_is(f"{error.code}: {error.detail}", logging.ERROR)
        except SQLAlchemyError as error:
            # The type only: a driver's message may quote statement parameters.
            self._trouble_is(f"database error ({type(error).__name__})", logging.WARNING)
        except Exception as error:
            # A refresher that dies stops following rotations silently: log, go on.
            self._trouble_is(f"unexpected {type(error).__name__}", logging.ERROR, trace=True)
        else:
            if self._trouble is not None:
                self._trouble = None
                _log.warning("signing keys refresh works again")
            return changed
        return False

    def _trouble_is(self, problem: str, level: int, *, trace: bool = False) -> None:
        if problem == self._trouble:
            return
        self._trouble = problem
        _log.log(level, "signing keys not refreshed, keeping active key %s: %s",
                 self._ring.active_kid.hex(), problem, exc_info=trace)

    def _refreshed_since(self, seen: KeyRing) -> bool:
        if not self._managed:
            return False
        with self._demand_lock:
            if self._ring is not seen:  # refreshed while we were verifying
                return True
            now = self._monotonic()
            if self._last_demand is not None and now - self._last_demand < ON_DEMAND_INTERVAL:
                return False
            self._last_demand = now
            self.refresh_quietly()
            return self._ring is not seen

    def _read_rows(self) -> list[KeyRow]:
        with self._engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            rows = table.all_keys(conn)
            conn.rollback()
        return rows

    def _trusted(self, rows: list[KeyRow]) -> list[tuple[KeyRow, SigningKey]]:
        """The rows that open under the KEK, each with its key (caller holds the lock)."""
        opened: dict[bytes, tuple[bytes, bytes, SigningKey | None]] = {}
        trusted: list[tuple[KeyRow, SigningKey]] = []
        for row in rows:
            cached = self._opened.get(row.kid)
            if cached is not None and cached[:2] == (row.private_key_enc, row.public_key):
                key = cached[2]
            else:
                try:
                    key = open_key(self._box, row)
                except InvalidField as error:
                    _log.error("%s; not trusted", error.detail)
                    key = None
            opened[row.kid] = (row.private_key_enc, row.public_key, key)
            if key is not None:
                trusted.append((row, key))
        self._opened = opened
        return trusted

    def _ring_from(self, trusted: list[tuple[KeyRow, SigningKey]]) -> KeyRing:
        active = [key for row, key in trusted if row.state is KeyState.ACTIVE]
        if not active:
            raise InvalidField(
                "no active signing key in the database opens under this KEK (is the KEK "
                "the other nodes' one?)", code="bad_key_material")
        verify_only = dict(self._extra_verify)
        verify_only.update(
            (key.kid, key.public_key) for row, key in trusted if row.state is KeyState.VERIFY)
        return KeyRing(active=active[0], verify_only=verify_only)

    # --- changing (in the caller's transaction) ----------------------------------------

    def rotate(self, conn: Connection, *, now: float) -> Rotation:
        """Make a fresh key active; the active one becomes verify-only. Every node hears of
        it once ``conn``'s transaction commits."""
        if not self._managed:
            raise Conflict(FROM_FILES)
        current = table.active_key(conn, lock=True)
        if current is None:
            raise Conflict("no active signing key in the database; if another rotation "
                           "just ran, see qrgate admin keys list")
        # A key sealed under a KEK the nodes do not hold would stop every node's rotation:
        # prove this KEK is theirs by opening the key it replaces.
        open_key(self._box, current)
        fresh = SigningKey.generate(now=now)
        if not table.demote_active(conn, kid=current.kid):
            raise Conflict("the active signing key changed during the rotation; run it again")
        try:
            table.insert_keys(conn, [seal_key(self._box, fresh, state=KeyState.ACTIVE)])
        except IntegrityError:
            raise Conflict("another rotation committed first; see qrgate admin keys list"
                           ) from None
        self._announce(conn, "rotated")
        return Rotation(active_kid=fresh.kid, previous_kid=current.kid)

    def retire(self, conn: Connection, *, kid: bytes, now: float) -> bool:
        """Stop verifying codes signed with ``kid``; False if it was retired already."""
        if not self._managed:
            raise Conflict(FROM_FILES)
        row = table.find_key(conn, kid, lock=True)
        if row is None:
            if kid in self._extra_verify:
                raise NotFound(f"key {kid.hex()} comes from {ENV_VERIFY_KEY_FILES}: "
                               "remove it from there")
            raise NotFound(f"no signing key with kid {kid.hex()}")
        if row.state is KeyState.ACTIVE:
            raise Conflict("the active signing key cannot be retired; rotate first")
        if row.state is KeyState.RETIRED:
            return False
        if not table.retire_key(conn, kid=kid, now=now):
            raise Conflict(f"key {kid.hex()} changed state meanwhile; see qrgate admin keys list")
        self._announce(conn, "retired")
        return True

    def _announce(self, conn: Connection, state: str) -> None:
        self._events.publish(conn, topic=TOPIC, state=state)
        # This node follows at once, whether or not a refresher listens here (the CLI).
        after_commit(conn, self._follow)

    def _follow(self) -> None:
        self.refresh_quietly()


def _same(one: KeyRing, other: KeyRing) -> bool:
    # Kids are derived from the keys, so equal kids mean equal keys.
    return (one.active_kid == other.active_kid
            and set(one.public_keys()) == set(other.public_keys()))


def _first_rows(box: SecretBox, *, data_dir: Path, now: float) -> list[KeyRow]:
    legacy = _load_legacy_ring(data_dir)
    if legacy is None:
        _log.info("no signing keys yet: made a fresh one")
        return [seal_key(box, SigningKey.generate(now=now), state=KeyState.ACTIVE)]
    _log.warning("importing the signing keys of %s into the database; those files are "
                 "no longer used", data_dir / "keys")
    return [
        seal_key(box, legacy.active, state=KeyState.ACTIVE),
        *(seal_key(box, key, state=KeyState.VERIFY) for key in legacy.verify_only),
        *(seal_key(box, key, state=KeyState.RETIRED, retired_at=legacy.retired_at)
          for key in legacy.retired),
    ]


def _seed(engine: Engine, rows: list[KeyRow]) -> None:
    try:
        with engine.begin() as conn:
            # SQLite: BEGIN IMMEDIATE makes check and insert one step. PostgreSQL: a node
            # that passed the check at the same time collides on the kid or on the one
            # active row when inserting, and rolls back.
            if not table.has_keys(conn):
                table.insert_keys(conn, rows)
    except IntegrityError:
        _log.info("another node stored the first signing keys; using those")
