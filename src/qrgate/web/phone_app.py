"""The phone web app (a PWA) at ``/app/``, on the API's origin.

The files are read once at start (qrgate.web.app_shell) and served from memory, each with
an ETag: every answer says ``no-cache``, so the browser revalidates each time (a 304 when
nothing changed). The paths carry no version, so a longer lifetime would let a phone mix
the new ``index.html`` with modules of the old version after an update.

A path is looked up in the list of files read at start, never joined onto a directory, so
``..``, encoded or not, finds nothing; neither does a directory, nor a file that is not for
browsers (qrgate.web.app_shell.is_served).

The app decodes QR codes from the camera with WebAssembly, so its policy is the strict one
of qrgate's pages (qrgate.web.pages) with what that needs and nothing more:
``'wasm-unsafe-eval'`` (compiling WebAssembly, not JavaScript ``eval``), ``blob:``/``data:``
images (snapshots of the camera), workers and the manifest from this origin, and the
camera for this origin only. A ``<video>`` showing the camera through ``srcObject`` loads
no URL, so ``media-src`` stays ``'none'``.
"""

from __future__ import annotations

import functools
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from qrgate.errors import NotFound
from qrgate.web.app_shell import APP_DIR, INDEX, AppShell, load_shell
from qrgate.web.pages import PAGE_HEADERS, VENDOR_DIR

APP_CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
APP_PERMISSIONS_POLICY: Final = "camera=(self), microphone=(), geolocation=(), payment=()"
APP_HEADERS: Final = {
    **PAGE_HEADERS,
    "Content-Security-Policy": APP_CONTENT_SECURITY_POLICY,
    "Permissions-Policy": APP_PERMISSIONS_POLICY,
    "Cache-Control": "no-cache",
}


@functools.cache
def package_shell() -> AppShell:
    """The package's own app, read once per process: every app a process builds (tests
    build hundreds) serves the same files, and reading and hashing them takes 40 ms."""
    return load_shell(APP_DIR, VENDOR_DIR)


def build_router(shell: AppShell | None = None) -> APIRouter:
    """The routes of ``/app`` and ``/app/...``, serving ``shell`` (by default the package's
    app, :func:`package_shell`)."""
    served = shell if shell is not None else package_shell()
    router = APIRouter(include_in_schema=False)

    @router.get("/app")
    async def app_without_slash() -> RedirectResponse:
        # Relative, so that it also lands right under a reverse proxy's path prefix; the
        # app's own relative URLs need the slash.
        return RedirectResponse("app/", status_code=308)

    @router.get("/app/{path:path}")
    async def app_file(request: Request, path: str) -> Response:
        file = served.files.get(path or INDEX)
        if file is None:
            raise NotFound("no such file in the phone app")
        headers = {**APP_HEADERS, "ETag": file.etag}
        validators = _etags(request.headers.get("if-none-match", ""))
        if file.etag in validators or "*" in validators:
            return Response(status_code=304, headers=headers)
        return Response(file.body, media_type=file.media_type, headers=headers)

    return router


def _etags(header: str) -> set[str]:
    # Weak validators match too for GET (RFC 9110, 13.1.2).
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
