"""Refused device requests counted but not yet audited are written when the server stops
(``qrgate.http.auth.record_pending_refusals``): the count of a flood survives a restart.
Found unpinned by mutation testing (scripts/mutation.sh)."""

from __future__ import annotations

import httpx

from qrgate.accounts import directory
from qrgate.core.device_auth import DEVICE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from qrgate.http.auth import record_pending_refusals
from qrgate.refusals import WINDOW_SECONDS, RefusalAudit
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


def test_a_refused_device_is_audited_with_its_owner_the_path_and_the_repeats(
        stack: Stack) -> None:
    """One entry per device and reason a window: the first refusal names the device, its
    user and the path; the first after the window says how many were only counted."""
    stack.rt.refusals = RefusalAudit(clock=stack.clock)
    phone = stack.enrolled_phone()
    with stack.rt.read() as conn:
        owner = directory.get_device(conn, str(phone.device_id)).user_id
    with httpx.Client(base_url=stack.base_url) as http:
        def forged() -> dict[str, str]:
            return {DEVICE_HEADER: str(phone.device_id), SIGNATURE_HEADER: "A" * 86,
                    TIMESTAMP_HEADER: str(int(stack.clock()))}
        for _ in range(3):
            assert http.get("/v1/devices/me", headers=forged()).status_code == 401
        stack.clock.advance(WINDOW_SECONDS + 1)
        assert http.get("/v1/devices/me", headers=forged()).status_code == 401
    with stack.rt.read() as conn:
        rows = conn.execute(audit_log.select().where(audit_log.c.event == "device.auth")
                            .order_by(audit_log.c.seq)).all()
    assert [(row.reason, row.device_id, row.user_id, dict(row.detail)) for row in rows] == [
        ("bad_signature", phone.device_id, owner, {"path": "/v1/devices/me"}),
        ("bad_signature", phone.device_id, owner, {"path": "/v1/devices/me", "repeats": 2}),
    ]
    # Of no scheme, organisation or challenge: the device did not prove who it is.
    assert {(row.scheme, row.org_id, row.app_id, row.challenge_id) for row in rows} == {
        ("", None, None, None)}
