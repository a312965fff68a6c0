"""Scheme E over HTTP (``/v1/txsign``): tokens, transactions, chain codes and their
verification. Relying parties (the transaction platform) authenticate with API keys; token
activation is proven by the OCRA response itself (counted like every proof); verification
and link texts are public (anyone holding a chain code may check it)."""

from __future__ import annotations

import os
from typing import Literal

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.confirm.qr_server import render
from qrgate.core.txsign import Link, TransactionText, issue_challenge_code, text_digest
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import NotFound, QrgateError, Rejected
from qrgate.http import enrolled_cookie
from qrgate.http import schemas_txsign as wire
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.http.media import PngImage, SvgImage
from qrgate.http.openapi import API_KEY, PUBLIC, documented
from qrgate.http.schemas import IdPath
from qrgate.qrimage import render_svg
from qrgate.runtime import Runtime
from qrgate.txsign import platform, tokens

router = APIRouter(prefix="/v1/txsign", tags=["txsign"])
TOKEN_ENROL_TTL = 600


def link_out(link: Link, text: TransactionText) -> wire.LinkOut:
    return wire.LinkOut(
        transaction_id=link.transaction_id.hex(), account=text.account,
        platform=text.platform, demand=text.demand, comment=text.comment,
        response=link.response, verified_at=link.verified_at,
        text_digest=link.text_digest.hex(), text_in_qr=link.text is not None,
    )


def transaction_out(row: platform.TxRow, *, now: float) -> wire.TransactionOut:
    return wire.TransactionOut(
        transaction_id=row.id, state=row.effective_state(now), reason=row.reason,
        account=row.text.account, platform=row.text.platform, demand=row.text.demand,
        comment=row.text.comment, created_at=row.created_at, expires_at=row.expires_at,
        parent_id=row.parent_id, verified_at=row.verified_at, chain_code=row.chain_code,
    )


@router.post("/tokens", status_code=201, response_model=wire.TokenEnrolment,
             summary="Enrol a user's OCRA token: the code carries its secret once",
             **documented(auth=API_KEY, errors=(404, 409, 423)))
async def create_token(request: Request, body: wire.TokenIn) -> wire.TokenEnrolment:
    rt = runtime_of(request)

    def run() -> wire.TokenEnrolment:
        app = authenticate_app(rt, request.headers)
        return enrol_token(rt, app=app, login=body.login, suite=body.suite)

    return await offload(rt, run)


def enrol_token(rt: Runtime, *, app: directory.AppRecord, login: str,
                suite: str | None) -> wire.TokenEnrolment:
    """Shared by the API and ``qrgate txsign token enrol``."""
    now = rt.clock()
    subject = AuditSubject(event="txsign.token_enrol", scheme="txsign", org_id=app.org_id,
                           app_id=app.id)

    def work(conn: Connection) -> tuple[tuple[tokens.TokenRecord, str], str]:
        user = directory.find_user(conn, org_id=app.org_id, login=login)
        subject.user_id = user.id
        created = tokens.create_token(
            conn, box=rt.box, keyring=rt.keyring, user=user,
            suite=suite or tokens.DEFAULT_SUITE, issuer=rt.settings.issuer,
            server_url=rt.settings.public_url, now=now, ttl=TOKEN_ENROL_TTL,
            random=os.urandom(tokens.SECRET_BYTES),
        )
        subject.detail["token_id"] = created[0].id
        return created, "created"

    token, code = run_decision(rt, subject=subject, now=now, work=work)
    return wire.TokenEnrolment(token_id=token.id, suite=token.suite, code=code,
                               qr_svg=render_svg(code, ecc="M"),
                               expires_at=token.enrol_expires_at)


@router.post("/tokens/{token_id}/activate", response_model=wire.TokenOut,
             summary="The phone proves it holds the secret; the enrolment code dies",
             **documented(auth=PUBLIC, errors=(401, 404, 409, 410, 423)))
async def activate_token(request: Request, response: Response, token_id: IdPath,
                         body: wire.TokenActivateIn) -> wire.TokenOut:
    rt = runtime_of(request)

    def run() -> wire.TokenOut:
        now = rt.clock()
        subject = AuditSubject(event="txsign.token_activate", scheme="txsign",
                               detail={"token_id": token_id})

        def work(conn: Connection) -> tuple[tokens.TokenRecord, str]:
            token = tokens.activate(conn, box=rt.box, digests=rt.digests, token_id=token_id,
                                    response=body.response, client_id=body.client_id, now=now)
            subject.org_id, subject.user_id = token.org_id, token.user_id
            return token, "activated"

        token = run_decision(
            rt, subject=subject, now=now, work=work,
            on_failure=lambda conn, error: _count_token_failure(rt, conn, token_id, error, now),
            repeat_of=lambda conn: tokens.activation_repeat(
                conn, box=rt.box, digests=rt.digests, token_id=token_id,
                response=body.response, client_id=body.client_id))
        return wire.TokenOut(token_id=token.id, suite=token.suite, status=token.status)

    activated = await offload(rt, run)
    enrolled_cookie.remember(request, response, cookie=enrolled_cookie.TOKENS,
                             item_id=activated.token_id)
    return activated


def _count_token_failure(rt: Runtime, conn: Connection, token_id: str,
                         error: QrgateError, now: float) -> None:
    """A wrong activation answer or resync counts like a wrong response to a transaction."""
    if error.code in ("wrong_response", "resync_failed"):
        platform.count_token_failure(rt, conn, token_id=token_id, now=now)


@router.post("/tokens/{token_id}/resync", response_model=wire.TokenOut,
             summary="Bring a drifted counter token back: two consecutive responses",
             **documented(auth=API_KEY, errors=(403, 404, 409, 423)))
async def resync_token(request: Request, token_id: IdPath, body: wire.ResyncIn) -> wire.TokenOut:
    rt = runtime_of(request)

    def run() -> wire.TokenOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="txsign.token_resync", scheme="txsign",
                               org_id=app.org_id, detail={"token_id": token_id})

        def owned(conn: Connection) -> tokens.TokenRecord:
            token = tokens.find_token(conn, token_id)
            if token is None or token.org_id != app.org_id:
                raise NotFound("no such token", code="token_not_found")
            return token

        def repeat_of(conn: Connection) -> tokens.TokenRecord | None:
            token = tokens.find_token(conn, token_id)
            if token is None or token.org_id != app.org_id:
                return None
            repeated = tokens.resync_repeat(conn, box=rt.box, token=token,
                                            questions=body.questions, responses=body.responses)
            return token if repeated else None

        def work(conn: Connection) -> tuple[tokens.TokenRecord, str]:
            token = owned(conn)
            subject.user_id = token.user_id
            return tokens.resync(conn, box=rt.box, token=token, questions=body.questions,
                                 responses=body.responses), "resynced"

        token = run_decision(
            rt, subject=subject, now=now, work=work, repeat_of=repeat_of,
            on_failure=lambda conn, error: _count_token_failure(rt, conn, token_id, error, now))
        return wire.TokenOut(token_id=token.id, suite=token.suite, status=token.status)

    return await offload(rt, run)


@router.post("/transactions", status_code=201, response_model=wire.TransactionStarted,
             summary="S1 (or S8 with a parent chain code): a transaction to sign",
             **documented(auth=API_KEY, errors=(400, 401, 403, 404, 410, 422, 423)))
async def start(request: Request, body: wire.TransactionIn) -> wire.TransactionStarted:
    rt = runtime_of(request)

    def run() -> wire.TransactionStarted:
        app = authenticate_app(rt, request.headers)
        started = platform.start(rt, app=app, request=platform.TransactionRequest(
            account=body.account, platform=body.platform, demand=body.demand,
            comment=body.comment, parent_code=body.parent_code))
        parent_links = []
        if started.parent is not None:
            texts = platform.link_texts(rt, started.parent)
            parent_links = [link_out(link, text) for link, text
                            in zip(started.parent.links, texts, strict=True)]
        return wire.TransactionStarted(
            **transaction_out(started.transaction, now=rt.clock()).model_dump(),
            question=started.question, suite=started.suite,
            challenge_code=started.challenge_code, parent_links=parent_links,
        )

    return await offload(rt, run)


@router.get("/transactions/{transaction_id}", response_model=wire.TransactionOut,
            summary="A transaction and, once signed, its chain code",
            **documented(auth=API_KEY, errors=(404,)))
async def get_transaction(request: Request, transaction_id: IdPath) -> wire.TransactionOut:
    rt = runtime_of(request)

    def run() -> wire.TransactionOut:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            row = platform.load_owned(conn, app=app, transaction_id=transaction_id)
        return transaction_out(row, now=rt.clock())

    return await offload(rt, run)


@router.post("/transactions/{transaction_id}/response", response_model=wire.TransactionOut,
             summary="S3-S5: the token's response; on success the chain code is issued",
             **documented(auth=API_KEY, errors=(403, 404, 409, 410, 423)))
async def respond(request: Request, transaction_id: IdPath,
                  body: wire.RespondIn) -> wire.TransactionOut:
    rt = runtime_of(request)

    def run() -> wire.TransactionOut:
        app = authenticate_app(rt, request.headers)
        row = platform.respond(rt, app=app, transaction_id=transaction_id,
                               response=body.response, token_id=body.token_id)
        return transaction_out(row, now=rt.clock())

    return await offload(rt, run)


ImageKind = Literal["challenge", "chain"]


def _image_route(kind: ImageKind, image_format: Literal["png", "svg"]) -> None:
    media = PngImage if image_format == "png" else SvgImage
    what = "challenge code (for the token)" if kind == "challenge" else "signed chain code"

    @router.get(f"/transactions/{{transaction_id}}/{kind}.{image_format}", response_class=media,
                summary=f"The {what} as a {image_format.upper()} image",
                name=f"{kind}_{image_format}",
                **documented(auth=API_KEY, errors=(403, 404, 423), media_type=media.media_type))
    async def image(request: Request, transaction_id: IdPath) -> Response:
        rt = runtime_of(request)
        data = await offload(rt, _image, rt, request, transaction_id, kind, image_format)
        return Response(data, media_type=media.media_type,
                         headers={"Cache-Control": "no-store"})


def _image(rt: Runtime, request: Request, transaction_id: str, kind: ImageKind,
           image_format: str) -> bytes:
    app = authenticate_app(rt, request.headers)
    with rt.read() as conn:
        row = platform.load_owned(conn, app=app, transaction_id=transaction_id)
        suite = tokens.active_token(conn, user_id=row.user_id).suite if (
            kind == "challenge") else ""
    if kind == "chain":
        if row.chain_code is None:
            raise Rejected("the transaction is not signed yet", code="not_signed")
        code = row.chain_code
    else:
        if row.effective_state(rt.clock()) != "pending":
            raise Rejected("the transaction is no longer waiting", code="not_pending")
        # Deterministic ES256: re-issuing gives the code the start response carried.
        code = issue_challenge_code(
            transaction=row.transaction, suite=suite, issuer=rt.settings.issuer,
            now=row.issued_at, expires_at=int(row.expires_at), keyring=rt.keyring)
    return render(code, image_format=image_format)[0]


for _kind in ("challenge", "chain"):
    for _format in ("png", "svg"):
        _image_route(_kind, _format)


@router.get("/transactions/{transaction_id}/text", response_model=wire.TextOut,
            summary="A link's text, for chain codes too long to carry it (checked by digest)",
            **documented(auth=PUBLIC, errors=(404,)))
async def text(request: Request, transaction_id: IdPath) -> wire.TextOut:
    rt = runtime_of(request)

    def run() -> wire.TextOut:
        with rt.read() as conn:
            row = platform.load(conn, transaction_id)
        if row.state != "signed":
            # Only signed links are referenced by chain codes.
            raise NotFound("no such transaction", code="transaction_not_found")
        return wire.TextOut(account=row.text.account, platform=row.text.platform,
                            demand=row.text.demand, comment=row.text.comment,
                            text_digest=text_digest(row.text).hex())

    return await offload(rt, run)


@router.post("/verify", response_model=wire.ChainOut,
             summary="Verify a chain code: signature, links, and texts against digests",
             **documented(auth=PUBLIC, errors=(400, 401, 403, 404, 410, 422)))
async def verify(request: Request, body: wire.VerifyIn) -> wire.ChainOut:
    rt = runtime_of(request)

    def run() -> wire.ChainOut:
        chain, texts = platform.verify_chain_code(rt, code=body.code)
        return wire.ChainOut(valid=True, issuer=chain.issuer, issued_at=chain.issued_at,
                             links=[link_out(link, text) for link, text
                                    in zip(chain.links, texts, strict=True)])

    return await offload(rt, run)
