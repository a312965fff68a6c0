"""The OpenAPI document tells the truth: every operation lists each status it can answer,
every error is an ``application/problem+json`` document of one ``Problem`` schema whose
``code`` is one of :data:`qrgate.errors.ERROR_CODES`, and each operation names who may
call it (security schemes for the API key, the device signature headers and the browser
token).

Routes declare themselves with ``**documented(auth=..., errors=(...))``; the statuses every
operation can meet (a bad body, oversized headers, the database away) are added here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from qrgate.errors import ERROR_CODES
from qrgate.http.problems import PROBLEM_MEDIA_TYPE

# Who may call: each inner dict is one way to authenticate (all its schemes together).
Security = list[dict[str, list[str]]]
API_KEY: Final[Security] = [{"ApiKey": []}]
DEVICE: Final[Security] = [{"DeviceId": [], "DeviceTimestamp": [], "DeviceSignature": []}]
BROWSER: Final[Security] = [{"BrowserToken": []}, {"BrowserCookie": []}]
BROWSER_OR_API_KEY: Final[Security] = [*BROWSER, *API_KEY]
ATTEMPT: Final[Security] = [{"AttemptToken": []}]
ATTEMPT_OR_API_KEY: Final[Security] = [*ATTEMPT, *API_KEY]
PUBLIC: Final[Security] = []

SECURITY_SCHEMES: Final = {
    "ApiKey": {"type": "http", "scheme": "bearer",
               "description": "A relying party's API key: `Authorization: Bearer qgk_...`"},
    "DeviceId": {"type": "apiKey", "in": "header", "name": "Qrgate-Device",
                 "description": "The bound device's id (`new` when enrolling)"},
    "DeviceTimestamp": {"type": "apiKey", "in": "header", "name": "Qrgate-Timestamp",
                        "description": "Unix seconds when the request was signed"},
    "DeviceSignature": {
        "type": "apiKey", "in": "header", "name": "Qrgate-Signature",
        "description": "base64url raw r||s ES256 signature (low S) over "
                       "`QGDEV1\\nMETHOD\\nPATH[?QUERY]\\nTIMESTAMP\\nDEVICE_ID\\n"
                       "sha256hex(body)`"},
    "BrowserToken": {"type": "apiKey", "in": "header", "name": "Qrgate-Browser-Token",
                     "description": "The secret that binds a challenge to its browser"},
    "BrowserCookie": {"type": "apiKey", "in": "cookie", "name": "qrgate_browser",
                      "description": "The same secret, as the hosted page's HttpOnly cookie"},
    "AttemptToken": {"type": "apiKey", "in": "header", "name": "Qrgate-Attempt-Token",
                     "description": "A grid card attempt's answer token (scheme A), given to "
                                    "whoever started it or scanned its code"},
}

PROBLEM_SCHEMA: Final = {
    "title": "Problem",
    "description": "RFC 9457 problem document; branch on `code`.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": list(ERROR_CODES)},
        "errors": {
            "type": "array", "description": "For invalid_request: what was refused, where",
            "items": {"type": "object", "required": ["loc", "msg"],
                      "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                     "msg": {"type": "string"}}},
        },
    },
}

_DESCRIPTIONS: Final = {
    400: "Malformed input (e.g. a code that does not parse)",
    401: "Not authenticated, or a proof that does not verify",
    403: "Authenticated, but not allowed or a check failed",
    404: "No such resource (also for another organisation's ids)",
    409: "Conflicts with the current state (already used, already decided)",
    410: "Expired or replaced",
    413: "Request body too large",
    422: "The request does not match the schema",
    423: "Locked or frozen after failures",
    431: "Request headers too large",
    500: "Internal error",
    503: "The database cannot be reached; retry after `Retry-After` seconds",
}
# What every operation can meet, whatever it does.
_ALWAYS: Final = (413, 422, 431, 500, 503)
_BY_AUTH: Final = {
    "ApiKey": (401,),
    "DeviceId": (401, 423),
    "BrowserToken": (401, 403),
    "AttemptToken": (401, 403),
}


def _problem(status: int) -> dict[str, Any]:
    headers = {"Retry-After": {"schema": {"type": "integer"}}} if status == 503 else {}
    return {"description": _DESCRIPTIONS[status], "headers": headers,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def documented(*, auth: Security, errors: Sequence[int] = (), media_type: str | None = None,
               item_schema: dict[str, Any] | None = None, success: int = 200) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its security and its error responses;
    ``media_type`` for an answer that is not JSON (an image, an event stream, whose events
    carry ``item_schema``), answered with status ``success``."""
    statuses = set(errors) | set(_ALWAYS)
    for requirement in auth:
        for scheme in requirement:
            statuses |= set(_BY_AUTH.get(scheme, ()))
    responses: dict[int | str, Any] = {status: _problem(status) for status in sorted(statuses)}
    if media_type is not None:
        body = item_schema or {"type": "string", "format": "binary"}
        responses[success] = {"description": "OK" if success == 200 else "Created",
                              "content": {media_type: {"schema": body}}}
    return {"responses": responses, "openapi_extra": {"security": auth}}


def install(app: FastAPI) -> None:
    """Generate the document once, with the shared components added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 routes=app.routes, webhooks=app.webhooks.routes)
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            # FastAPI's validation schemas: never answered, since 422 is a Problem here.
            for unused in ("HTTPValidationError", "ValidationError"):
                components["schemas"].pop(unused, None)
            components["securitySchemes"] = SECURITY_SCHEMES
            for item in schema["paths"].values():
                for operation in item.values():
                    if "requestBody" in operation:
                        # A body that is not JSON text at all (not UTF-8, say) is malformed.
                        operation["responses"].setdefault("400", _problem(400))
            for item in schema.get("webhooks", {}).values():
                for operation in item.values():
                    # What the receiver answers: FastAPI's default 422 would name a schema
                    # that is removed above, and the receiver's errors are its own.
                    operation["responses"] = {"200": {
                        "description": "Received (any 2xx; anything else is retried)"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
