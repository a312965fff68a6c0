"""RFC 9457 problem documents for every error, with a stable ``code`` member.

qrgate's own errors map to their status and code; request validation to ``422
invalid_request``; routing errors keep their status (``405`` keeps its ``Allow`` header).
Everything else is caught by :class:`ErrorBoundary`, the outermost layer of the app:

* an unreachable database answers ``503 database_unavailable`` with ``Retry-After``, and the
  outage is logged once (:class:`qrgate.runtime.DatabaseHealth`), not once per request;
* any other failure answers ``500 internal_error`` and is logged as one line naming the
  exception type and where it happened, never its message: a driver's message can carry
  SQL parameters or row values (a password hash, a code nonce);
* the exception stops here. Starlette's own last handler re-raises after answering, so the
  server logs a full traceback and drops the keep-alive connection; we never get there.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qrgate.errors import DatabaseUnavailable, ErrorCode, QrgateError
from qrgate.storage.db import is_unavailable

log = logging.getLogger("qrgate.http")
PROBLEM_TYPE_BASE = "https://qrgate.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Seconds a client should wait before retrying while the database is away.
RETRY_AFTER = 2
_STATUS_CODES: dict[int, ErrorCode] = {
    404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
}


def problem_body(status: int, code: ErrorCode, title: str, detail: str,
                 **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status,
            "detail": detail, "code": code, **extra}


def problem(status: int, code: ErrorCode, title: str, detail: str,
            headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, code, title, detail, **extra), status_code=status,
                        media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def error_response(error: QrgateError) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER)} if error.status == 503 else None
    return problem(error.status, error.code, error.title, error.detail, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(QrgateError)
    async def qrgate_error(request: Request, error: QrgateError) -> JSONResponse:
        if error.status >= 500:
            # The server's own fault (a KEK that opens nothing, say): operators must see it.
            log.error("%s on %s %s", error.code, request.method, request.url.path)
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Only locations and messages: echoing the input could reflect a secret into logs.
        fields = [
            {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
            for item in error.errors()
        ]
        return problem(422, "invalid_request", "Invalid request",
                       "the request does not match the schema", errors=fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(error.status_code, "invalid_request")
        headers = dict(error.headers or {})
        if error.status_code == 405 and (allowed := _allowed(request)):
            headers["Allow"] = allowed
        return problem(error.status_code, code, str(error.detail), str(error.detail),
                       headers=headers)


def _allowed(request: Request) -> str:
    """Every method the API serves at this path, from its OpenAPI document (GET implies
    HEAD). Starlette's own ``Allow`` names only the first route that matched the path, not
    its siblings (GET and POST on one path). Empty for paths outside the document."""
    templates: list[tuple[re.Pattern[str], str]] | None = getattr(
        request.app.state, "allow_by_path", None)
    if templates is None:
        templates = []
        for path, item in request.app.openapi()["paths"].items():
            methods = {method.upper() for method in item} | (
                {"HEAD"} if "get" in item else set())
            pattern = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
            templates.append((re.compile(re.sub(r"{[^}/]+}", "[^/]+", pattern)),
                              ", ".join(sorted(methods))))
        request.app.state.allow_by_path = templates
    path = request.url.path
    return next((methods for pattern, methods in templates if pattern.fullmatch(path)), "")


class ErrorBoundary:
    """Turns every exception that escaped the handlers into a problem document."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        # The last layer: whatever escaped every handler stops here (see module docs).
        except Exception as error:
            response = _answer(scope, error)
            if started:
                # Too late for a status: end the body cleanly so the client sees a closed
                # response (an SSE client then reconnects), not a connection reset.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await response(scope, receive, send)


def _answer(scope: Scope, error: Exception) -> JSONResponse:
    if is_unavailable(error):
        # Set by the app's lifespan; absent only if the database failed before it ran.
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is not None:
            runtime.db_health.failed(error)
        return error_response(DatabaseUnavailable("the database cannot be reached; retry"))
    log.error("unhandled %s on %s %s (%s)", type(error).__name__, scope.get("method"),
              scope.get("path"), where(error))
    return problem(500, "internal_error", "Internal error", "the server could not answer")


def where(error: BaseException, *, frames: int = 4) -> str:
    """The innermost frames of ``error``'s traceback as ``file:line in function``: enough
    to find the fault, with no message or variable that could hold a secret."""
    summary = traceback.extract_tb(error.__traceback__)[-frames:]
    return " < ".join(f"{'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno} "
                      f"in {frame.name}" for frame in reversed(summary))
