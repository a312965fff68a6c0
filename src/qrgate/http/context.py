"""Request-scoped access to the process's ``Runtime`` and to the signed parts of a request."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from qrgate.core.device_auth import request_target
from qrgate.http.auth import SignedRequest
from qrgate.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


async def signed_request(request: Request) -> SignedRequest:
    return SignedRequest(
        method=request.method,
        path=request_target(request.url.path, request.url.query),
        headers=request.headers,
        body=await request.body(),
    )


P = ParamSpec("P")
T = TypeVar("T")


async def offload(rt: Runtime, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a request's blocking work (database, crypto): inline for SQLite, else in the
    thread pool (see ``Runtime.inline_db``)."""
    if rt.inline_db:
        result = func(*args, **kwargs)
    else:
        result = await run_in_threadpool(func, *args, **kwargs)
    rt.db_health.answered()
    return result
