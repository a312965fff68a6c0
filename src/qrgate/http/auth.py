"""Who is calling: a relying party (API key), a bound device (request signature) or the
browser that started a challenge (its binding secret, as header or HttpOnly cookie).

These run inside the request's worker thread together with the service call, so one
request costs one hop to the thread pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qrgate.accounts import directory
from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    verify_request,
)
from qrgate.decisions import AuditSubject
from qrgate.errors import Frozen, QrgateError, Unauthenticated
from qrgate.runtime import Runtime

BROWSER_HEADER = "qrgate-browser-token"
BROWSER_COOKIE = "qrgate_browser"


@dataclass(frozen=True, kw_only=True)
class SignedRequest:
    """The parts of an HTTP request that a device signature covers."""

    method: str
    # The request target: the path, plus "?" and the raw query string when there is one.
    path: str
    headers: Mapping[str, str]
    body: bytes


def api_key_from(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'",
                              code="missing_api_key")
    return token.strip()


def authenticate_app(rt: Runtime, headers: Mapping[str, str]) -> directory.AppRecord:
    return rt.api_keys.authenticate(rt, api_key_from(headers))


def signature_parts(request: SignedRequest) -> tuple[str, int, str]:
    # mutation: another default for a missing header (None, "XXXX") is equivalent: it ends
    # in the same missing_signature refusal below.
    device_id = request.headers.get(DEVICE_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")  # mutation: as above
    raw_time = request.headers.get(TIMESTAMP_HEADER, "")  # mutation: as above
    if not device_id or not signature or not raw_time:
        raise Unauthenticated("device requests need Qrgate-Device, Qrgate-Timestamp and "
                              "Qrgate-Signature headers", code="missing_signature")
    try:
        timestamp = int(raw_time)
    except ValueError:
        raise Unauthenticated("Qrgate-Timestamp must be Unix seconds",
                              code="missing_signature") from None
    return device_id, timestamp, signature


def verify_with_key(rt: Runtime, request: SignedRequest, *, public_key: bytes) -> str:
    device_id, timestamp, signature = signature_parts(request)
    verify_request(
        public_key=load_public_key(public_key), signature=signature, method=request.method,
        path=request.path, timestamp=timestamp, device_id=device_id, body=request.body,
        now=rt.clock(), max_skew=rt.settings.device_clock_skew,
    )
    return device_id


def authenticate_device(rt: Runtime, request: SignedRequest) -> directory.DeviceRecord:
    """A device that fails to prove itself is refused and the refusal audited (a forged or
    replayed device request is exactly what operators need to see)."""
    device_id, _, _ = signature_parts(request)
    device: directory.DeviceRecord | None = None  # mutation: any falsy value is equivalent
    try:
        with rt.read() as conn:
            device = directory.get_device(conn, device_id)
        verify_with_key(rt, request, public_key=device.public_key)
        if device.status == "unbound":
            raise Unauthenticated("device was unbound", code="device_unbound")
        if device.status == "frozen":
            raise Frozen("device is frozen")
    except QrgateError as error:
        # Only a known device is named: the header itself is attacker-controlled.
        known = device.id if device else None
        repeats = rt.refusals.admit(reason=error.code, device_id=known)
        if repeats is not None:
            detail: dict[str, object] = {"path": request.path[:100]}
            if repeats:
                detail["repeats"] = repeats
            subject = AuditSubject(event="device.auth",
                                   user_id=device.user_id if device else None,
                                   device_id=known, detail=detail)
            with rt.engine.begin() as conn:
                subject.record(conn, now=rt.clock(), reason=error.code)
        raise
    return device


def record_pending_refusals(rt: Runtime) -> None:
    """Write the refusals counted but not yet audited (the server is stopping)."""
    pending = rt.refusals.drain()
    if not pending:
        return
    with rt.engine.begin() as conn:
        for (reason, device_id), repeats in pending:
            AuditSubject(event="device.auth", device_id=device_id,
                         detail={"repeats": repeats}).record(conn, now=rt.clock(),
                                                             reason=reason)


def browser_token_from(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    return headers.get(BROWSER_HEADER) or cookies.get(BROWSER_COOKIE)
