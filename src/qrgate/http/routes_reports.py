"""A relying party passes on a user's "this wasn't me", and lifts the pause that follows.

The phone reports with its denial (``report`` on the decision); these routes serve what the
phone cannot see: a transaction of scheme E (its response is typed, never sent by the app),
or a call to the help desk.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Request
from sqlalchemy import Connection

from qrgate.accounts import directory, reports
from qrgate.confirm import repository as challenges
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import NotFound
from qrgate.http import schemas
from qrgate.http.auth import authenticate_app
from qrgate.http.context import offload, runtime_of
from qrgate.http.openapi import API_KEY, documented
from qrgate.http.routes_users import user_out
from qrgate.http.schemas import LoginPath
from qrgate.txsign import platform as transactions

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.post("/{login}/reports", status_code=201, response_model=schemas.ReportOut,
             summary="\"This wasn't me\": the user reports a request they did not start",
             **documented(auth=API_KEY, errors=(404,)))
async def create_report(
    request: Request, login: LoginPath,
    # An empty body is a report naming no request (a call to the help desk).
    body: schemas.ReportIn = Body(default_factory=schemas.ReportIn),  # noqa: B008
) -> schemas.ReportOut:
    """Ends the user's open challenges and transactions and pauses new ones for
    ``QRGATE_REPORT_BLOCK_SECONDS``; every application of the organisation gets
    ``report.created``. A named challenge or transaction must be the user's."""
    rt = runtime_of(request)

    def run() -> schemas.ReportOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="user.report", org_id=app.org_id, app_id=app.id,
                               challenge_id=body.challenge_id)

        def work(conn: Connection) -> tuple[reports.Report, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            scheme = "txsign" if body.transaction_id is not None else "confirm"
            _ensure_users(conn, user=user, body=body)
            filed = reports.file_report(rt, conn, user=user, scheme=scheme, now=now,
                                        challenge_id=body.challenge_id,
                                        transaction_id=body.transaction_id)
            subject.detail["report_id"] = filed.id
            return filed, "reported_by_relying_party"

        filed = run_decision(rt, subject=subject, now=now, work=work)
        return schemas.ReportOut(
            report_id=filed.id, login=filed.login, scheme=filed.scheme,
            challenge_id=filed.challenge_id, transaction_id=filed.transaction_id,
            created_at=filed.created_at, blocked_until=filed.blocked_until)

    return await offload(rt, run)


@router.delete("/{login}/block", response_model=schemas.UserOut,
               summary="Lift the pause a \"this wasn't me\" report put on new challenges",
               **documented(auth=API_KEY, errors=(404,)))
async def lift_block(request: Request, login: LoginPath) -> schemas.UserOut:
    rt = runtime_of(request)

    def run() -> schemas.UserOut:
        app = authenticate_app(rt, request.headers)
        now = rt.clock()
        subject = AuditSubject(event="user.unblock", org_id=app.org_id, app_id=app.id)

        def work(conn: Connection) -> tuple[directory.UserRecord, str]:
            user = directory.find_user(conn, org_id=app.org_id, login=login)
            subject.user_id = user.id
            reports.unblock(conn, user_id=user.id)
            return directory.get_user(conn, user.id), "unblocked"

        return user_out(run_decision(rt, subject=subject, now=now, work=work))

    return await offload(rt, run)


def _ensure_users(conn: Connection, *, user: directory.UserRecord,
                  body: schemas.ReportIn) -> None:
    """Another user's challenge or transaction is answered as an unknown one."""
    if body.challenge_id is not None:
        challenge = challenges.find(conn, body.challenge_id)
        if challenge is None or challenge.user_id != user.id:
            raise NotFound("no such challenge", code="challenge_not_found")
    if body.transaction_id is not None:
        transaction = transactions.find(conn, body.transaction_id)
        if transaction is None or transaction.user_id != user.id:
            raise NotFound("no such transaction", code="transaction_not_found")
