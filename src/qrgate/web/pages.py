"""Pages that qrgate hosts for people: the waiting page of scheme C (``/confirm/{id}``).

The page is a static shell; its script (``static/confirm/``) does the work in the
browser. It learns the browser-binding secret from the URL fragment, which never reaches a
server or a log, trades it for an HttpOnly cookie and from then on uses only the cookie.

A QR login page is what a QRLJacking or clickjacking attacker wants to frame, copy or
script, so every page goes out with a strict policy: no inline script or style, nothing
from another origin, no framing, no referrer, no caching.
"""

from __future__ import annotations

import functools
import html
import os
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from qrgate.errors import NotFound
from qrgate.http.context import runtime_of
from qrgate.qrimage import render_svg
from qrgate.web.media_types import media_type_of

STATIC_DIR: Final = Path(__file__).parent / "static"
# Pinned third-party files (Swagger UI, ReDoc), rebuilt by scripts/vendor-web.sh.
VENDOR_DIR: Final = Path(__file__).parent / "vendor"
_CHALLENGE_ID: Final = re.compile(r"[0-9a-f]{32}")

CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # frame-ancestors covers current browsers; X-Frame-Options covers the ones before it.
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # A window opened by another site must not keep a handle on this one.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

router = APIRouter(include_in_schema=False)

# Paths are relative ("../static/...") so the page also works when qrgate is published
# under a path prefix by a reverse proxy. The English texts are the page's own until the
# script has loaded a catalog (static/i18n/confirm.<lang>.json) and put its texts in:
# data-i18n names an element's text, data-i18n-alt and data-i18n-aria-label its attributes.
_CONFIRM_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title data-i18n="page.title">Confirm on your phone · qrgate</title>
<link rel="stylesheet" href="../static/base.css">
<link rel="stylesheet" href="../static/confirm.css">
<script type="module" src="../static/confirm/main.js"></script>
</head>
<body>
<main id="qg" class="card" data-challenge-id="{challenge_id}" data-code-ttl="{code_ttl}"
      aria-labelledby="qg-title">
  <!-- Each language is named in itself: whoever cannot read the page's current language
       must still find their own. -->
  <select id="qg-lang" class="lang" aria-label="Language" data-i18n-aria-label="lang.label">
    <option value="en" lang="en">English</option>
    <option value="zh-CN" lang="zh-CN">简体中文</option>
  </select>
  <h1 id="qg-title" data-i18n="page.heading">Confirm on your phone</h1>
  <section id="qg-scene" class="scene" aria-labelledby="qg-scene-title" hidden>
    <h2 id="qg-scene-title" class="visually-hidden" data-i18n="scene.heading">What you are
      confirming</h2>
    <p id="qg-operation" class="operation"></p>
    <p id="qg-amount" class="amount" hidden></p>
    <p id="qg-content" class="content" hidden></p>
    <p id="qg-source" class="source" hidden></p>
  </section>
  <p id="qg-status" class="status" data-state="loading" aria-live="polite"
     data-i18n="status.loading">Loading…</p>
  <p id="qg-reason" class="reason" hidden></p>
  <figure id="qg-qr" class="qr" hidden>
    <img id="qg-qr-img" alt="QR code: scan it with the qrgate app on your phone"
         data-i18n-alt="qr.alt" width="340" height="340">
    <figcaption data-i18n="qr.caption">Open the qrgate app and scan this code</figcaption>
  </figure>
  <!-- Closed until asked for: a second QR in plain sight would be scanned for the first. -->
  <details id="qg-get-app" class="get-app" hidden>
    <summary data-i18n="app.summary">No qrgate app yet?</summary>
    <p data-i18n="app.about">The qrgate app is a web app: nothing to install from an app
      store. Open this address in your phone's browser:</p>
    <p class="app-address"><a id="qg-app-link" href="../app/"></a></p>
    <img id="qg-app-qr" class="app-qr" src="../app-qr.svg" loading="lazy"
         alt="QR code of the qrgate app's address" data-i18n-alt="app.qr_alt"
         width="128" height="128">
    <p data-i18n="app.scan_hint">Or scan this small code with your phone's camera. Your
      phone must then be linked to your account: the site that sent you here shows how.</p>
  </details>
  <section id="qg-number" class="number" aria-labelledby="qg-number-title" hidden>
    <h2 id="qg-number-title" data-i18n="number.heading">Type this number on your phone</h2>
    <p id="qg-number-value" class="number-value"></p>
  </section>
  <p id="qg-countdown" class="countdown" hidden></p>
  <p id="qg-error" class="error" role="alert" hidden></p>
  <!-- Without scripts nothing can choose a language: both say it. -->
  <noscript>
    <p class="error" lang="en" data-i18n="noscript">This page needs JavaScript to show the
      code.</p>
    <p class="error" lang="zh-CN" data-i18n="noscript">此页面需要启用 JavaScript
      才能显示二维码。</p>
  </noscript>
</main>
</body>
</html>
"""


@router.get("/confirm/{challenge_id}", response_class=HTMLResponse)
async def confirm_page(request: Request, challenge_id: str) -> HTMLResponse:
    """The waiting page a relying party sends its user to (``links.page#bt=<token>``).

    It does not look the challenge up: the page is the same for every id, and a page that
    answered differently for live ids would tell anyone which ids exist."""
    if not _CHALLENGE_ID.fullmatch(challenge_id):
        raise NotFound("no such challenge", code="challenge_not_found")
    settings = runtime_of(request).settings
    body = _CONFIRM_PAGE.format(challenge_id=html.escape(challenge_id),
                                code_ttl=int(settings.code_ttl))
    return HTMLResponse(body, headers=PAGE_HEADERS)


_APP_QR_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    # Opened on its own, the image is a document: it may run and load nothing.
    "Content-Security-Policy": "default-src 'none'",
    "Cache-Control": "public, max-age=300",
}


@router.get("/app-qr.svg")
async def app_qr(request: Request) -> Response:
    """A QR code of the phone app's address, for the waiting page's "No qrgate app yet?".

    The address is the configured public URL, never one taken from the request (its Host
    header, a query): nobody can make this image send a phone to another site."""
    public_url = runtime_of(request).settings.public_url
    return Response(_app_qr_svg(f"{public_url}/app/"), media_type="image/svg+xml",
                    headers=_APP_QR_HEADERS)


@functools.lru_cache(maxsize=1)
def _app_qr_svg(url: str) -> str:
    """Rendered once: the address changes only with the settings."""
    return render_svg(url)


class _StaticFiles(StaticFiles):
    """Starlette's static files, plus ``nosniff`` so a script is only ever run as a script."""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not the host's guess: a module script or WebAssembly of the wrong type never runs.
        media_type = media_type_of(str(full_path))
        if media_type is not None and response.status_code != 304:
            response.headers["Content-Type"] = media_type
        # Short: a fix to the page's script must reach waiting browsers within minutes.
        response.headers.setdefault("Cache-Control", "public, max-age=300")
        return response


def mount_static(app: FastAPI) -> None:
    """Serve ``qrgate/web/static`` at ``/static`` and ``qrgate/web/vendor`` at ``/vendor``."""
    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/vendor", _StaticFiles(directory=VENDOR_DIR), name="vendor")
