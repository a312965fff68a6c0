"""Running a decision: its state change and its audit entry commit together, and a failure
is audited (with its reason code) and its side effects (attempt counters, killing a
challenge) are kept, in a transaction of their own after the failed one rolled back.

Retries by the same party are not failures. A client whose reply was lost sends the same
request again; several nodes may even get copies at once. A repeat always fails the work
(the scan is already taken, the transaction already signed), so ``repeat_of`` is asked only
then, before anything is counted: it recognises the repeat from what the first request left
in the database (the same device already scanned this code, the transaction is signed
with this very response) and returns the answer the first request got. The success path
pays nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from qrgate.errors import QrgateError
from qrgate.runtime import Runtime
from qrgate.storage.audit import append_audit

T = TypeVar("T")
log = logging.getLogger("qrgate.decisions")


@dataclass(kw_only=True)
class AuditSubject:
    """Who and what an audit entry is about; filled in as the decision learns more."""

    event: str
    scheme: str = ""
    org_id: int | None = None
    app_id: int | None = None
    user_id: int | None = None
    device_id: str | None = None
    challenge_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def record(self, conn: Connection, *, now: float, reason: str) -> None:
        append_audit(
            conn, now=now, event=self.event, reason=reason, scheme=self.scheme,
            org_id=self.org_id, app_id=self.app_id, user_id=self.user_id,
            device_id=self.device_id, challenge_id=self.challenge_id, detail=self.detail,
        )


def run_decision(
    rt: Runtime,
    *,
    subject: AuditSubject,
    now: float,
    work: Callable[[Connection], tuple[T, str]],
    on_failure: Callable[[Connection, QrgateError], None] | None = None,
    repeat_of: Callable[[Connection], T | None] | None = None,
) -> T:
    """``work`` returns ``(result, reason)``; the reason code goes to the audit log.
    ``repeat_of`` returns the earlier answer when this request repeats one that succeeded
    (then nothing is written), else None."""
    try:
        with rt.engine.begin() as conn:
            result, reason = work(conn)
            subject.record(conn, now=now, reason=reason)
        return result
    except QrgateError as error:
        with rt.engine.begin() as conn:
            if repeat_of is not None and (earlier := repeat_of(conn)) is not None:
                return earlier
            if on_failure is not None:
                on_failure(conn, error)
            subject.record(conn, now=now, reason=error.code)
        log.info("%s rejected: %s", subject.event, error.code)
        raise
