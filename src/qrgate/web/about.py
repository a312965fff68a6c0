"""Pages about this server: the landing page (``/``) and the API reference (``/docs``,
``/redoc``).

FastAPI's own reference pages load Swagger UI and ReDoc from a CDN and start them with an
inline script, so they are blank on a closed network and cannot run under a strict CSP.
These pages load the same tools from ``/vendor`` (pinned copies, see
``scripts/vendor-web.sh``) and start them from our own script files.

All paths are relative (``static/...``, ``openapi.json``): the pages live at the root, so
behind a reverse proxy that publishes qrgate under a prefix they still find their files.
"""

from __future__ import annotations

import html
import secrets
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from qrgate import __version__
from qrgate.web.pages import PAGE_HEADERS

# The reference pages run large third-party bundles that need a little more than the strict
# policy of our own pages (qrgate.web.pages). Each relaxation was measured in Chromium: take
# it away and tests/web/test_docs_pages.py sees a violation or a broken page. The pages hold
# no secret (the OpenAPI document is public), scripts still come from this origin only, and
# nothing may be loaded from or sent to another origin.
SWAGGER_CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    # Swagger UI draws its icons (select arrows, the copy button) as data: SVGs from its
    # CSS and its script.
    "img-src 'self' data:",
    # openapi.json, and "Try it out" requests to this server.
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))

# The <style> element that ReDoc 2.5.4's bundle adds while it loads, with perfect-scrollbar's
# CSS: first empty, then filled, and the browser checks it both times. Another ReDoc version
# may change the CSS; tests/web/test_docs_pages.py then fails and its message names the hash.
REDOC_STYLE_HASHES: Final = " ".join((
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty element
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar 1.5.6
))


def redoc_content_security_policy(style_nonce: str) -> str:
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        # ReDoc styles itself with styled-components, which writes <style> elements at run
        # time; blocked, ReDoc stops with "Something went wrong". ReDoc hands its ``nonce``
        # option to styled-components, so those elements carry this response's nonce. The
        # one <style> the bundle writes before it can be told the nonce (its scroll bars'
        # CSS) is allowed by hash; no other inline style is.
        f"style-src 'self' 'nonce-{style_nonce}' {REDOC_STYLE_HASHES}",
        # Its link and arrow icons are data: SVGs in those generated styles.
        "img-src 'self' data:",
        "connect-src 'self'",
        # Search runs in a worker that the bundle builds from a blob: URL of its own code.
        "worker-src blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))


SWAGGER_PAGE_HEADERS: Final = {**PAGE_HEADERS,
                               "Content-Security-Policy": SWAGGER_CONTENT_SECURITY_POLICY}

router = APIRouter(include_in_schema=False)

_HEAD: Final = """<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="static/favicon.svg" type="image/svg+xml">"""

_HOME_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
{head}
<title>qrgate</title>
<link rel="stylesheet" href="static/base.css">
<link rel="stylesheet" href="static/home.css">
</head>
<body>
<main class="home" aria-labelledby="qg-title">
  <header>
    <h1 id="qg-title">qrgate <span class="version">version {version}</span></h1>
    <p class="lead">QR-code based authentication and transaction signing. A QR code carries the
      second factor or the transaction, a phone's camera carries it across devices, and this
      server decides.</p>
  </header>
  <section aria-labelledby="qg-schemes">
    <h2 id="qg-schemes">Schemes available on this server</h2>
    <dl class="schemes">
      <dt>Scheme C <code>confirm</code></dt>
      <dd>Cross-device confirmation of a sensitive operation: the browser shows a signed,
        rotating QR code, the user's bound phone scans it, shows who asks for what, and
        approves with its device key.</dd>
      <dt>Scheme E <code>txsign</code></dt>
      <dd>Transaction signing with an OCRA (RFC 6287) challenge/response token; signed
        transaction QR codes chain one user's transaction to the next.</dd>
    </dl>
  </section>
  <section aria-labelledby="qg-api">
    <h2 id="qg-api">API</h2>
    <ul class="links">
      <li><a href="docs">API reference (Swagger UI)</a> <span>try the operations</span></li>
      <li><a href="redoc">API reference (ReDoc)</a> <span>read the operations</span></li>
      <li><a href="openapi.json">OpenAPI document</a> <span>openapi.json</span></li>
      <li><a href="v1/keys">Code-signing public keys</a> <span>JWKS, for phones and
        verifiers</span></li>
      <li><a href="healthz">Health</a> <span>healthz</span></li>
    </ul>
  </section>
  <section aria-labelledby="qg-docs">
    <h2 id="qg-docs">Documentation</h2>
    <p>The schemes, their actors and steps are described in <code>docs/schemes.md</code>, and
      installation, configuration and the command line in <code>README.md</code>, both in the
      qrgate source repository.</p>
  </section>
</main>
</body>
</html>
"""

_SWAGGER_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
{head}
<title>qrgate API reference · Swagger UI</title>
<link rel="stylesheet" href="vendor/swagger-ui-dist/swagger-ui.css">
<link rel="stylesheet" href="static/reference.css">
<script src="vendor/swagger-ui-dist/swagger-ui-bundle.js" defer></script>
<script src="static/swagger.js" defer></script>
</head>
<body>
<div id="swagger-ui" data-openapi-url="openapi.json"></div>
<noscript><p class="noscript">The API reference needs JavaScript. The OpenAPI document is at
  <a href="openapi.json">openapi.json</a>.</p></noscript>
</body>
</html>
"""

_REDOC_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
{head}
<title>qrgate API reference · ReDoc</title>
<link rel="stylesheet" href="static/reference.css">
<script src="vendor/redoc/bundles/redoc.standalone.js" defer></script>
<script src="static/redoc.js" nonce="{style_nonce}" defer></script>
</head>
<body>
<div id="redoc" data-openapi-url="openapi.json"></div>
<noscript><p class="noscript">The API reference needs JavaScript. The OpenAPI document is at
  <a href="openapi.json">openapi.json</a>.</p></noscript>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse)
async def home_page() -> HTMLResponse:
    """What this server is, and where its API and documentation are."""
    body = _HOME_PAGE.format(head=_HEAD, version=html.escape(__version__))
    return HTMLResponse(body, headers=PAGE_HEADERS)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_page() -> HTMLResponse:
    return HTMLResponse(_SWAGGER_PAGE.format(head=_HEAD), headers=SWAGGER_PAGE_HEADERS)


@router.get("/redoc", response_class=HTMLResponse)
async def redoc_page() -> HTMLResponse:
    # A fresh nonce per response (the page is never cached): a nonce that repeats is a
    # password that anyone who saw the page once can use for injected styles. It rides on
    # our script's tag, where static/redoc.js reads it and CSS selectors cannot.
    nonce = secrets.token_urlsafe(18)
    headers = {**PAGE_HEADERS, "Content-Security-Policy": redoc_content_security_policy(nonce)}
    return HTMLResponse(_REDOC_PAGE.format(head=_HEAD, style_nonce=nonce), headers=headers)
