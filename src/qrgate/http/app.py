"""``create_app(settings)``: the ASGI application. OpenAPI is served at ``/openapi.json``
(and browsable at ``/docs``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from qrgate import __version__
from qrgate.config import Settings
from qrgate.http import problems, routes_confirm, routes_devices, routes_txsign, routes_users
from qrgate.http.context import runtime_of
from qrgate.http.limits import BodyLimitMiddleware
from qrgate.runtime import Runtime, build_runtime
from qrgate.web import pages


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Pass ``runtime`` to share one (tests that drive time and randomness);
    otherwise the app builds its own at startup and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = build_runtime(settings) if owned else runtime
        assert rt is not None
        app.state.runtime = rt
        await rt.events.start()
        try:
            yield
        finally:
            await rt.events.close()
            if owned:
                rt.close()

    app = FastAPI(
        title="qrgate",
        version=__version__,
        summary="QR-code based authentication and payment verification",
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    if runtime is not None:
        app.state.runtime = runtime
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    problems.install(app)

    @app.get("/healthz", tags=["meta"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/keys", tags=["meta"], summary="The code-signing public keys (JWKS)")
    async def keys(request: Request) -> Mapping[str, object]:
        return runtime_of(request).keyring.verifier.to_jwks()

    app.include_router(routes_confirm.router)
    app.include_router(routes_devices.router)
    app.include_router(routes_users.router)
    app.include_router(routes_txsign.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    return app
