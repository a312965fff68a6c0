"""Run actions at the same instant from separate threads (and so separate connections)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from qrgate.clients.relying_party import ApiError


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    """Each action's result, or the ``ApiError`` it raised, in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except ApiError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results
