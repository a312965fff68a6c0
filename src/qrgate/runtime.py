"""Everything a request handler needs, built once per process from ``Settings``.

Passed explicitly (FastAPI dependency / function argument), never a module global, so two
nodes can live in one test process with their own keys, database and clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from qrgate.config import Settings
from qrgate.core.aead import SecretBox
from qrgate.core.keyring import KeyRing
from qrgate.events import EventBus, make_event_bus
from qrgate.keystore import load_or_create
from qrgate.storage.db import create_engine_for
from qrgate.storage.schema import upgrade


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    engine: Engine
    keyring: KeyRing
    box: SecretBox
    events: EventBus
    clock: Callable[[], float] = field(default=time.time)
    random: Callable[[int], bytes] = field(default=os.urandom)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = load_or_create(settings.data_dir, env=settings.env)
    url = settings.resolved_database_url
    engine = create_engine_for(url)
    if migrate:
        upgrade(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        keyring=material.keyring,
        box=SecretBox(material.kek),
        events=make_event_bus(url),
    )
