"""The phone app in a real Chromium: the service worker keeps the shell and serves it with
the network gone, never answers an API request from a cache, and moves to a new cache when a
file changes; Chromium finds the app installable; and under the app's policy the camera,
``blob:`` images and the vendored WebAssembly QR reader work.

These tests assert on index.html's own elements (``header.bar``, ``#qg-screen``), not on the
screens the app's scripts draw into them: those have tests of their own.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect

from qrgate.cli.demo import free_port
from qrgate.config import Settings
from qrgate.http import problems
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.qrimage import modules
from qrgate.runtime import build_runtime
from qrgate.web.app_shell import APP_DIR, load_shell
from qrgate.web.pages import VENDOR_DIR, mount_static
from qrgate.web.phone_app import build_router, package_shell
from support.chromium import CHROMIUM, CHROMIUM_ARGS

WAIT_MS = 15_000
CSP_WATCH = ("document.addEventListener('securitypolicyviolation', (e) => console.error("
             "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")
CONTROLLED = "() => navigator.serviceWorker.controller !== null"
CACHED_URLS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
  }
  return urls;
}"""
FETCH_STATUS = """async (url) => {
  try { return String((await fetch(url, { cache: "no-store" })).status); }
  catch (error) { return "failed: " + error.name; }
}"""


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir,
                    database_url=f"sqlite:///{(data_dir / 'qrgate.db').as_posix()}")


def csp_violations(page: Page) -> list[str]:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "CSP violation" in message.text or "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.add_init_script(CSP_WATCH)
    return violations


def eventually(page: Page, script: str, expected: object) -> None:
    """Poll an async ``script`` until it returns ``expected`` (wait_for_function does not
    await a promise: it takes one for a true value at once)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while (value := page.evaluate(script)) != expected:
        assert time.monotonic() < deadline, f"{script} is still {value!r}, not {expected!r}"
        time.sleep(0.1)


def open_controlled(page: Page, url: str) -> None:
    """Open the app and wait until its service worker controls the page."""
    response = page.goto(url)
    assert response is not None and response.status == 200
    page.evaluate("() => import('./js/shared/sw-register.js')"
                  ".then((module) => module.registerServiceWorker())")
    page.wait_for_function(CONTROLLED, timeout=WAIT_MS)


def test_the_shell_opens_offline_and_the_api_is_never_cached(page: Page,
                                                             tmp_path: Path) -> None:
    shell = package_shell()
    with ExitStack() as server:
        base_url = server.enter_context(serve_in_thread(create_app(settings_for(tmp_path))))
        violations = csp_violations(page)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        open_controlled(page, f"{base_url}/app/")
        page.wait_for_load_state("networkidle")
        assert violations == []

        # Every file the page loaded (the API aside) is one the worker keeps.
        worker = f"{base_url}/app/sw.js"
        kept = {urljoin(worker, url) for url in shell.precache}
        loaded = {url.split("?")[0] for url in requested
                  if url.startswith(base_url) and "/v1/" not in url}
        assert loaded - kept == set()
        assert page.evaluate(FETCH_STATUS, "../v1/keys") == "200"
        cached = page.evaluate(CACHED_URLS)
        assert set(cached) == kept
        assert not [url for url in cached if "/v1/" in url]
        assert page.evaluate("() => caches.keys()") == [f"qrgate-shell-{shell.version}"]

        # No network: the browser is offline and the server is gone too, so nothing the
        # worker fetches can come from anywhere but its cache.
        page.context.set_offline(True)
        server.close()
        page.reload()
        expect(page.locator("header.bar")).to_be_visible()
        expect(page.locator("#qg-screen")).to_be_attached()
        expect(page.locator("nav.tabs a")).to_have_count(3)
        assert page.evaluate(CONTROLLED)
        # An API answer is never served from a cache, not even one the page had before.
        assert page.evaluate(FETCH_STATUS, "../v1/keys").startswith("failed")
        assert page.evaluate(FETCH_STATUS, "../healthz").startswith("failed")


def app_server(app_dir: Path) -> FastAPI:
    """The app's routes alone, over ``app_dir``, with the vendored files beside them."""
    server = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    problems.install(server)
    server.include_router(build_router(load_shell(app_dir, VENDOR_DIR)))
    mount_static(server)
    return server


def test_a_changed_file_brings_a_new_cache_and_retires_the_old(page: Page,
                                                               tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    shutil.copytree(APP_DIR, app_dir)
    port = free_port()
    first = load_shell(app_dir, VENDOR_DIR).version
    with serve_in_thread(app_server(app_dir), port=port) as base_url:
        open_controlled(page, f"{base_url}/app/")
        eventually(page, "() => caches.keys()", [f"qrgate-shell-{first}"])

    with (app_dir / "app.css").open("a", encoding="utf-8") as css:
        css.write("\n/* a fix */\n")
    second = load_shell(app_dir, VENDOR_DIR).version
    assert second != first
    with serve_in_thread(app_server(app_dir), port=port) as base_url:
        # A navigation makes the browser check sw.js soon after (update() now: no waiting);
        # the new one differs, installs, takes over and deletes the old cache.
        page.reload()
        page.evaluate("async () => { await (await navigator.serviceWorker.ready).update(); }")
        eventually(page, "() => caches.keys()", [f"qrgate-shell-{second}"])
        cached_css = page.evaluate(
            "async () => (await (await caches.match(new URL('app.css', location.href)))"
            ".text())")
        assert cached_css.endswith("/* a fix */\n")


def test_the_app_works_behind_a_path_prefix(page: Page, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    runtime = build_runtime(settings)
    proxy = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    proxy.mount("/qg", create_app(settings, runtime=runtime))
    try:
        with serve_in_thread(proxy) as origin:
            open_controlled(page, f"{origin}/qg/app/")
            scope = page.evaluate(
                "async () => (await navigator.serviceWorker.ready).scope")
            assert scope == f"{origin}/qg/app/"
            cached = page.evaluate(CACHED_URLS)
            assert cached and all(url.startswith(f"{origin}/qg/") for url in cached)
            assert f"{origin}/qg/vendor/cborg/cborg.js" in cached
    finally:
        runtime.close()


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(create_app(settings_for(tmp_path))) as base_url:
        yield f"{base_url}/app/"


def test_chromium_finds_the_app_installable(playwright: Playwright, app_url: str,
                                            tmp_path: Path) -> None:
    # A persistent profile: Chromium never offers to install from an incognito-like one,
    # which is what a fresh Playwright context is.
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        page = context.new_page()
        open_controlled(page, app_url)
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"] == app_url + "manifest.webmanifest"
        assert manifest["errors"] == []
        parsed = manifest["manifest"]
        assert (parsed["startUrl"], parsed["scope"], parsed["id"]) == (app_url,) * 3
        assert parsed["display"] == "kStandalone"
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    finally:
        context.close()


@pytest.fixture
def camera_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium with a fake camera that needs no permission prompt."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
              "--use-fake-ui-for-media-stream"])
    yield browser
    browser.close()


COMPILE_WASM = """async () => {
  const url = new URL("/vendor/zxing-wasm/dist/reader/zxing_reader.wasm", location.href);
  try { await WebAssembly.compileStreaming(fetch(url)); return "compiled"; }
  catch (error) { return "refused: " + error.name; }
}"""
CAMERA_TO_BLOB_IMAGE = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  document.body.append(video);
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve));
  const image = document.createElement("img");
  image.src = URL.createObjectURL(blob);
  await image.decode();
  stream.getTracks().forEach((track) => track.stop());
  return [video.videoWidth > 0, image.naturalWidth === video.videoWidth];
}"""
READ_QR = """async (matrix) => {
  const zxing = await import("../vendor/zxing-wasm/dist/es/reader/index.js");
  zxing.prepareZXingModule({
    overrides: {
      locateFile: (path, prefix) => path.endsWith(".wasm")
        ? new URL("../vendor/zxing-wasm/dist/reader/" + path, location.href).href
        : prefix + path,
    },
    fireImmediately: true,
  });
  const scale = 4, quiet = 4, n = matrix.length, side = (n + 2 * quiet) * scale;
  const pixels = new Uint8ClampedArray(side * side * 4).fill(255);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    if (!matrix[y][x]) continue;
    for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
      const i = (((y + quiet) * scale + dy) * side + (x + quiet) * scale + dx) * 4;
      pixels[i] = pixels[i + 1] = pixels[i + 2] = 0;
    }
  }
  const found = await zxing.readBarcodes(new ImageData(pixels, side, side),
                                         { formats: ["QRCode"] });
  return found.map((result) => result.text);
}"""


def test_camera_blob_images_and_webassembly_under_the_app_policy(camera_browser: Browser,
                                                                 app_url: str) -> None:
    context = camera_browser.new_context(permissions=["camera"])
    try:
        page = context.new_page()
        violations = csp_violations(page)
        page.goto(app_url)
        # A <video> fed by srcObject loads no URL: it plays with media-src 'none'.
        assert page.evaluate(CAMERA_TO_BLOB_IMAGE) == [True, True]
        assert page.evaluate(COMPILE_WASM) == "compiled"
        text = "QG1:TEST-CODE-0123456789"
        assert page.evaluate(READ_QR, modules(text).tolist()) == [text]
        assert violations == []
        # Without 'wasm-unsafe-eval' (the waiting page's policy) the reader could not start.
        page.goto(app_url.replace("/app/", "/confirm/" + "0" * 32))
        assert page.evaluate(COMPILE_WASM) == "refused: CompileError"
    finally:
        context.close()
