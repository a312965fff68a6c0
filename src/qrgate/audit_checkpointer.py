"""The background task that signs audit checkpoints while a server runs.

Every node runs one (started and stopped by the app's lifespan). Every
``QRGATE_AUDIT_CHECKPOINT_SECONDS`` it signs a checkpoint if the head moved since the last
one (see :func:`qrgate.storage.audit_checkpoints.write_checkpoint`); 0 turns it off. Nodes
need no coordination: when two race for the same checkpoint one insert wins and the other
writes nothing, so the only cost of many nodes is an occasional wasted signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from qrgate.core.audit_checkpoint import SignedCheckpoint
from qrgate.errors import QrgateError
from qrgate.runtime import Runtime
from qrgate.storage.audit_checkpoints import write_checkpoint

_log = logging.getLogger(__name__)


class AuditCheckpointer:
    def __init__(self, rt: Runtime, *, interval: float | None = None) -> None:
        self._rt = rt
        self._interval = rt.settings.audit_checkpoint_seconds if interval is None else interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop (does nothing when turned off)."""
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="qrgate-audit-checkpointer")

    async def close(self) -> None:
        """Stop, letting a checkpoint being written finish: cancelling would leave its
        thread using an engine the caller is about to dispose of."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
                return
            # Signing and database work block: keep them off the event loop.
            await asyncio.to_thread(self.tick)

    def tick(self) -> SignedCheckpoint | None:
        """One turn: sign a checkpoint if the head moved; never raises."""
        rt = self._rt
        try:
            return write_checkpoint(
                rt.engine, signer=rt.keyring, issuer=rt.settings.issuer, now=rt.clock()
            )
        except QrgateError as error:
            # tampered_chain: the log no longer holds what the last checkpoint signed.
            _log.error("audit checkpoint refused: %s: %s", error.code, error.detail)
        except SQLAlchemyError as error:
            # The type only: a driver's message may quote statement parameters.
            _log.warning("audit checkpoint skipped, database error (%s)", type(error).__name__)
        except Exception:
            # A background loop that dies stops signing silently; log and try next turn.
            _log.exception("audit checkpoint failed")
        return None
