"""Scheme A over HTTP (``/v1/gridcard``): the phone app alone (password, then the asked
cell), a relying party that starts the attempt and shows the position on its own page
(API key; results pushed by SSE), the app joining it by the page's code, and the cards."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from qrgate.accounts import directory
from qrgate.confirm.qr_server import render
from qrgate.confirm.verification import describe_place
from qrgate.core.gridcard import format_serial
from qrgate.core.gridcard_attempt import TERMINAL_STATES, AttemptState
from qrgate.errors import Conflict, Unauthenticated
from qrgate.gridcard import app_cards, attempt_store, attempts
from qrgate.gridcard.attempt_store import AttemptRow
from qrgate.gridcard.attempts import Caller, WithToken
from qrgate.gridcard.cards import CardRecord
from qrgate.http import schemas_gridcard as wire
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.http.media import EventStream, PdfDocument, PngImage, SvgImage
from qrgate.http.openapi import API_KEY, ATTEMPT_OR_API_KEY, PUBLIC, documented
from qrgate.http.schemas import IdPath, LoginQuery
from qrgate.http.sse import Snapshot, state_events
from qrgate.runtime import Runtime

router = APIRouter(prefix="/v1/gridcard", tags=["gridcard"])
ATTEMPT_HEADER = "qrgate-attempt-token"


def attempt_out(rt: Runtime, row: AttemptRow) -> wire.AttemptOut:
    with rt.read() as conn:
        names = attempt_store.names_of(conn, row)
    return wire.AttemptOut(
        attempt_id=row.id, state=row.effective_state(rt.clock()), reason=row.reason,
        login=row.login, organisation=names.organisation, application=names.application,
        operation=row.operation, serial=format_serial(names.serial), position=row.position,
        position_seq=row.position_seq, window_seconds=row.window_seconds,
        position_expires_at=row.position_expires_at,
        reissues_left=max(0, rt.settings.gridcard_max_reissues - row.reissues),
        created_at=row.created_at, expires_at=row.expires_at, decided_at=row.decided_at)


def _links(rt: Runtime, attempt_id: str) -> dict[str, str]:
    base = f"{rt.settings.public_url}/v1/gridcard/attempts/{attempt_id}"
    return {"self": base, "events": f"{base}/events", "answer": f"{base}/answer",
            "reissue": f"{base}/reissue", "cancel": f"{base}/cancel",
            "qr_png": f"{base}/qr.png", "qr_svg": f"{base}/qr.svg"}


def _caller(rt: Runtime, request: Request) -> Caller:
    token = request.headers.get(ATTEMPT_HEADER)
    if token:
        return WithToken(token=token)
    if "authorization" in request.headers:
        return authenticate_app(rt, request.headers)
    raise Unauthenticated("send the attempt token or an API key", code="missing_credentials")


def _started(rt: Runtime, started: attempts.Started) -> wire.AttemptStarted:
    return wire.AttemptStarted(**attempt_out(rt, started.attempt).model_dump(),
                               answer_token=started.answer_token, code=started.code,
                               links=_links(rt, started.attempt.id))


_START_ERRORS = (401, 404, 409, 410, 423)


@router.post("/sign-in", status_code=201, response_model=wire.AttemptStarted,
             summary="A1/A2 in the app alone: login and password, then a position to scan",
             description=(
                 "The phone app signs in with the user's login and password. A wrong password "
                 "or an unknown login is `bad_credentials` (no position; the user's failures "
                 "grow). On success: a random unused position of the user's current card, its "
                 "time window, and the answer token every later call shows."),
             **documented(auth=PUBLIC, errors=_START_ERRORS))
async def sign_in(request: Request, body: wire.SignInIn) -> wire.AttemptStarted:
    rt = runtime_of(request)

    def run() -> wire.AttemptStarted:
        with rt.read() as conn:
            org_id = directory.org_id_by_slug(conn, body.organisation)
        return _started(rt, attempts.start(rt, request=attempts.StartRequest(
            org_id=org_id, login=body.login, password=body.password,
            operation=body.operation, risk=body.risk,
            requester_ip=request.client.host if request.client else "",
            requester_ua=request.headers.get("user-agent", "")[:300])))

    # In a worker thread even on SQLite: the password is checked with scrypt (~0.1 s), which
    # must not hold the event loop every other request waits on.
    return await run_in_threadpool(run)


@router.post("/attempts", status_code=201, response_model=wire.AttemptStarted,
             summary="A1/A2 for a relying party: start an attempt its page shows",
             description=(
                 "The relying party's backend forwards the login and password its page took. "
                 "The answer carries the position to show and `code`, a signed code to show "
                 "beside it: the user scans it with the qrgate app, then the asked cell."),
             **documented(auth=API_KEY, errors=_START_ERRORS))
async def start_attempt(request: Request, body: wire.StartGridcardIn) -> wire.AttemptStarted:
    rt = runtime_of(request)

    def run() -> wire.AttemptStarted:
        app = authenticate_app(rt, request.headers)
        return _started(rt, attempts.start(rt, request=attempts.StartRequest(
            org_id=app.org_id, login=body.login, password=body.password,
            operation=body.operation, risk=body.risk, app=app, business_id=body.business_id,
            requester_ip=str(body.requester.ip), requester_ua=body.requester.user_agent)))

    return await run_in_threadpool(run)  # scrypt: as for sign-in


@router.post("/scan", response_model=wire.AttemptJoined,
             summary="The app joins a relying party's attempt by the code its page shows",
             **documented(auth=PUBLIC, errors=(400, 401, 404, 409, 410, 422)))
async def join_attempt(request: Request, body: wire.JoinIn) -> wire.AttemptJoined:
    rt = runtime_of(request)

    def run() -> wire.AttemptJoined:
        joined = attempts.join(rt, code_text=body.code)
        row, app = joined.attempt, joined.app
        base = attempt_out(rt, row)
        return wire.AttemptJoined(
            **base.model_dump(), answer_token=joined.answer_token,
            service=wire.Service(organisation=base.organisation,
                                 application=None if app is None else app.name,
                                 business_id=None if app is None else app.business_id,
                                 origin=None if app is None else app.origin),
            requester=wire.RequesterOut(ip=row.requester_ip, user_agent=row.requester_ua,
                                        place=describe_place(row.requester_ip)))

    return await offload(rt, run)


@router.get("/attempts/{attempt_id}", response_model=wire.AttemptOut,
            summary="An attempt's state (its answer token or the relying party's key)",
            **documented(auth=ATTEMPT_OR_API_KEY, errors=(401, 403, 404)))
async def get_attempt(request: Request, attempt_id: IdPath) -> wire.AttemptOut:
    rt = runtime_of(request)

    def run() -> wire.AttemptOut:
        return attempt_out(rt, attempts.read(rt, attempt_id=attempt_id,
                                             caller=_caller(rt, request)))

    return await offload(rt, run)


@router.post("/attempts/{attempt_id}/answer", response_model=wire.AttemptOut,
             summary="A3/A4: the content of the scanned cell",
             description=(
                 "Right cell, in time: `authenticated` (sending it again is answered the "
                 "same). Wrong answers count against the attempt and, when they are cells, "
                 "against the user: `wrong_cell`, `cell_used`, `wrong_card`, `card_revoked`, "
                 "`bad_signature`. After the window: `late_answer` (unchecked; ask for "
                 "another position)."),
             **documented(auth=ATTEMPT_OR_API_KEY, errors=(400, 401, 403, 404, 409, 410, 423)))
async def answer_attempt(request: Request, attempt_id: IdPath,
                         body: wire.AnswerIn) -> wire.AttemptOut:
    rt = runtime_of(request)

    def run() -> wire.AttemptOut:
        return attempt_out(rt, attempts.answer(rt, attempt_id=attempt_id,
                                               caller=_caller(rt, request), cell=body.cell))

    return await offload(rt, run)


@router.post("/attempts/{attempt_id}/reissue", response_model=wire.AttemptOut,
             summary="Another position, once the current one's window has passed",
             description=(
                 "At most `QRGATE_GRIDCARD_MAX_REISSUES` per attempt; one more fails the "
                 "attempt (`reissue_limit`). Before the window passes: `window_open`."),
             **documented(auth=ATTEMPT_OR_API_KEY, errors=(401, 403, 404, 409, 410)))
async def reissue_attempt(request: Request, attempt_id: IdPath) -> wire.AttemptOut:
    rt = runtime_of(request)

    def run() -> wire.AttemptOut:
        return attempt_out(rt, attempts.reissue(rt, attempt_id=attempt_id,
                                                caller=_caller(rt, request)))

    return await offload(rt, run)


@router.post("/attempts/{attempt_id}/cancel", response_model=wire.AttemptOut,
             summary="Give up an attempt (the app or the relying party)",
             **documented(auth=ATTEMPT_OR_API_KEY, errors=(401, 403, 404, 409, 410)))
async def cancel_attempt(request: Request, attempt_id: IdPath) -> wire.AttemptOut:
    rt = runtime_of(request)

    def run() -> wire.AttemptOut:
        return attempt_out(rt, attempts.cancel(rt, attempt_id=attempt_id,
                                               caller=_caller(rt, request)))

    return await offload(rt, run)


# Each event of an attempt's stream, for the OpenAPI document: a ``state`` event (the
# payload ``attempt_events`` sends) or ``unavailable`` (then the stream ends).
_EVENT_SCHEMA: dict[str, object] = {
    "type": "object", "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["state", "unavailable"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
            "oneOf": [
                {"title": "state", "type": "object",
                 "required": ["attempt_id", "state", "reason", "position", "position_seq",
                              "position_expires_at", "decided_at"],
                 "properties": {
                     "attempt_id": {"type": "string"},
                     "state": {"type": "string", "enum": [s.value for s in AttemptState]},
                     "reason": {"type": ["string", "null"]},
                     "position": {"type": "string"},
                     "position_seq": {"type": "integer"},
                     "position_expires_at": {"type": "number"},
                     "decided_at": {"type": ["number", "null"]}}},
                {"title": "unavailable", "type": "object", "required": ["retry_after"],
                 "properties": {"retry_after": {"type": "integer"}}},
            ]}},
    },
}


@router.get("/attempts/{attempt_id}/events", response_class=EventStream,
            summary="An attempt's state, pushed (SSE)",
            **documented(auth=ATTEMPT_OR_API_KEY, errors=(401, 403, 404),
                         media_type=EventStream.media_type, item_schema=_EVENT_SCHEMA))
async def attempt_events(request: Request, attempt_id: IdPath) -> Response:
    rt = runtime_of(request)
    await offload(rt, lambda: attempts.read(rt, attempt_id=attempt_id,
                                            caller=_caller(rt, request)))

    def read() -> Snapshot:
        with rt.read() as conn:
            row = attempt_store.load(conn, attempt_id)
        state = row.effective_state(rt.clock())
        return Snapshot(
            key=(state.value, row.position_seq),
            payload={"attempt_id": row.id, "state": state.value, "reason": row.reason,
                     "position": row.position, "position_seq": row.position_seq,
                     "position_expires_at": row.position_expires_at,
                     "decided_at": row.decided_at},
            terminal=state in TERMINAL_STATES, expires_at=row.expires_at)

    return state_events(rt, request, topic=attempt_id, read=read)


@router.get("/attempts/{attempt_id}/qr.png", response_class=PngImage,
            summary="The attempt's code for the relying party's page, as a PNG",
            **documented(auth=API_KEY, errors=(401, 404, 409, 410),
                         media_type=PngImage.media_type))
async def attempt_qr_png(request: Request, attempt_id: IdPath) -> Response:
    return await _qr(request, attempt_id, image_format="png")


@router.get("/attempts/{attempt_id}/qr.svg", response_class=SvgImage,
            summary="The attempt's code for the relying party's page, as an SVG",
            **documented(auth=API_KEY, errors=(401, 404, 409, 410),
                         media_type=SvgImage.media_type))
async def attempt_qr_svg(request: Request, attempt_id: IdPath) -> Response:
    return await _qr(request, attempt_id, image_format="svg")


async def _qr(request: Request, attempt_id: str, *, image_format: str) -> Response:
    rt = runtime_of(request)

    def run() -> Response:
        app = authenticate_app(rt, request.headers)
        code = attempts.join_code(rt, attempt_id=attempt_id, app=app)
        if code is None:
            raise Conflict("this attempt was started in the app: it has no code to show",
                           code="conflict")
        data, media_type = render(code, image_format=image_format)
        return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})

    return await offload(rt, run)


# --- cards -------------------------------------------------------------------------------


def _card_out(card: CardRecord) -> wire.CardOut:
    return wire.CardOut(serial=format_serial(card.serial), status=card.status,
                        created_at=card.created_at, expires_at=card.expires_at,
                        revoked_at=card.revoked_at, cells=card.layout.size,
                        used_cells=card.used_cells, near_exhaustion=card.near_exhaustion)


@router.post("/cards", status_code=201, response_class=PdfDocument,
             summary="Issue a user's grid card: the printable PDF (the old card is revoked)",
             description=(
                 "The PDF holds every cell in clear and is the only copy: the server keeps "
                 "keyed digests. Headers `Qrgate-Card-Serial` and `Qrgate-Card-Expires`."),
             **documented(auth=API_KEY, errors=(404, 409, 423),
                          media_type=PdfDocument.media_type, success=201))
async def issue_card(request: Request, body: wire.CardIn) -> Response:
    rt = runtime_of(request)

    def run() -> Response:
        app = authenticate_app(rt, request.headers)
        printed = app_cards.issue(rt, app=app, login=body.login, days=body.days)
        return Response(printed.pdf, status_code=201, media_type=PdfDocument.media_type,
                        headers={"Cache-Control": "no-store",
                                 "Qrgate-Card-Serial": format_serial(printed.serial),
                                 "Qrgate-Card-Expires": str(int(printed.expires_at))})

    return await offload(rt, run)


@router.get("/cards", response_model=wire.Cards, summary="A user's grid cards, newest first",
            **documented(auth=API_KEY, errors=(404,)))
async def list_cards(request: Request, login: LoginQuery = None) -> wire.Cards:
    rt = runtime_of(request)

    def run() -> wire.Cards:
        app = authenticate_app(rt, request.headers)
        return wire.Cards(items=[_card_out(card)
                                 for card in app_cards.list_for(rt, app=app, login=login)])

    return await offload(rt, run)


@router.post("/cards/{serial}/revoke", response_model=wire.CardOut,
             summary="Revoke a card at once (lost or stolen)",
             **documented(auth=API_KEY, errors=(404, 409)))
async def revoke_card(request: Request, serial: wire.SerialPath) -> wire.CardOut:
    rt = runtime_of(request)

    def run() -> wire.CardOut:
        app = authenticate_app(rt, request.headers)
        return _card_out(app_cards.revoke(rt, app=app, serial=serial))

    return await offload(rt, run)
