"""The landing page and the API reference pages (Swagger UI at /docs, ReDoc at /redoc), in
a real Chromium under their real Content-Security-Policy.

Every test watches the browser: a CSP violation, a console error, a failed request or a
request to any other origin fails it. Screenshots go to tests/web/screenshots/ (ignored by
git) so a person can look at what the browser drew.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    expect,
)

from qrgate import __version__
from qrgate.config import Settings
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.runtime import build_runtime
from qrgate.web.about import REDOC_STYLE_HASHES
from qrgate.web.pages import STATIC_DIR, VENDOR_DIR

SCREENSHOTS = Path(__file__).parent / "screenshots"
RENDER_MS = 15_000
STRICT_POLICY = {
    "default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
    "img-src": ["'self'"], "connect-src": ["'self'"], "base-uri": ["'none'"],
    "form-action": ["'none'"], "frame-ancestors": ["'none'"],
}
# What each reference page may do beyond the strict policy; qrgate.web.about says why.
SWAGGER_POLICY = STRICT_POLICY | {"img-src": ["'self'", "data:"]}


def redoc_policy(nonce: str) -> dict[str, list[str]]:
    return STRICT_POLICY | {
        "style-src": ["'self'", f"'nonce-{nonce}'", *REDOC_STYLE_HASHES.split()],
        "img-src": ["'self'", "data:"],
        "worker-src": ["blob:"],
    }


# The only absolute URL our own files may contain: the SVG namespace, a name, not a fetch.
NAMESPACES = {"http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module: these pages read no data, only the OpenAPI document."""
    data_dir = tmp_path_factory.mktemp("docs-pages")
    settings = Settings(data_dir=data_dir,
                        database_url=f"sqlite:///{(data_dir / 'qrgate.db').as_posix()}")
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Wider than the waiting page's: ReDoc folds its menu away below about 800 px."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass
class Watch:
    """Everything the browser did that a page under test must not do."""

    origin: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def foreign_requests(self) -> list[str]:
        """Requests that left the server's origin. Blob URLs are the page's own memory (a
        worker's script) and carry the page's origin; anything else must be the server's."""
        return [url for url in self.requests
                if not url.startswith((self.origin + "/", f"blob:{self.origin}/"))]

    def assert_clean(self) -> None:
        assert self.problems == []
        assert self.foreign_requests() == []

    def expect_shown(self, locator: Locator, *, count: int) -> None:
        """Wait for the tool to render; if it does not, say what the browser saw."""
        try:
            expect(locator).to_have_count(count, timeout=RENDER_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nthe browser saw: {self.problems}") from None


def watch(page: Page, origin: str) -> Watch:
    seen = Watch(origin)
    page.on("console", seen.on_console)
    page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
    page.on("request", seen.on_request)
    page.on("requestfailed", seen.on_failed)
    page.on("response", seen.on_response)
    # Also catches violations that a browser reports without a console line.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")
    return seen


def screenshot(page: Page, name: str) -> None:
    """What a person sees first: the reference pages are tens of screens long in full."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def policy_of(response: Response | httpx.Response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def operations(base_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation the document describes, the webhooks qrgate sends (``webhooks``,
    named by event type) included: the references render each as one."""
    spec = httpx.get(f"{base_url}/openapi.json").json()
    return [(method.upper(), path, operation)
            for items in (spec["paths"], spec.get("webhooks", {}))
            for path, item in items.items()
            for method, operation in item.items()]


def test_review_15_landing_page_says_what_this_is_and_links_the_api(
        base_url: str, page: Page) -> None:
    seen = watch(page, base_url)
    response = page.goto(base_url + "/")
    assert response is not None and response.status == 200
    assert policy_of(response) == STRICT_POLICY
    assert response.headers["x-frame-options"] == "DENY"

    expect(page.locator("h1")).to_contain_text("qrgate")
    expect(page.locator(".version")).to_have_text(f"version {__version__}")
    body = page.locator("main")
    for words in ("QR-code based authentication and transaction signing", "Scheme C",
                  "confirm", "Scheme E", "txsign", "RFC 6287", "docs/schemes.md"):
        expect(body).to_contain_text(words)
    links = {"API reference (Swagger UI)": "/docs", "API reference (ReDoc)": "/redoc",
             "OpenAPI document": "/openapi.json", "Code-signing public keys": "/v1/keys",
             "Health": "/healthz"}
    for name, path in links.items():
        link = page.get_by_role("link", name=name)
        expect(link).to_be_visible()
        target = link.evaluate("a => a.href")
        assert target == base_url + path
        assert httpx.get(target).status_code == 200, target
    # The page is styled by our file, not by the browser's defaults.
    assert page.locator("main").evaluate("m => getComputedStyle(m).borderRadius") == "16px"
    screenshot(page, "home")
    seen.assert_clean()

    page.get_by_role("link", name="API reference (Swagger UI)").click()
    page.wait_for_url(base_url + "/docs")


def test_review_11_swagger_ui_shows_every_operation_offline(base_url: str, page: Page) -> None:
    seen = watch(page, base_url)
    response = page.goto(base_url + "/docs")
    assert response is not None and response.status == 200
    assert policy_of(response) == SWAGGER_POLICY

    seen.expect_shown(page.locator(".opblock"), count=len(operations(base_url)))
    start = page.locator(".opblock.opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/v1/confirm/challenges"]'))
    expect(start).to_be_visible()
    expect(start).to_contain_text("POST")
    expect(page.locator(".info .title")).to_contain_text("qrgate")

    # Opening an operation renders its schema: the part of Swagger UI that styles itself.
    start.locator(".opblock-summary").click()
    expect(start.locator(".opblock-body")).to_be_visible()
    expect(start.locator(".opblock-body")).to_contain_text("login")
    screenshot(page, "docs")
    seen.assert_clean()


def test_review_11_redoc_renders_the_operation_list_offline(base_url: str, page: Page) -> None:
    seen = watch(page, base_url)
    response = page.goto(base_url + "/redoc")
    assert response is not None and response.status == 200
    nonce = page.locator('script[src="static/redoc.js"]').evaluate("s => s.nonce")
    assert len(nonce) >= 22
    assert policy_of(response) == redoc_policy(nonce)
    # Fresh for every response: a nonce seen once must not open the next page.
    assert f"'nonce-{nonce}'" not in httpx.get(base_url + "/redoc").headers[
        "content-security-policy"]

    expected = operations(base_url)
    seen.expect_shown(page.locator('[data-section-id^="operation/"]'), count=len(expected))
    expect(page.locator("h1").first).to_contain_text("qrgate")
    menu = page.locator(".menu-content")
    expect(menu).to_be_visible()
    start = next(op for method, path, op in expected
                 if (method, path) == ("POST", "/v1/confirm/challenges"))
    # The menu lists the operations of a tag once the tag is opened.
    menu.get_by_text("confirm", exact=True).click()
    expect(menu.get_by_text(start["summary"])).to_be_visible()
    # Search runs in ReDoc's web worker: a word of an operation's summary must find it.
    word = max(re.findall(r"[A-Za-z]{5,}", start["summary"]), key=len)
    page.get_by_placeholder("Search...").fill(word)
    # The worker indexes the whole document first: on a loaded 2-core machine that took
    # more than Playwright's default 5 s.
    expect(page.locator('[data-role="search:results"]')).to_contain_text(start["summary"],
                                                                         timeout=30_000)
    page.get_by_placeholder("Search...").fill("")
    screenshot(page, "redoc")
    seen.assert_clean()


def test_pages_work_behind_a_path_prefix(tmp_path: Path, page: Page) -> None:
    """A reverse proxy may publish qrgate under a prefix; the pages' relative paths follow."""
    settings = Settings(data_dir=tmp_path,
                        database_url=f"sqlite:///{(tmp_path / 'qrgate.db').as_posix()}")
    runtime = build_runtime(settings)
    proxy = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    proxy.mount("/qg", create_app(settings, runtime=runtime))
    try:
        with serve_in_thread(proxy) as origin:
            seen = watch(page, origin)
            page.goto(origin + "/qg/")
            expect(page.locator(".version")).to_be_visible()
            count = len(operations(origin + "/qg"))
            # Leaving a page too early aborts its icon's request, which would count as failed.
            page.wait_for_load_state("networkidle")
            page.goto(origin + "/qg/docs")
            seen.expect_shown(page.locator(".opblock"), count=count)
            page.wait_for_load_state("networkidle")
            page.goto(origin + "/qg/redoc")
            seen.expect_shown(page.locator('[data-section-id^="operation/"]'), count=count)
            seen.assert_clean()
            assert all(url.startswith((origin + "/qg/", f"blob:{origin}/"))
                       for url in seen.requests), seen.requests
    finally:
        runtime.close()


def test_trailing_slash_and_fastapi_defaults_are_gone(base_url: str) -> None:
    spec_paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/redoc"} & set(spec_paths)
    # FastAPI's OAuth2 redirect page belongs to its own /docs, which is off.
    assert httpx.get(f"{base_url}/docs/oauth2-redirect").status_code == 404
    # /docs/ would resolve the page's relative paths under /docs/; it must redirect.
    redirected = httpx.get(f"{base_url}/docs/")
    assert redirected.status_code in (301, 307, 308)
    assert redirected.headers["location"].endswith("/docs")


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_nothing_we_wrote_points_at_another_origin(base_url: str) -> None:
    for path in ("/", "/docs", "/redoc"):
        html = httpx.get(base_url + path)
        assert html.status_code == 200
        parser = _References()
        parser.feed(html.text)
        assert parser.urls, path
        for url in parser.urls:
            # Relative paths only: no scheme, no host, not even rooted (path prefixes).
            assert not re.match(r"^([a-z][a-z0-9+.-]*:|/)", url, re.IGNORECASE), (path, url)
            assert httpx.get(httpx.URL(base_url + path).join(url)).status_code == 200, url
        assert not set(re.findall(r"https?://[^\s\"'<>)]+", html.text)), path

    ours = sorted(p for p in STATIC_DIR.iterdir() if p.is_file())
    assert {p.name for p in ours} >= {"swagger.js", "redoc.js", "reference.css", "home.css"}
    for file in ours:
        served = httpx.get(f"{base_url}/static/{file.name}")
        assert served.status_code == 200
        assert served.headers["x-content-type-options"] == "nosniff"
        assert set(re.findall(r"https?://[^\s\"'<>)]+", served.text)) <= NAMESPACES, file.name


def test_vendored_files_are_served_with_their_licences(base_url: str) -> None:
    index = (VENDOR_DIR / "README.md").read_text()
    # The table's rows after its header line (the separator line starts with "|-").
    rows = [line.split(" | ") for line in index.splitlines() if line.startswith("| ")][1:]
    packages = {row[0].removeprefix("| "): row for row in rows}
    assert set(packages) >= {"redoc", "swagger-ui-dist"}
    for name, (_, version, licence, files, _integrity) in packages.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), name
        assert re.fullmatch(r"[A-Za-z0-9.-]+", licence), (name, licence)  # an SPDX id
        listed = files.split()
        assert "LICENSE" in listed, name
        for file in listed:
            assert (VENDOR_DIR / name / file).is_file(), (name, file)
            served = httpx.get(f"{base_url}/vendor/{name}/{file}")
            assert served.status_code == 200, (name, file)
            if file.endswith(".js"):
                assert "javascript" in served.headers["content-type"]
            if file.endswith(".css"):
                assert served.headers["content-type"].startswith("text/css")
