"""RFC 9457 problem documents for every error, with a stable ``code`` member.

No exception ever reaches a client as a traceback: unknown failures become a generic 500
whose details stay in the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from qrgate.errors import QrgateError

log = logging.getLogger("qrgate.http")
PROBLEM_TYPE_BASE = "https://qrgate.dev/problems/"
_STATUS_CODES = {
    404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status,
            "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(QrgateError)
    async def qrgate_error(request: Request, error: QrgateError) -> JSONResponse:
        return problem(error.status, error.code, error.title, error.detail)

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
        code = _STATUS_CODES.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail), str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "Internal error", "the server could not answer")
