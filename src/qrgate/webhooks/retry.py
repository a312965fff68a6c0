"""When a failed webhook delivery is tried again, and when it is given up. Pure.

The first attempt is made at once. After the n-th failed attempt the next one waits
``retries[n - 1]`` seconds (``QRGATE_WEBHOOK_RETRIES``), stretched by up to a fifth at
random (jitter: events that failed together, say while the receiver was down, do not all
come back in one burst), and at least as long as the receiver's ``Retry-After`` asks, up to
a day. After ``len(retries) + 1`` attempts the event is failed; a replay starts it afresh.

A ``410 Gone`` means the receiver wants no more of this: the event fails at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

JITTER: Final = 0.2
MAX_RETRY_AFTER: Final = 86_400.0
GONE: Final = 410


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one attempt got: a status, or an error before any (``error``, short, no
    secret); ``retry_after`` seconds if the receiver said so."""

    status: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.error or "no answer"


def next_delay(*, attempts: int, retries: Sequence[float], outcome: Outcome,
               random_fraction: float) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones (this one included),
    or None when the event is given up. ``random_fraction`` is uniform in [0, 1)."""
    if outcome.status == GONE or attempts > len(retries):
        return None
    delay = retries[attempts - 1] * (1 + JITTER * random_fraction)
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (its HTTP-date form is ignored: clocks differ)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
