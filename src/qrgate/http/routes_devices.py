"""The phone's own endpoints: enrol (bind) a device, see itself, unbind, read its history."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from qrgate.accounts import access_passes, device_changes, enrolment
from qrgate.accounts.directory import DeviceRecord
from qrgate.confirm.repository import history
from qrgate.core.device_auth import load_public_key
from qrgate.core.enrolment import read_enrol_code
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import BadCredentials, QrgateError
from qrgate.http import enrolled_cookie, schemas
from qrgate.http.auth import SignedRequest, authenticate_device, verify_with_key
from qrgate.http.context import offload, runtime_of, signed_request
from qrgate.http.openapi import DEVICE, documented
from qrgate.http.routes_confirm import history_item
from qrgate.http.schemas import Limit, SearchQuery
from qrgate.runtime import Runtime
from qrgate.webhooks.catalogue import DeviceChange

router = APIRouter(prefix="/v1/devices", tags=["devices"])


def device_out(device: DeviceRecord) -> schemas.DeviceOut:
    return schemas.DeviceOut(device_id=device.id, name=device.name,
                             client_app_id=device.client_app_id, status=device.status,
                             created_at=device.created_at)


@router.post("", status_code=201, response_model=schemas.DeviceEnrolled,
             summary="Registration: bind this phone to the user of an enrolment code or of "
                     "a temporary access pass",
             **documented(auth=DEVICE, errors=(400, 404, 409, 410, 423)))
async def enrol(request: Request, response: Response,
                body: schemas.DeviceEnrolIn) -> schemas.DeviceEnrolled:
    """Signed with the new device key itself (``Qrgate-Device: new``): proof of possession.
    With ``access_pass`` instead of ``code`` (a lost phone), no password is asked and the
    pass may unbind the user's other devices (``qrgate.accounts.access_passes``)."""
    rt = runtime_of(request)
    signed = await signed_request(request)
    # In a worker thread even on SQLite: a password is checked with scrypt.
    enrolled = await run_in_threadpool(_enrol, rt, signed, body)
    enrolled_cookie.remember(request, response, cookie=enrolled_cookie.DEVICES,
                             item_id=enrolled.device_id)
    return enrolled


def _enrol(rt: Runtime, signed: SignedRequest,
           body: schemas.DeviceEnrolIn) -> schemas.DeviceEnrolled:
    public_key = base64.urlsafe_b64decode(body.public_key + "=" * (-len(body.public_key) % 4))
    load_public_key(public_key)
    verify_with_key(rt, signed, public_key=public_key)
    now = rt.clock()
    if body.access_pass is not None:
        return _enrol_with_pass(rt, body, typed=body.access_pass, public_key=public_key,
                                now=now)
    text = body.code or ""  # DeviceEnrolIn: exactly one of code and access_pass
    code = rt.keys.verifying(lambda ring: read_enrol_code(text, keys=ring, now=now))
    subject = AuditSubject(event="device.enrol", scheme="confirm", org_id=code.org_id)
    max_failures = rt.settings.max_failures
    try:
        with rt.read() as conn:
            pending = enrolment.find_pending(conn, digests=rt.digests, code=code, now=now,
                                             max_failures=max_failures)
    except QrgateError as error:
        with rt.engine.begin() as conn:
            subject.record(conn, now=now, reason=error.code)
        raise
    subject.user_id = pending.user_id
    confirmed = enrolment.confirmed(pending, digests=rt.digests, password=body.password,
                                    confirm_code=body.confirm_code)

    def work(conn: Connection) -> tuple[enrolment.EnrolmentDone, str]:
        done = enrolment.complete_enrolment(
            conn, box=rt.box, pending=pending, confirmed=confirmed, public_key=public_key,
            client_app_id=body.client_app_id, device_name=body.name, now=now,
            max_failures=max_failures,
        )
        subject.device_id = done.device.id
        device_changes.bound(rt, conn, device=done.device, user=done.user, now=now)
        return done, "bound"

    def after(conn: Connection, error: QrgateError) -> None:
        if isinstance(error, BadCredentials):
            enrolment.count_failed_confirmation(conn, enrolment_id=pending.enrolment_id)

    done = run_decision(rt, subject=subject, now=now, work=work, on_failure=after)
    return enrolled(rt, done)


def _enrol_with_pass(rt: Runtime, body: schemas.DeviceEnrolIn, *, typed: str,
                     public_key: bytes, now: float) -> schemas.DeviceEnrolled:
    """A lost phone replaced: the new one binds with a temporary access pass."""
    subject = AuditSubject(event="device.enrol", scheme="confirm")

    def work(conn: Connection) -> tuple[enrolment.EnrolmentDone, str]:
        record = access_passes.find_pass(conn, digests=rt.digests, access_pass=typed)
        subject.org_id, subject.user_id = record.user.org_id, record.user.id
        subject.detail = {"access_pass_id": record.id}
        redeemed = access_passes.redeem_pass(
            rt, conn, record=record, public_key=public_key, client_app_id=body.client_app_id,
            device_name=body.name, now=now)
        subject.device_id = redeemed.done.device.id
        subject.detail["unbound_devices"] = list(redeemed.unbound)
        return redeemed.done, "bound_by_access_pass"

    return enrolled(rt, run_decision(rt, subject=subject, now=now, work=work))


def enrolled(rt: Runtime, done: enrolment.EnrolmentDone) -> schemas.DeviceEnrolled:
    return schemas.DeviceEnrolled(
        **device_out(done.device).model_dump(), login=done.user.login,
        org_id=done.user.org_id, issuer=rt.settings.issuer,
        keys=rt.keyring.verifier.to_jwks(),
        offline_secret=base64.urlsafe_b64encode(done.offline_secret).rstrip(b"=").decode())


@router.get("/me", response_model=schemas.DeviceOut, summary="This phone as the server knows it",
            **documented(auth=DEVICE))
async def me(request: Request) -> schemas.DeviceOut:
    rt = runtime_of(request)
    signed = await signed_request(request)
    return device_out(await offload(rt, authenticate_device, rt, signed))


@router.delete("/me", response_model=schemas.DeviceOut, summary="Unbind this phone",
               **documented(auth=DEVICE, errors=(404,)))
async def unbind_me(request: Request) -> schemas.DeviceOut:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> schemas.DeviceOut:
        device = authenticate_device(rt, signed)
        now = rt.clock()
        subject = AuditSubject(event="device.unbind", scheme="confirm", user_id=device.user_id,
                               device_id=device.id)
        unbound = run_decision(rt, subject=subject, now=now, work=lambda conn: (
            device_changes.unbind(rt, conn, device_id=device.id, by=DeviceChange.DEVICE,
                                  now=now),
            "unbound_by_device"))
        return device_out(unbound)

    return await offload(rt, run)


@router.get("/me/history", response_model=schemas.History,
            summary="609: the phone's history, searchable by keyword",
            **documented(auth=DEVICE))
async def my_history(request: Request, q: SearchQuery = None,
                     limit: Limit = 50) -> schemas.History:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> schemas.History:
        device = authenticate_device(rt, signed)
        with rt.read() as conn:
            rows = history(conn, device_id=device.id, query=q, limit=limit)
        return schemas.History(items=[history_item(row, now=rt.clock()) for row in rows])

    return await offload(rt, run)
