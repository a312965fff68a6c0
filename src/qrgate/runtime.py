"""Everything a request handler needs, built once per process from ``Settings``.

Passed explicitly (FastAPI dependency / function argument), never a module global, so two
nodes can live in one test process with their own keys, database and clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from qrgate.accounts.api_key_cache import ApiKeyCache
from qrgate.config import Settings
from qrgate.core.aead import SecretBox
from qrgate.core.digests import SecretDigests
from qrgate.core.keyring import KeyRing
from qrgate.events import EventBus, make_event_bus
from qrgate.keys import LiveKeys
from qrgate.keystore import ENV_KEK_FILE, load_or_create
from qrgate.refusals import RefusalAudit
from qrgate.storage.db import READ_ONLY, create_engine_for
from qrgate.storage.schema import upgrade

log = logging.getLogger("qrgate.database")


class DatabaseHealth:
    """Whether the database answered last time: an outage is logged once when it starts
    and once when it ends, not as one traceback per request in between."""

    def __init__(self) -> None:
        self.down = False
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
        # The type only: a driver's message may quote statement parameters.
        log.warning("database unavailable (%s); answering 503 until it is back",
                    type(error).__name__)

    def answered(self) -> None:
        if not self.down:  # the common case: one attribute read
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
        log.warning("database available again")


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    engine: Engine
    # The signing keys, kept current from the database (rotation needs no restart).
    keys: LiveKeys
    box: SecretBox
    digests: SecretDigests
    events: EventBus
    # SQLite calls are local and sub-millisecond: running them on the event loop beats a
    # hop to the thread pool (measured: 304 vs 236 flows/s in bench/confirm.py). Network
    # databases run in the thread pool so one slow query cannot stall the loop.
    inline_db: bool = False
    clock: Callable[[], float] = field(default=time.time)
    api_keys: ApiKeyCache = field(default_factory=ApiKeyCache)
    random: Callable[[int], bytes] = field(default=os.urandom)
    db_health: DatabaseHealth = field(default_factory=DatabaseHealth)
    refusals: RefusalAudit = field(default_factory=RefusalAudit)

    @property
    def keyring(self) -> KeyRing:
        """The keys to sign and verify with now; take it once per operation."""
        return self.keys.ring

    def read(self) -> Connection:
        """A connection for reads only: on SQLite it does not queue behind writers."""
        return self.engine.connect().execution_options(**{READ_ONLY: True})

    def close(self) -> None:
        self.engine.dispose()


def _private_dir(path: Path) -> None:
    """The data directory holds keys and the SQLite database: owner only, also when it
    already existed with a looser mode (mkdir's mode applies only to a new directory)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.geteuid():
        log.warning("tightening %s to mode 0700 (it was readable by others)", path)
        path.chmod(0o700)


def warn_if_kek_beside_database(settings: Settings) -> None:
    """Secrets at rest are sealed under the KEK: kept in the data directory next to the
    SQLite file, one copy of that directory (a backup, a stolen disk) opens them all."""
    beside = not settings.env.get(ENV_KEK_FILE, "").strip() and (
        make_url(settings.resolved_database_url).get_backend_name() == "sqlite")
    if beside:
        log.warning(
            "the key-encryption key is in %s, beside the database: secrets at rest are only "
            "as safe as that directory. In production keep it elsewhere: "
            "qrgate admin keys kek-create /path/outside/the/data/dir, then set "
            "QRGATE_KEK_FILE (see docs/keys.md)", settings.data_dir / "keys")


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    _private_dir(settings.data_dir)
    material = load_or_create(settings.data_dir, env=settings.env)
    url = settings.resolved_database_url
    engine = create_engine_for(url)
    digests = SecretDigests(material.kek)
    if migrate:
        upgrade(engine, digests=digests)
    box = SecretBox(material.kek)
    events = make_event_bus(url)
    try:
        keys = LiveKeys.open(engine=engine, box=box, events=events, material=material,
                             data_dir=settings.data_dir, now=time.time())
    except BaseException:
        engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        keys=keys,
        box=box,
        digests=digests,
        events=events,
        inline_db=engine.dialect.name == "sqlite",
    )
