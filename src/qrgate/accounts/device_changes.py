"""Changes to a device that every application of its organisation hears about (the
``device.*`` webhooks), reported in the caller's transaction: by the phone itself, its
relying party or an operator."""

from __future__ import annotations

from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.runtime import Runtime
from qrgate.webhooks import catalogue, outbox
from qrgate.webhooks.catalogue import DeviceChange, EventType


def bound(rt: Runtime, conn: Connection, *, device: directory.DeviceRecord,
          user: directory.UserRecord, now: float) -> None:
    """A phone bound itself to ``user`` (``qrgate.accounts.enrolment`` did the binding)."""
    outbox.emit(rt, conn, catalogue.device_changed(EventType.DEVICE_ADDED, device=device,
                                                   user=user, by=DeviceChange.DEVICE, at=now))


def unbind(rt: Runtime, conn: Connection, *, device_id: str, by: DeviceChange,
           now: float) -> directory.DeviceRecord:
    """Unbind a device for good: the phone must enrol again."""
    unbound = directory.unbind_device(conn, device_id=device_id, now=now)
    _report(rt, conn, EventType.DEVICE_REMOVED, device=unbound, by=by, now=now)
    return unbound


def set_frozen(rt: Runtime, conn: Connection, *, device_id: str, frozen: bool,
               by: DeviceChange, now: float) -> None:
    """Suspend a device until it is unfrozen, or reactivate it."""
    directory.set_device_frozen(conn, device_id=device_id, frozen=frozen)
    _report(rt, conn, EventType.DEVICE_FROZEN if frozen else EventType.DEVICE_UNFROZEN,
            device=directory.get_device(conn, device_id), by=by, now=now)


def _report(rt: Runtime, conn: Connection, event: EventType, *,
            device: directory.DeviceRecord, by: DeviceChange, now: float) -> None:
    outbox.emit(rt, conn, catalogue.device_changed(
        event, device=device, user=directory.get_user(conn, device.user_id), by=by, at=now))
