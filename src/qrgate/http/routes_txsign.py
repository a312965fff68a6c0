"""Scheme E over HTTP (``/v1/txsign``): tokens, transactions, chain codes and their
verification. Relying parties (the transaction platform) authenticate with API keys; token
activation is proven by the OCRA response itself; verification and link texts are public
(anyone holding a chain code may check it)."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.confirm.qr_server import render
from qrgate.core.txsign import Link, TransactionText, issue_challenge_code, text_digest
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import NotFound, Rejected
from qrgate.http import schemas_txsign as wire
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.qrimage import render_svg
from qrgate.runtime import Runtime
from qrgate.txsign import platform, tokens

router = APIRouter(prefix="/v1/txsign", tags=["txsign"])
Id = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
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
             summary="Enrol a user's OCRA token: the code carries its secret once")
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
             summary="The phone proves it holds the secret; the enrolment code dies")
async def activate_token(request: Request, token_id: Id,
                         body: wire.TokenActivateIn) -> wire.TokenOut:
    rt = runtime_of(request)

    def run() -> wire.TokenOut:
        now = rt.clock()
        subject = AuditSubject(event="txsign.token_activate", scheme="txsign",
                               detail={"token_id": token_id})

        def work(conn: Connection) -> tuple[tokens.TokenRecord, str]:
            token = tokens.activate(conn, box=rt.box, token_id=token_id,
                                    response=body.response, now=now)
            subject.org_id, subject.user_id = token.org_id, token.user_id
            return token, "activated"

        token = run_decision(rt, subject=subject, now=now, work=work)
        return wire.TokenOut(token_id=token.id, suite=token.suite, status=token.status)

    return await offload(rt, run)


@router.post("/tokens/{token_id}/resync", response_model=wire.TokenOut,
             summary="Bring a drifted counter token back: two consecutive responses")
async def resync_token(request: Request, token_id: Id, body: wire.ResyncIn) -> wire.TokenOut:
    rt = runtime_of(request)

    def run() -> wire.TokenOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="txsign.token_resync", scheme="txsign",
                               org_id=app.org_id, detail={"token_id": token_id})

        def work(conn: Connection) -> tuple[tokens.TokenRecord, str]:
            token = tokens.get_token(conn, token_id)
            if token.org_id != app.org_id:
                raise NotFound("no such token", code="token_not_found")
            subject.user_id = token.user_id
            return tokens.resync(conn, box=rt.box, token=token, questions=body.questions,
                                 responses=body.responses), "resynced"

        token = run_decision(rt, subject=subject, now=now, work=work)
        return wire.TokenOut(token_id=token.id, suite=token.suite, status=token.status)

    return await offload(rt, run)


@router.post("/transactions", status_code=201, response_model=wire.TransactionStarted,
             summary="S1 (or S8 with a parent chain code): a transaction to sign")
async def start(request: Request, body: wire.TransactionIn) -> wire.TransactionStarted:
    rt = runtime_of(request)

    def run() -> wire.TransactionStarted:
        app = authenticate_app(rt, request.headers)
        text = TransactionText(account=body.account, platform=body.platform,
                               demand=body.demand, comment=body.comment)
        started = platform.start(rt, app=app, text=text, parent_code=body.parent_code)
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


@router.get("/transactions/{transaction_id}", response_model=wire.TransactionOut)
async def get_transaction(request: Request, transaction_id: Id) -> wire.TransactionOut:
    rt = runtime_of(request)

    def run() -> wire.TransactionOut:
        app = authenticate_app(rt, request.headers)
        with rt.read() as conn:
            row = platform.load_owned(conn, app=app, transaction_id=transaction_id)
        return transaction_out(row, now=rt.clock())

    return await offload(rt, run)


@router.post("/transactions/{transaction_id}/response", response_model=wire.TransactionOut,
             summary="S3-S5: the token's response; on success the chain code is issued")
async def respond(request: Request, transaction_id: Id,
                  body: wire.RespondIn) -> wire.TransactionOut:
    rt = runtime_of(request)

    def run() -> wire.TransactionOut:
        app = authenticate_app(rt, request.headers)
        row = platform.respond(rt, app=app, transaction_id=transaction_id,
                               response=body.response, token_id=body.token_id)
        return transaction_out(row, now=rt.clock())

    return await offload(rt, run)


@router.get("/transactions/{transaction_id}/{kind}.{image_format}",
            summary="The challenge or chain code as an image (png or svg)",
            responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
async def image(request: Request, transaction_id: Id, kind: str,
                image_format: str) -> Response:
    rt = runtime_of(request)
    if kind not in ("challenge", "chain") or image_format not in ("png", "svg"):
        raise NotFound("unknown image", code="not_found")

    def run() -> Response:
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
        data, media_type = render(code, image_format=image_format)
        return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})

    return await offload(rt, run)


@router.get("/transactions/{transaction_id}/text", response_model=wire.TextOut,
            summary="A link's text, for chain codes too long to carry it (checked by digest)")
async def text(request: Request, transaction_id: Id) -> wire.TextOut:
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
             summary="Verify a chain code: signature, links, and texts against digests")
async def verify(request: Request, body: wire.VerifyIn) -> wire.ChainOut:
    rt = runtime_of(request)

    def run() -> wire.ChainOut:
        chain, texts = platform.verify_chain_code(rt, code=body.code)
        return wire.ChainOut(valid=True, issuer=chain.issuer, issued_at=chain.issued_at,
                             links=[link_out(link, text) for link, text
                                    in zip(chain.links, texts, strict=True)])

    return await offload(rt, run)
