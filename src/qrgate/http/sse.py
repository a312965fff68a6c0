"""Server-Sent Events for a waiting browser (SPEC "Pushing results").

On connect the stream sends the current state read from the database, then every change.
Event-bus messages are only hints to re-read: the database is the truth, and a periodic
re-read covers nodes whose hints cannot reach us (several processes on one SQLite file).
The stream closes on a terminal state or at the challenge's hard expiry. When the database
goes away mid-stream, the stream says so (``event: unavailable``) and ends cleanly; the
client reconnects after the ``retry`` delay, and meanwhile may poll.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import StreamingResponse

from qrgate.confirm import repository
from qrgate.core.confirm import TERMINAL_STATES, ConfirmState
from qrgate.http.context import offload
from qrgate.http.problems import RETRY_AFTER
from qrgate.runtime import Runtime
from qrgate.storage.db import DATABASE_ERRORS, is_unavailable

RECHECK_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0

# Each event of the stream, for the OpenAPI document: its name and its JSON data, a
# ``state`` event or ``unavailable`` (then the stream ends).
_EVENT_DATA: dict[str, object] = {"oneOf": [
    {"title": "state", "type": "object",
     "required": ["challenge_id", "state", "reason", "code_seq", "decided_at"],
     "properties": {
         "challenge_id": {"type": "string"},
         "state": {"type": "string", "enum": [s.value for s in ConfirmState]},
         "reason": {"type": ["string", "null"]},
         "code_seq": {"type": "integer"},
         "decided_at": {"type": ["number", "null"]}}},
    {"title": "unavailable", "type": "object", "required": ["retry_after"],
     "properties": {"retry_after": {"type": "integer"}}},
]}
EVENT_SCHEMA: dict[str, object] = {
    "type": "object", "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["state", "unavailable"]},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": _EVENT_DATA},
    },
}


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One read of what a stream follows: ``key`` changes when a ``state`` event is due."""

    key: tuple[object, ...]
    payload: dict[str, object]
    terminal: bool
    expires_at: float


def challenge_events(rt: Runtime, request: Request, challenge_id: str) -> StreamingResponse:
    def read() -> Snapshot:
        with rt.read() as conn:
            row = repository.load(conn, challenge_id)
        state = row.effective_state(rt.clock())
        return Snapshot(
            key=(state.value, row.code_seq),
            payload={"challenge_id": row.id, "state": state.value, "reason": row.reason,
                     "code_seq": row.code_seq, "decided_at": row.decided_at},
            terminal=state in TERMINAL_STATES, expires_at=row.expires_at)

    return state_events(rt, request, topic=challenge_id, read=read)


def state_events(rt: Runtime, request: Request, *, topic: str,
                 read: Callable[[], Snapshot]) -> StreamingResponse:
    """The stream of ``read()``'s snapshots for ``topic``, which state hints name."""
    return StreamingResponse(
        _stream(rt, request, topic, read),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(rt: Runtime, request: Request, topic: str,
                  read: Callable[[], Snapshot]) -> AsyncIterator[str]:
    # Subscribe before the first read so no transition falls between the two.
    async with rt.events.subscribe(topic) as subscription:
        last: tuple[object, ...] | None = None
        quiet_since = time.monotonic()
        yield f"retry: {RETRY_AFTER * 1000}\n\n"
        while True:
            try:
                snapshot = await offload(rt, read)
            except DATABASE_ERRORS as error:
                if not is_unavailable(error):
                    raise
                rt.db_health.failed(error)
                yield f"event: unavailable\ndata: {json.dumps({'retry_after': RETRY_AFTER})}\n\n"
                return
            if snapshot.key != last:
                last = snapshot.key
                yield f"event: state\ndata: {json.dumps(snapshot.payload)}\n\n"
                quiet_since = time.monotonic()
            if snapshot.terminal or await request.is_disconnected():
                return
            wait = max(0.05, min(RECHECK_SECONDS, snapshot.expires_at - rt.clock()))
            hint = await subscription.next(wait)
            if hint is None and time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ": heartbeat\n\n"
