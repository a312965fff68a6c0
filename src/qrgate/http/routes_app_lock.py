"""The phone's app lock over HTTP: ``/v1/devices/me/lock`` (device-signed), see
``qrgate.accounts.app_lock``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection

from qrgate.accounts import app_lock
from qrgate.accounts.app_lock import LockState
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import QrgateError
from qrgate.http.auth import authenticate_device
from qrgate.http.context import offload, runtime_of, signed_request
from qrgate.http.openapi import DEVICE, documented
from qrgate.http.schemas_app_lock import (
    LockOffIn,
    LockOut,
    PinIn,
    WebAuthnIn,
    decode,
    encode,
    unlock_proof,
)
from qrgate.runtime import Runtime

router = APIRouter(prefix="/v1/devices/me/lock", tags=["devices"])


def lock_out(state: LockState) -> LockOut:
    credential = None if state.credential_id is None else encode(state.credential_id)
    return LockOut(pin=state.pin, webauthn=state.webauthn, credential_id=credential,
                   pin_failures=state.pin_failures, pin_locked=state.pin_locked)


def _change(rt: Runtime, *, device_id: str, user_id: int, event: str,
            change: Callable[[Connection], LockState]) -> LockOut:
    """A change of the lock, audited, with wrong PINs counted in the refusal's transaction."""
    now = rt.clock()
    subject = AuditSubject(event=event, scheme="confirm", user_id=user_id, device_id=device_id)

    def after(conn: Connection, error: QrgateError) -> None:
        app_lock.after_failure(rt, conn, device_id=device_id, error=error)

    state = run_decision(rt, subject=subject, now=now,
                         work=lambda conn: (change(conn), "changed"), on_failure=after)
    return lock_out(state)


@router.get("", response_model=LockOut, summary="This phone's app lock as the server knows it",
            **documented(auth=DEVICE))
async def get_lock(request: Request) -> LockOut:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> LockOut:
        device = authenticate_device(rt, signed)
        with rt.read() as conn:
            return lock_out(app_lock.lock_state(rt, conn, device_id=device.id))

    return await offload(rt, run)


@router.put("/pin", response_model=LockOut,
            summary="Set the app lock's PIN (its derived key); a change needs an unlock",
            **documented(auth=DEVICE, errors=(400, 403)))
async def set_pin(request: Request, body: PinIn) -> LockOut:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> LockOut:
        device = authenticate_device(rt, signed)
        return _change(rt, device_id=device.id, user_id=device.user_id, event="device.lock_pin",
                       change=lambda conn: app_lock.set_pin(
                           rt, conn, device_id=device.id, key=decode(body.key),
                           proof=unlock_proof(body.unlock)))

    return await offload(rt, run)


@router.post("/off", response_model=LockOut,
             summary="Turn the app lock off (PIN and fingerprint), unlocked",
             **documented(auth=DEVICE, errors=(400, 403)))
async def turn_off(request: Request, body: LockOffIn) -> LockOut:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> LockOut:
        device = authenticate_device(rt, signed)
        return _change(rt, device_id=device.id, user_id=device.user_id, event="device.lock_off",
                       change=lambda conn: app_lock.turn_off(
                           rt, conn, device_id=device.id, proof=unlock_proof(body.unlock)))

    return await offload(rt, run)


@router.post("/webauthn/options", response_model=dict[str, Any],
             summary="WebAuthn creation options for the platform authenticator",
             **documented(auth=DEVICE, errors=(403,)))
async def webauthn_options(request: Request) -> dict[str, Any]:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> dict[str, Any]:
        device = authenticate_device(rt, signed)
        with rt.read() as conn:
            return app_lock.begin_webauthn(rt, conn, device=device, now=rt.clock())

    return await offload(rt, run)


@router.post("/webauthn", response_model=LockOut,
             summary="Register the platform authenticator's credential (user verified)",
             **documented(auth=DEVICE, errors=(400, 403)))
async def add_webauthn(request: Request, body: WebAuthnIn) -> LockOut:
    rt = runtime_of(request)
    signed = await signed_request(request)
    credential = body.credential.model_dump(by_alias=True, exclude_none=True)

    def run() -> LockOut:
        device = authenticate_device(rt, signed)
        return _change(rt, device_id=device.id, user_id=device.user_id,
                       event="device.lock_webauthn",
                       change=lambda conn: app_lock.complete_webauthn(
                           rt, conn, device_id=device.id, credential=credential,
                           proof=unlock_proof(body.unlock), now=rt.clock()))

    return await offload(rt, run)
