"""Scheme C over HTTP: relying party (API key), waiting browser (binding secret) and phone
(device signature) endpoints under ``/v1/confirm``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qrgate.accounts import directory
from qrgate.confirm import offline, operations, qr_server, verification
from qrgate.confirm.repository import ChallengeRow, history
from qrgate.core.confirm import ConfirmState
from qrgate.core.policy import VerifierKind
from qrgate.errors import Expired, Rejected, Unauthenticated
from qrgate.http import schemas
from qrgate.http.auth import (
    BROWSER_COOKIE,
    BROWSER_HEADER,
    SignedRequest,
    authenticate_app,
    authenticate_device,
    browser_token_from,
)
from qrgate.http.context import offload, runtime_of, signed_request
from qrgate.http.media import EventStream, PngImage, SvgImage
from qrgate.http.openapi import API_KEY, BROWSER, BROWSER_OR_API_KEY, DEVICE, documented
from qrgate.http.schemas import IdPath, Limit, LoginQuery, SearchQuery
from qrgate.http.schemas_app_lock import unlock_proof
from qrgate.http.sse import EVENT_SCHEMA, challenge_events
from qrgate.runtime import Runtime

router = APIRouter(prefix="/v1/confirm", tags=["confirm"])


def challenge_out(row: ChallengeRow, *, now: float, with_number: bool) -> schemas.ChallengeOut:
    return schemas.ChallengeOut(
        challenge_id=row.id, state=row.effective_state(now), reason=row.reason,
        verifier=VerifierKind(row.verifier), login=row.login, business_id=row.business_id,
        scene=row.scene,
        created_at=row.created_at, expires_at=row.expires_at, decided_at=row.decided_at,
        number=row.number if with_number else None,
    )


def _links(rt: Runtime, challenge_id: str) -> dict[str, str]:
    base = f"{rt.settings.public_url}/v1/confirm/challenges/{challenge_id}"
    return {
        "self": base, "events": f"{base}/events", "rotate": f"{base}/rotate",
        "qr_png": f"{base}/qr.png", "qr_svg": f"{base}/qr.svg",
        "page": f"{rt.settings.public_url}/confirm/{challenge_id}",
    }


@router.post("/challenges", status_code=201, response_model=schemas.Started,
             summary="601/602: start confirming a sensitive operation",
             **documented(auth=API_KEY, errors=(404, 409, 423)))
async def start_challenge(request: Request, body: schemas.StartConfirm) -> schemas.Started:
    rt = runtime_of(request)

    def run() -> schemas.Started:
        app = authenticate_app(rt, request.headers)
        started = operations.start(rt, app=app, request=operations.StartRequest(
            login=body.login, operation=body.scene.operation, source=body.scene.source,
            amount=body.scene.amount, currency=body.scene.currency, content=body.scene.content,
            business_id=body.business_id, url=body.url, requester_ip=str(body.requester.ip),
            requester_ua=body.requester.user_agent, verifier=body.verifier,
            number_matching=body.number_matching,
        ))
        row = started.challenge
        base = challenge_out(row, now=rt.clock(), with_number=True)
        return schemas.Started(
            **base.model_dump(), code=started.code, code_expires_at=row.code_expires_at,
            browser_token=started.browser_token, links=_links(rt, row.id),
        )

    return await offload(rt, run)


@router.get("/challenges", response_model=schemas.History,
            summary="609: the relying party's history, searchable by keyword",
            **documented(auth=API_KEY))
async def list_challenges(
    request: Request,
    login: LoginQuery = None,
    q: SearchQuery = None,
    state: schemas.StateFilter | None = None,
    limit: Limit = 50,
) -> schemas.History:
    rt = runtime_of(request)

    def run() -> schemas.History:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            rows = history(conn, app_id=app.id, login=login, query=q,
                           state=ConfirmState(state) if state else None, limit=limit)
        return schemas.History(items=[history_item(row, now=rt.clock()) for row in rows])

    return await offload(rt, run)


def history_item(row: ChallengeRow, *, now: float) -> schemas.HistoryItem:
    return schemas.HistoryItem(
        challenge_id=row.id, state=row.effective_state(now), reason=row.reason,
        login=row.login, business_id=row.business_id, scene=row.scene,
        created_at=row.created_at, decided_at=row.decided_at,
    )


@router.get("/challenges/{challenge_id}", response_model=schemas.ChallengeOut,
            summary="State of a challenge (relying party's key or the starting browser)",
            **documented(auth=BROWSER_OR_API_KEY, errors=(403, 404)))
async def get_challenge(request: Request, challenge_id: IdPath) -> schemas.ChallengeOut:
    rt = runtime_of(request)

    def run() -> schemas.ChallengeOut:
        row = _load_for_caller(rt, request, challenge_id)
        return challenge_out(row, now=rt.clock(), with_number=True)

    return await offload(rt, run)


def _load_for_caller(
    rt: Runtime, request: Request, challenge_id: str
) -> ChallengeRow:
    """The starting browser (token) or the relying party (API key) may read a challenge."""
    token = browser_token_from(request.headers, request.cookies)
    if token is not None:
        with rt.read() as conn:
            return verification.load_for_browser(
                rt, conn, challenge_id=challenge_id, browser_token=token)
    if "authorization" in request.headers:
        app = authenticate_app(rt, request.headers)
        return verification.load_for_app(rt, app=app, challenge_id=challenge_id)
    raise Unauthenticated("send the browser token or an API key", code="missing_credentials")


@router.post("/challenges/{challenge_id}/browser-session", status_code=204,
             summary="Move the browser token into an HttpOnly cookie for this challenge",
             **documented(auth=[{"BrowserToken": []}], errors=(403, 404)))
async def browser_session(request: Request, challenge_id: IdPath) -> Response:
    rt = runtime_of(request)
    token = request.headers.get(BROWSER_HEADER)
    if not token:
        raise Unauthenticated("send the browser token header", code="missing_credentials")

    def run() -> ChallengeRow:
        with rt.read() as conn:
            return verification.load_for_browser(rt, conn, challenge_id=challenge_id,
                                                 browser_token=token)

    row = await offload(rt, run)
    response = Response(status_code=204)
    response.set_cookie(
        BROWSER_COOKIE, token, max_age=int(row.expires_at - row.created_at) + 60,
        path=f"/v1/confirm/challenges/{challenge_id}", httponly=True, samesite="strict",
        secure=rt.settings.public_url.startswith("https://"),
    )
    return response


@router.post("/challenges/{challenge_id}/rotate", response_model=schemas.RotatedCode,
             summary="605: a fresh code for the waiting page (the old one dies)",
             **documented(auth=BROWSER, errors=(403, 404, 410)))
async def rotate(request: Request, challenge_id: IdPath) -> schemas.RotatedCode:
    rt = runtime_of(request)
    token = browser_token_from(request.headers, request.cookies)
    if token is None:
        raise Unauthenticated("only the starting browser may rotate", code="missing_credentials")

    def run() -> schemas.RotatedCode:
        row, code = verification.rotate_code(rt, challenge_id=challenge_id, browser_token=token)
        return schemas.RotatedCode(code=code, code_expires_at=row.code_expires_at)

    return await offload(rt, run)


@router.get("/challenges/{challenge_id}/qr.png", response_class=PngImage,
            summary="605: the current code as a PNG image",
            **documented(auth=BROWSER_OR_API_KEY, errors=(403, 404, 410),
                         media_type=PngImage.media_type))
async def qr_png(request: Request, challenge_id: IdPath) -> Response:
    return await _qr_image(request, challenge_id, image_format="png")


@router.get("/challenges/{challenge_id}/qr.svg", response_class=SvgImage,
            summary="605: the current code as a scalable SVG image",
            **documented(auth=BROWSER_OR_API_KEY, errors=(403, 404, 410),
                         media_type=SvgImage.media_type))
async def qr_svg(request: Request, challenge_id: IdPath) -> Response:
    return await _qr_image(request, challenge_id, image_format="svg")


async def _qr_image(request: Request, challenge_id: str, *, image_format: str) -> Response:
    rt = runtime_of(request)

    def run() -> Response:
        row = _load_for_caller(rt, request, challenge_id)
        state = row.effective_state(rt.clock())
        if state == ConfirmState.EXPIRED:
            raise Expired("challenge expired")
        if row.verifier != VerifierKind.QR or state != ConfirmState.PENDING:
            raise Rejected("this challenge shows no code now", code="not_pending")
        data, media_type = qr_server.render(qr_server.code_for(rt, row), image_format=image_format)
        return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})

    return await offload(rt, run)


@router.get("/challenges/{challenge_id}/events", summary="609: results pushed (SSE)",
            response_class=EventStream,
            **documented(auth=BROWSER_OR_API_KEY, errors=(403, 404),
                         media_type=EventStream.media_type, item_schema=EVENT_SCHEMA))
async def events(request: Request, challenge_id: IdPath) -> Response:
    rt = runtime_of(request)
    await offload(rt, _load_for_caller, rt, request, challenge_id)
    return challenge_events(rt, request, challenge_id)


@router.post("/challenges/{challenge_id}/cancel", response_model=schemas.ChallengeOut,
             summary="The relying party withdraws a challenge",
             **documented(auth=API_KEY, errors=(404, 409, 410)))
async def cancel(request: Request, challenge_id: IdPath) -> schemas.ChallengeOut:
    rt = runtime_of(request)

    def run() -> schemas.ChallengeOut:
        app = authenticate_app(rt, request.headers)
        row = verification.cancel(rt, app=app, challenge_id=challenge_id)
        return challenge_out(row, now=rt.clock(), with_number=False)

    return await offload(rt, run)


@router.post("/challenges/{challenge_id}/otp", response_model=schemas.ChallengeOut,
             summary="603: decide a TOTP-routed challenge with the code the user typed",
             **documented(auth=API_KEY, errors=(403, 404, 409, 410, 423)))
async def otp(request: Request, challenge_id: IdPath,
              body: schemas.OtpIn) -> schemas.ChallengeOut:
    rt = runtime_of(request)

    def run() -> schemas.ChallengeOut:
        app = authenticate_app(rt, request.headers)
        row = verification.check_otp(rt, app=app, challenge_id=challenge_id, otp=body.otp)
        return challenge_out(row, now=rt.clock(), with_number=False)

    return await offload(rt, run)


@router.post("/challenges/{challenge_id}/offline-code", response_model=schemas.ChallengeOut,
             summary="608/609 offline: approve with the code a phone without network showed",
             description=(
                 "The waiting page (browser token) sends the 8-digit code the user typed, or "
                 "the relying party (API key) forwards it. A right code approves the challenge "
                 "as the phone would online (reason `approved_offline`); a wrong one is "
                 "`wrong_offline_code` and counts against the challenge and the user; "
                 "`offline_unavailable` when no phone of the user holds an offline secret."),
             **documented(auth=BROWSER_OR_API_KEY, errors=(401, 403, 404, 409, 410, 423)))
async def offline_code(request: Request, challenge_id: IdPath,
                       body: schemas.OfflineCodeIn) -> schemas.ChallengeOut:
    rt = runtime_of(request)
    token = browser_token_from(request.headers, request.cookies)

    def run() -> schemas.ChallengeOut:
        caller: offline.Caller
        if token is not None:
            caller = offline.FromBrowser(browser_token=token)
        elif "authorization" in request.headers:
            caller = authenticate_app(rt, request.headers)
        else:
            raise Unauthenticated("send the browser token or an API key",
                                  code="missing_credentials")
        row = offline.approve_offline(rt, challenge_id=challenge_id, code=body.code,
                                      caller=caller)
        return challenge_out(row, now=rt.clock(), with_number=False)

    return await offload(rt, run)


# --- the phone ----------------------------------------------------------------------------


@router.post("/scan", response_model=schemas.ScanOut,
             summary="607/608: a bound device reports the code it scanned",
             **documented(auth=DEVICE, errors=(400, 403, 404, 409, 410)))
async def scan(request: Request, body: schemas.ScanIn) -> schemas.ScanOut:
    rt = runtime_of(request)
    signed = await signed_request(request)

    def run() -> schemas.ScanOut:
        device = authenticate_device(rt, signed)
        context = verification.scan(rt, code_text=body.code, device=device)
        row, app = context.challenge, context.app
        return schemas.ScanOut(
            challenge_id=row.id,
            service={"organisation": app.org_name, "application": app.name,
                     "business_id": app.business_id, "origin": app.origin},
            operation=str(row.scene.get("operation", "")), scene=row.scene, login=row.login,
            requester={"ip": row.requester_ip, "user_agent": row.requester_ua,
                       "place": context.place},
            number_matching=row.number is not None, expires_at=row.expires_at,
            unlock_required=app.policy.require_app_lock,
        )

    return await offload(rt, run)


@router.post("/challenges/{challenge_id}/decision", response_model=schemas.ChallengeOut,
             summary="608/609: the device that scanned approves or denies",
             **documented(auth=DEVICE, errors=(403, 404, 409, 410)))
async def decision(
    request: Request, challenge_id: IdPath, body: schemas.DecisionIn
) -> schemas.ChallengeOut:
    rt = runtime_of(request)
    signed: SignedRequest = await signed_request(request)

    def run() -> schemas.ChallengeOut:
        device: directory.DeviceRecord = authenticate_device(rt, signed)
        row = verification.decide(rt, challenge_id=challenge_id, device=device,
                                  decision=body.decision, number=body.number,
                                  report=body.report, unlock=unlock_proof(body.unlock))
        return challenge_out(row, now=rt.clock(), with_number=False)

    return await offload(rt, run)
