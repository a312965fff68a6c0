"""Refused device requests counted but not yet audited are written when the server stops
(``qrgate.http.auth.record_pending_refusals``): the count of a flood survives a restart.
Found unpinned by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import httpx

from qrgate.core.device_auth import DEVICE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from qrgate.http.auth import record_pending_refusals
from qrgate.storage.models import audit_log
from support.stack import Stack


def device_auth_entries(stack: Stack) -> list[tuple[str, str | None, dict[str, object]]]:
    with stack.rt.read() as conn:
        rows = conn.execute(audit_log.select().where(audit_log.c.event == "device.auth")
                            .order_by(audit_log.c.seq)).all()
    return [(row.reason, row.device_id, dict(row.detail)) for row in rows]


def test_counted_refusals_are_written_when_the_server_stops(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    with httpx.Client(base_url=stack.base_url) as http:
        forged = {DEVICE_HEADER: str(phone.device_id), TIMESTAMP_HEADER: str(int(stack.clock())),
                  SIGNATURE_HEADER: "A" * 86}
        for _ in range(4):
            assert http.get("/v1/devices/me", headers=forged).status_code == 401
    written = device_auth_entries(stack)
    assert [(reason, device) for reason, device, _ in written] == [
        ("bad_signature", phone.device_id)]
    record_pending_refusals(stack.rt)
    pending = device_auth_entries(stack)[len(written):]
    assert pending == [("bad_signature", phone.device_id, {"repeats": 3})]
    # Drained: stopping again writes nothing more.
    record_pending_refusals(stack.rt)
    assert len(device_auth_entries(stack)) == len(written) + 1
