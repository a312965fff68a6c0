"""The phone app over HTTP (qrgate.web.phone_app): its headers and policy, the types of its
files and of the vendored libraries it loads, its manifest and icons, and the paths that
must find nothing: files not meant for browsers, directories, ``..`` in every encoding."""

from __future__ import annotations

import http.client
import io
import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import starlette.responses
from fastapi import FastAPI
from PIL import Image

from qrgate.config import Settings
from qrgate.http import problems
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.web.app_shell import APP_DIR, load_shell
from qrgate.web.phone_app import build_router, package_shell

APP_POLICY = {
    "default-src": ["'none'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "blob:", "data:"],
    "connect-src": ["'self'"],
    "worker-src": ["'self'"],
    "manifest-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}
APP_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
    "permissions-policy": "camera=(self), microphone=(), geolocation=(), payment=()",
}
JS = "text/javascript; charset=utf-8"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("phone-app")
    settings = Settings(data_dir=data_dir,
                        database_url=f"sqlite:///{(data_dir / 'qrgate.db').as_posix()}")
    with serve_in_thread(create_app(settings)) as url:
        yield url


def policy_of(response: httpx.Response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def raw_get(base_url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written: httpx would resolve ``..`` before sending."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_app_page_headers(base_url: str) -> None:
    response = httpx.get(f"{base_url}/app/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert policy_of(response) == APP_POLICY
    for name, value in APP_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.text == (APP_DIR / "index.html").read_text(encoding="utf-8")


def test_every_app_file_has_the_app_headers(base_url: str) -> None:
    for name in package_shell().files:
        response = httpx.get(f"{base_url}/app/{name}")
        assert response.status_code == 200, name
        assert policy_of(response) == APP_POLICY, name
        for header, value in APP_HEADERS.items():
            assert response.headers[header] == value, (name, header)
        assert response.headers["etag"].startswith('"'), name


def test_revalidation_answers_304(base_url: str) -> None:
    for name in ("", "sw.js", "js/main.js"):
        first = httpx.get(f"{base_url}/app/{name}")
        etag = first.headers["etag"]
        again = httpx.get(f"{base_url}/app/{name}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        weak = httpx.get(f"{base_url}/app/{name}", headers={"If-None-Match": f'"x", W/{etag}'})
        assert weak.status_code == 304
        other = httpx.get(f"{base_url}/app/{name}", headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.content == first.content


def test_the_app_is_not_in_the_api_document(base_url: str) -> None:
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/app")]


def test_app_without_slash_redirects(base_url: str) -> None:
    response = httpx.get(f"{base_url}/app")
    assert response.status_code == 308
    # Relative: right under a proxy's path prefix as well.
    assert response.headers["location"] == "app/"
    assert httpx.get(f"{base_url}/app", follow_redirects=True).url == f"{base_url}/app/"


def test_the_camera_is_allowed_in_the_app_only(base_url: str) -> None:
    for path in ("/", "/docs", "/redoc", "/confirm/" + "0" * 32):
        response = httpx.get(base_url + path)
        assert response.status_code == 200, path
        assert "camera=()" in response.headers["permissions-policy"], path
    for path in ("/healthz", "/v1/keys", "/static/base.css", "/vendor/cborg/cborg.js",
                 "/app-nothing"):
        assert "camera=(self)" not in httpx.get(base_url + path).headers.get(
            "permissions-policy", ""), path


@pytest.mark.parametrize(("path", "media_type"), [
    ("/app/js/main.js", JS),
    ("/app/sw.js", JS),
    ("/app/app.css", "text/css; charset=utf-8"),
    ("/app/manifest.webmanifest", "application/manifest+json"),
    ("/app/i18n/en.json", "application/json"),
    ("/app/icons/icon.svg", "image/svg+xml"),
    ("/app/icons/icon-192.png", "image/png"),
    ("/vendor/zxing-wasm/dist/reader/zxing_reader.wasm", "application/wasm"),
    ("/vendor/zxing-wasm/dist/es/reader/index.js", JS),
    ("/vendor/zxing-wasm/dist/es/share.js", JS),
    ("/vendor/cborg/cborg.js", JS),
    ("/vendor/cborg/lib/decode.js", JS),
])
def test_media_types(base_url: str, path: str, media_type: str) -> None:
    response = httpx.get(base_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"


def test_media_types_do_not_depend_on_the_host(base_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without /etc/mime.types (slim containers) or with a registry that maps .js to
    text/plain: Starlette's guess is wrong, the served type is not."""
    monkeypatch.setattr(starlette.responses, "guess_type",
                        lambda *args, **kwargs: ("text/plain", None))
    for path, media_type in (("/vendor/zxing-wasm/dist/reader/zxing_reader.wasm",
                              "application/wasm"),
                             ("/vendor/cborg/lib/token.js", JS),
                             ("/app/manifest.webmanifest", "application/manifest+json")):
        assert httpx.get(base_url + path).headers["content-type"] == media_type, path


def test_every_file_the_worker_precaches_is_served(base_url: str) -> None:
    worker = f"{base_url}/app/sw.js"
    for url in package_shell().precache:
        response = httpx.get(urljoin(worker, url))
        assert response.status_code == 200, url
        assert response.headers["x-content-type-options"] == "nosniff", url


@pytest.mark.parametrize("path", [
    "/app/nothing.js", "/app/js/", "/app/js", "/app/icons/", "/app//index.html",
    "/app/index.html/", "/app/js/main.js/x", "/app/INDEX.HTML", "/app/%00",
    "/app/../pyproject.toml", "/app/%2e%2e/pyproject.toml", "/app/%2E%2E%2Fpyproject.toml",
    "/app/..%2fpyproject.toml", "/app/..%5cpyproject.toml", "/app/js/../../pyproject.toml",
    "/app/%252e%252e/pyproject.toml", "/app/....//pyproject.toml",
    "/app/../../../../etc/passwd", "/app/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/app/../web/pages.py", "/app/%2e%2e/pages.py", "/app/..%2f..%2fconfig.py",
    "/vendor/../pages.py", "/vendor/%2e%2e/pages.py", "/vendor/cborg/%2e%2e/%2e%2e/pages.py",
    "/vendor/cborg/",
])
def test_nothing_outside_the_app_is_reached(base_url: str, path: str) -> None:
    status, body = raw_get(base_url, path)
    assert status in (400, 404), (path, status)
    assert b"import " not in body and b"root:" not in body and b"[project]" not in body


@pytest.fixture(scope="module")
def tree_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The routes over a made-up app beside files that are not for browsers."""
    root = tmp_path_factory.mktemp("tree")
    app, vendor = root / "app", root / "vendor"
    files = {
        "index.html": "<!doctype html>", "sw.js": (APP_DIR / "sw.js").read_text(),
        "js/main.js": "export {};", "package.json": '{"name": "secret"}',
        "tsconfig.json": "{}", "js/main.test.js": "test()", "tests/fixture.js": "x",
        "node_modules/x/index.js": "x", ".env.json": "{}", "notes.md": "# notes",
        "js/.hidden.js": "x",
    }
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    vendor.mkdir()
    server = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    problems.install(server)
    server.include_router(build_router(load_shell(app, vendor)))
    with serve_in_thread(server) as url:
        yield url


@pytest.mark.parametrize("name", [
    "package.json", "tsconfig.json", "js/main.test.js", "tests/fixture.js",
    "node_modules/x/index.js", ".env.json", "notes.md", "js/.hidden.js", "tests/", "tests",
])
def test_files_not_for_browsers_are_not_served(tree_url: str, name: str) -> None:
    assert httpx.get(f"{tree_url}/app/{name}").status_code == 404
    assert httpx.get(f"{tree_url}/app/js/main.js").status_code == 200


# --- manifest and icons ------------------------------------------------------------------


def test_manifest(base_url: str) -> None:
    response = httpx.get(f"{base_url}/app/manifest.webmanifest")
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["name"] == "qrgate" and manifest["short_name"]
    assert manifest["start_url"] == "./" and manifest["scope"] == "./"
    assert manifest["display"] == "standalone"
    for colour in ("theme_color", "background_color"):
        assert len(manifest[colour]) == 7 and manifest[colour].startswith("#")
    # The page's theme colour and the manifest's agree.
    index = (APP_DIR / "index.html").read_text(encoding="utf-8")
    assert f'<meta name="theme-color" content="{manifest["theme_color"]}">' in index
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes


def test_icons_are_what_the_manifest_says(base_url: str) -> None:
    manifest = json.loads((APP_DIR / "manifest.webmanifest").read_text(encoding="utf-8"))
    for icon in manifest["icons"]:
        response = httpx.get(f"{base_url}/app/{icon['src']}")
        assert response.status_code == 200, icon
        assert response.headers["content-type"] == icon["type"], icon
        if icon["type"] == "image/png":
            width, height = (int(side) for side in icon["sizes"].split("x"))
            with Image.open(io.BytesIO(response.content)) as image:
                assert image.format == "PNG"
                assert image.size == (width, height), icon
                if icon.get("purpose") == "maskable":
                    # Full bleed: a launcher cuts its own shape, nothing may show through.
                    assert image.convert("RGBA").getextrema()[3] == (255, 255), icon
        else:
            assert response.text.startswith("<svg ") and icon["sizes"] == "any"


def test_the_icons_come_from_their_script() -> None:
    """scripts/app-icons.py made the committed icons; a hand edit would drift from it."""
    script = Path(__file__).parents[2] / "scripts" / "app-icons.py"
    namespace = runpy.run_path(str(script), run_name="app_icons")
    assert (APP_DIR / "icons/icon.svg").read_text(encoding="utf-8") == namespace["svg"]()
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("icon-maskable-512.png", 512, True)):
        drawn = namespace["png"](size, maskable=maskable)
        with Image.open(APP_DIR / "icons" / name) as committed:
            assert committed.size == (size, size)
            assert committed.convert("RGBA").tobytes() == drawn.convert("RGBA").tobytes(), name
