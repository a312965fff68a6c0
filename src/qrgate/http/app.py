"""``create_app(settings)``: the ASGI application. OpenAPI is served at ``/openapi.json``
(and browsable at ``/docs`` and ``/redoc``, served from the package)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from sqlalchemy import text

from qrgate import __version__
from qrgate.audit_checkpointer import AuditCheckpointer
from qrgate.config import Settings
from qrgate.http import (
    openapi,
    problems,
    routes_app_lock,
    routes_confirm,
    routes_devices,
    routes_gridcard,
    routes_reports,
    routes_txsign,
    routes_users,
    routes_webhooks,
)
from qrgate.http.access_log import AccessLog
from qrgate.http.auth import record_pending_refusals
from qrgate.http.context import offload, runtime_of
from qrgate.http.limits import RequestLimits
from qrgate.http.openapi import PUBLIC, documented
from qrgate.key_refresher import KeyRefresher
from qrgate.runtime import Runtime, build_runtime, warn_if_kek_beside_database
from qrgate.storage.db import DATABASE_ERRORS, is_unavailable
from qrgate.web import about, pages, phone_app
from qrgate.webhooks.worker import WebhookWorker

log = logging.getLogger("qrgate.http")


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Pass ``runtime`` to share one (tests that drive time and randomness);
    otherwise the app builds its own at startup and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        if owned:
            warn_if_kek_beside_database(settings)
        rt = build_runtime(settings) if owned else runtime
        assert rt is not None
        app.state.runtime = rt
        await rt.events.start()
        checkpointer = AuditCheckpointer(rt)
        checkpointer.start()
        refresher = KeyRefresher(rt.keys, events=rt.events,
                                 interval=rt.settings.key_refresh_seconds)
        refresher.start()
        webhooks = WebhookWorker(rt)
        webhooks.start()
        try:
            yield
        finally:
            await webhooks.close()
            await refresher.close()
            await checkpointer.close()
            await offload(rt, _record_refusals, rt)
            await rt.events.close()
            if owned:
                rt.close()

    app = FastAPI(
        title="qrgate",
        version=__version__,
        summary="QR-code based authentication and payment verification",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN; qrgate.web.about serves
        # pinned copies from this origin instead.
        docs_url=None,
        redoc_url=None,
        # Operation ids are the handlers' names (start_challenge, scan, respond...): what a
        # generated client calls its functions.
        generate_unique_id_function=lambda route: route.name,
    )
    if runtime is not None:
        app.state.runtime = runtime
    # Added innermost first: the access log wraps the error boundary, so it records the
    # status of every answer, the 500s and 503s the boundary makes included.
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes,
                       max_header_bytes=settings.max_header_bytes)
    app.add_middleware(problems.ErrorBoundary)
    if settings.access_log:
        app.add_middleware(AccessLog)
    problems.install(app)
    openapi.install(app)

    @app.get("/healthz", tags=["meta"], summary="Liveness: the process answers",
             **documented(auth=PUBLIC))
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["meta"],
             summary="Readiness: the database answers (503 database_unavailable if not)",
             **documented(auth=PUBLIC))
    async def ready(request: Request) -> dict[str, str]:
        rt = runtime_of(request)
        await offload(rt, _ping, rt)
        return {"status": "ready"}

    @app.get("/v1/keys", tags=["meta"], summary="The code-signing public keys (JWKS)",
             **documented(auth=PUBLIC))
    async def keys(request: Request) -> Mapping[str, object]:
        return runtime_of(request).keyring.verifier.to_jwks()

    for routes in (routes_confirm, routes_devices, routes_app_lock, routes_users, routes_reports,
                   routes_txsign, routes_gridcard, routes_webhooks):
        app.include_router(routes.router)
    routes_webhooks.document_events(app)
    app.include_router(pages.router)
    app.include_router(phone_app.build_router())
    app.include_router(about.router)
    pages.mount_static(app)
    return app


def _ping(rt: Runtime) -> None:
    with rt.read() as conn:
        conn.execute(text("SELECT 1"))


def _record_refusals(rt: Runtime) -> None:
    try:
        record_pending_refusals(rt)
    except DATABASE_ERRORS as error:
        # Stopping must not fail for want of a database; the counts are only lost.
        if not is_unavailable(error):
            raise
        log.warning("refused device requests not audited: the database is unavailable")
