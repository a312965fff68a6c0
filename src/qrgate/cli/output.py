"""How the command line shows values: every time as an ISO 8601 date-time in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_time(timestamp: float) -> str:
    """A Unix time as people read it, e.g. ``2026-11-30T04:01:58Z``.

    UTC, so that two operators (or an operator and a log file) in different zones read the
    same text; whole seconds, as every time qrgate keeps is checked to the second at most.
    """
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
