"""A relying party manages its users: create them, start device enrolment, set up TOTP,
list and unbind devices, set the preferred verifier. All under its API key's organisation."""

from __future__ import annotations

import pyotp
from fastapi import APIRouter, Body, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from qrgate.accounts import access_passes, device_changes, directory, enrolment
from qrgate.confirm.verifiers import set_totp_secret, totp_uri
from qrgate.core.passwords import new_password_hash
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import NotFound
from qrgate.http import schemas
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.http.openapi import API_KEY, documented
from qrgate.http.routes_devices import device_out
from qrgate.http.schemas import IdPath, LoginPath
from qrgate.qrimage import render_svg
from qrgate.webhooks.catalogue import DeviceChange

router = APIRouter(prefix="/v1/users", tags=["users"])


def user_out(user: directory.UserRecord) -> schemas.UserOut:
    return schemas.UserOut(login=user.login, display_name=user.display_name,
                           preferred_verifier=user.preferred_verifier,
                           has_password=user.has_password, has_totp=user.has_totp,
                           frozen=user.frozen, blocked_until=user.blocked_until)


@router.post("", status_code=201, response_model=schemas.UserOut, summary="Create a user",
             **documented(auth=API_KEY, errors=(409,)))
async def create_user(request: Request, body: schemas.UserIn) -> schemas.UserOut:
    rt = runtime_of(request)
    # scrypt is slow on purpose: never on the event loop, never inside a transaction.
    password_hash = None if body.password is None else await run_in_threadpool(
        new_password_hash, body.password)

    def run() -> schemas.UserOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="user.create", org_id=app.org_id, app_id=app.id)

        def work(conn: Connection) -> tuple[directory.UserRecord, str]:
            user_id = directory.create_user(conn, org_id=app.org_id, login=body.login,
                                            display_name=body.display_name,
                                            password_hash=password_hash, now=now)
            subject.user_id = user_id
            return directory.get_user(conn, user_id), "created"

        return user_out(run_decision(rt, subject=subject, now=now, work=work))

    return await offload(rt, run)


@router.get("/{login}", response_model=schemas.UserOut, summary="A user of this organisation",
            **documented(auth=API_KEY, errors=(404,)))
async def get_user(request: Request, login: LoginPath) -> schemas.UserOut:
    rt = runtime_of(request)

    def run() -> schemas.UserOut:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            return user_out(directory.find_user(conn, org_id=app.org_id, login=login))

    return await offload(rt, run)


@router.put("/{login}/preferences", response_model=schemas.UserOut,
            summary="Set the user's preferred verifier (603 routing)",
            **documented(auth=API_KEY, errors=(404,)))
async def set_preferences(
    request: Request, login: LoginPath, body: schemas.PreferenceIn
) -> schemas.UserOut:
    rt = runtime_of(request)

    def run() -> schemas.UserOut:
        app = authenticate_app(rt, request.headers)
        with rt.engine.begin() as conn:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            directory.set_preferred_verifier(conn, user_id=user.id, kind=body.preferred_verifier)
            return user_out(directory.get_user(conn, user.id))

    return await offload(rt, run)


@router.post("/{login}/enrolments", status_code=201, response_model=schemas.EnrolmentOut,
             summary="Registration: a one-time enrolment code for a new phone",
             **documented(auth=API_KEY, errors=(404, 423)))
async def start_enrolment(request: Request, login: LoginPath) -> schemas.EnrolmentOut:
    rt = runtime_of(request)

    def run() -> schemas.EnrolmentOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="device.enrolment_start", scheme="confirm",
                               org_id=app.org_id, app_id=app.id)

        def work(conn: Connection) -> tuple[enrolment.EnrolmentStart, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            started = enrolment.begin_enrolment(
                conn, digests=rt.digests, app=app, user=user, server_url=rt.settings.public_url,
                issuer=rt.settings.issuer, keyring=rt.keyring, now=now,
                ttl=rt.settings.enrol_ttl,
            )
            return started, "started"

        started = run_decision(rt, subject=subject, now=now, work=work)
        return schemas.EnrolmentOut(
            enrolment_id=started.enrolment_id, code=started.code,
            confirm_code=started.confirm_code, expires_at=started.expires_at,
            qr_svg=render_svg(started.code, ecc="M"),
        )

    return await offload(rt, run)


@router.post("/{login}/access-passes", status_code=201, response_model=schemas.AccessPassOut,
             summary="Lost phone: a temporary access pass to enrol a new phone with; shown once",
             **documented(auth=API_KEY, errors=(404, 423)))
async def issue_access_pass(
    request: Request, login: LoginPath,
    body: schemas.AccessPassIn = Body(default_factory=schemas.AccessPassIn),  # noqa: B008
) -> schemas.AccessPassOut:
    """One use, short-lived; ends the user's earlier unused passes. With ``revoke_devices``
    (the default) the phone enrolled with it unbinds the user's other devices. The body may
    be left out: the defaults."""
    rt = runtime_of(request)

    def run() -> schemas.AccessPassOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="device.access_pass_issue", scheme="confirm",
                               org_id=app.org_id, app_id=app.id)

        def work(conn: Connection) -> tuple[access_passes.IssuedPass, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            issued = access_passes.issue_pass(
                conn, digests=rt.digests, user=user, issued_by="relying_party", app_id=app.id,
                revoke_devices=body.revoke_devices, now=now,
                ttl=body.ttl_seconds or rt.settings.access_pass_ttl)
            subject.detail = {"access_pass_id": issued.access_pass_id,
                              "revoke_devices": issued.revoke_devices,
                              "expires_at": issued.expires_at}
            return issued, "issued"

        issued = run_decision(rt, subject=subject, now=now, work=work)
        return schemas.AccessPassOut(access_pass_id=issued.access_pass_id,
                                     access_pass=issued.access_pass,
                                     expires_at=issued.expires_at,
                                     revoke_devices=issued.revoke_devices)

    return await offload(rt, run)


@router.post("/{login}/totp", status_code=201, response_model=schemas.TotpOut,
             summary="Set up (or replace) the user's TOTP verifier; the secret is shown once",
             **documented(auth=API_KEY, errors=(404,)))
async def setup_totp(request: Request, login: LoginPath) -> schemas.TotpOut:
    rt = runtime_of(request)

    def run() -> schemas.TotpOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        secret = pyotp.random_base32(length=32)
        subject = AuditSubject(event="user.totp_setup", org_id=app.org_id, app_id=app.id)

        def work(conn: Connection) -> tuple[directory.UserRecord, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            set_totp_secret(conn, box=rt.box, user_id=user.id, secret=secret)
            return user, "totp_set"

        user = run_decision(rt, subject=subject, now=now, work=work)
        uri = totp_uri(secret=secret, login=user.login, issuer=app.org_name)
        return schemas.TotpOut(uri=uri, qr_svg=render_svg(uri, ecc="M"))

    return await offload(rt, run)


@router.get("/{login}/devices", response_model=list[schemas.DeviceOut],
            summary="The user's devices", **documented(auth=API_KEY, errors=(404,)))
async def list_devices(request: Request, login: LoginPath) -> list[schemas.DeviceOut]:
    rt = runtime_of(request)

    def run() -> list[schemas.DeviceOut]:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            return [device_out(d) for d in directory.list_devices(conn, user_id=user.id)]

    return await offload(rt, run)


@router.delete("/{login}/devices/{device_id}", response_model=schemas.DeviceOut,
               summary="Unbind one of the user's devices",
               **documented(auth=API_KEY, errors=(404,)))
async def unbind(request: Request, login: LoginPath, device_id: IdPath) -> schemas.DeviceOut:
    rt = runtime_of(request)

    def run() -> schemas.DeviceOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="device.unbind", scheme="confirm", org_id=app.org_id,
                               app_id=app.id, device_id=device_id)

        def work(conn: Connection) -> tuple[directory.DeviceRecord, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            owned = {d.id for d in directory.list_devices(conn, user_id=user.id)}
            if device_id not in owned:
                raise NotFound("no such device for this user", code="device_not_found")
            return device_changes.unbind(rt, conn, device_id=device_id,
                                         by=DeviceChange.RELYING_PARTY, now=now), "unbound_by_rp"

        return device_out(run_decision(rt, subject=subject, now=now, work=work))

    return await offload(rt, run)

