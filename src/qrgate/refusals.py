"""Refused device authentications, audited without letting anyone flood the log.

A request that fails to prove a device is worth an audit entry (a forged or replayed
request is what operators look for), but each one costs an append under the audit head's
lock: 200 bogus requests must not buy 200 entries. Per kind of refusal and per device,
the first refusal in a window is written at once; later ones in that window are only
counted, and the count is written with the next entry of that kind (``repeats``) or when
the server stops. Unknown device ids share one key: they come from an attacker-controlled
header, so they must not grow this table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
MAX_KEYS = 10_000

Key = tuple[str, str | None]


@dataclass
class _Window:
    started: float
    repeats: int = 0


class RefusalAudit:
    def __init__(self, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Key, _Window] = {}

    def admit(self, *, reason: str, device_id: str | None) -> int | None:
        """None when this refusal is only counted; else write an entry now, which carries
        the given number of refusals counted (not written) since the last one."""
        key = (reason, device_id)
        now = self._clock()
        with self._lock:
            current = self._windows.get(key)
            if current is not None and now - current.started < self.window:
                current.repeats += 1
                return None
            if len(self._windows) >= MAX_KEYS:
                self._windows.clear()
            self._windows[key] = _Window(started=now)
            return 0 if current is None else current.repeats

    def drain(self) -> list[tuple[Key, int]]:
        """Counts not yet written (at shutdown): each key with its repeats."""
        with self._lock:
            pending = [(key, w.repeats) for key, w in self._windows.items() if w.repeats]
            self._windows.clear()
        return pending
