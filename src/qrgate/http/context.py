"""Request-scoped access to the process's ``Runtime`` and to the signed parts of a request."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from qrgate.http.auth import SignedRequest
from qrgate.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


async def signed_request(request: Request) -> SignedRequest:
    return SignedRequest(
        method=request.method,
        path=request.url.path,
        headers=request.headers,
        body=await request.body(),
    )
