"""The background task that keeps a node's signing keys current (see :mod:`qrgate.keys`).

Every node runs one, started and stopped by the app's lifespan. It re-reads the keys when
the ``keys`` hint arrives (a rotation or retirement committed, on this node or, through
PostgreSQL LISTEN/NOTIFY, on any other) and every ``QRGATE_KEY_REFRESH_SECONDS`` anyway,
because hints can be lost and SQLite processes hear none from each other. The read runs in
a worker thread; a database that is away is logged once and the current keys stay in use
until it answers again. Nodes whose keys come from files run no refresher.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool

from qrgate.events import EventBus
from qrgate.keys import TOPIC, LiveKeys


class KeyRefresher:
    def __init__(self, keys: LiveKeys, *, events: EventBus, interval: float) -> None:
        self._keys = keys
        self._events = events
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start on the running event loop; does nothing for keys from files."""
        if self._keys.managed and self._task is None:
            self._task = asyncio.create_task(self._run(), name="qrgate-key-refresher")

    async def close(self) -> None:
        """Stop, letting a refresh under way finish: cancelling would leave its thread
        using an engine the caller is about to dispose of."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            async with self._events.subscribe(TOPIC) as hints:
                while True:
                    # Subscribed first, then read: a change committed in between is seen.
                    await run_in_threadpool(self._keys.refresh_quietly)
                    hint = asyncio.ensure_future(hints.next(self._interval))
                    await asyncio.wait({hint, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping.done():
                        await _cancelled(hint)
                        return
        finally:
            await _cancelled(stopping)


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
