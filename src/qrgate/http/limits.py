"""Size limits enforced before any handler runs (pure ASGI middleware).

* Headers: at most ``max_header_bytes`` in all, else ``431 headers_too_large``. The HTTP
  parser uvicorn uses by default (httptools) sets no limit of its own.
* Body: at most ``max_body_bytes``, else ``413 payload_too_large``, whether the client
  declared a Content-Length or streamed a chunked body. The body is read up front (it is
  small by definition) and handed to the app from memory, so the app never sees a
  half-read body: FastAPI turns a failure while reading into a ``400``.

Our own rather than FastAPI's ``max_body_size``: every qrgate error is an RFC 9457 document.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qrgate.errors import ErrorCode
from qrgate.http.problems import PROBLEM_MEDIA_TYPE, problem_body


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        if sum(len(name) + len(value) for name, value in headers) > self.max_header_bytes:
            await _refuse(send, 431, "headers_too_large", "Request headers too large",
                          f"request headers exceed {self.max_header_bytes} bytes")
            return
        for name, value in headers:
            if name == b"content-length" and not _fits(value, self.max_body_bytes):
                await _refuse_body(send, self.max_body_bytes)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before sending its body: let the app see that.
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refuse_body(send, self.max_body_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _fits(declared: bytes, limit: int) -> bool:
    try:
        return 0 <= int(declared) <= limit
    except ValueError:
        return False


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """Hand out ``messages`` first, then the real channel (which reports a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _refuse_body(send: Send, limit: int) -> None:
    await _refuse(send, 413, "payload_too_large", "Payload too large",
                  f"request body exceeds {limit} bytes")


async def _refuse(send: Send, status: int, code: ErrorCode, title: str, detail: str) -> None:
    body = json.dumps(problem_body(status, code, title, detail)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()),
                            # The rest of the request was not read: don't reuse the stream.
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
