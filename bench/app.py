"""The phone app's own speed, in Chromium with its camera fed a video of each code:

* decode: ms of zxing-wasm per 720p camera frame, for frames that hold the code (the first
  includes compiling the WebAssembly) and for frames with no code (a whole-frame search);
* frame to verified: from the frame that held the code to the code verified offline
  (Base45, CBOR, COSE ES256 with WebCrypto);
* frame to context: from that frame to the verified context on screen, which includes
  the signed /v1/confirm/scan round trip to the server;
* transfer: the bytes a phone downloads to install the app (the service worker's shell),
  raw and gzip-compressed, split into JS, WASM, CSS and the rest.

    python bench/app.py [--rounds 20]

Needs Debian's Chromium (/usr/bin/chromium). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import gzip
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import options, spawned_server
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
# The camera and browser set-up are the browser tests' own (one definition of each).
sys.path.insert(0, str(ROOT / "tests"))
from qrgate.qrimage import render_png  # noqa: E402
from support.camera import FakeCamera  # noqa: E402
from support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from support.phone_app import PhoneApp  # noqa: E402

PASSWORD = "bench-password-1"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered):7.1f}  p99 {p99:7.1f}  max {ordered[-1]:7.1f}"
            f"  (n={len(ordered)})")


def transfer_sizes(url: str) -> None:
    """The shell the service worker caches is what installing the app downloads."""
    worker = httpx.get(f"{url}/app/sw.js").text
    paths = sorted(set(re.findall(r'"((?:\.\./)*[^"\s]+\.(?:js|wasm|css|json|html|'
                                  r'webmanifest|png|svg))"', worker)))
    totals: dict[str, list[int]] = {}
    for path in ["sw.js", *paths]:
        body = httpx.get(f"{url}/app/{path}").content
        kind = path.rsplit(".", 1)[-1]
        kind = kind if kind in ("js", "wasm", "css") else "other"
        raw, packed = totals.setdefault(kind, [0, 0])
        totals[kind] = [raw + len(body), packed + len(gzip.compress(body, 9))]
    print(f"{'transfer':<10} {'raw KiB':>9} {'gzip KiB':>9}")
    for kind, (raw, packed) in sorted(totals.items()):
        print(f"{kind:<10} {raw / 1024:9.1f} {packed / 1024:9.1f}")
    raw = sum(size[0] for size in totals.values())
    packed = sum(size[1] for size in totals.values())
    print(f"{'all':<10} {raw / 1024:9.1f} {packed / 1024:9.1f}")


def main() -> None:
    parser = options(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=5,
                        help="how long the camera looks at a frame with no code")
    args = parser.parse_args()
    policy = '{"number_matching": "off"}'
    with spawned_server(1, policy=policy) as (url, api_key), \
            tempfile.TemporaryDirectory() as scratch, sync_playwright() as driver:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"})
        api.post("/v1/users", json={"login": "alice", "password": PASSWORD}).raise_for_status()
        camera = FakeCamera(Path(scratch) / "camera.y4m")
        browser = driver.chromium.launch(executable_path=str(CHROMIUM),
                                         args=[*CHROMIUM_ARGS, *camera.browser_args()])
        app = PhoneApp(browser.new_context(viewport={"width": 390, "height": 844}).new_page(),
                       camera, url)
        page = app.page
        app.open()
        enrolment = api.post("/v1/users/alice/enrolments").json()
        app.scan(render_png(enrolment["code"]))
        page.fill("#qg-password", PASSWORD)
        page.locator("form.form button[type=submit]").click()
        page.wait_for_selector(".result.approved")
        started_at = time.monotonic()
        for _ in range(args.rounds):
            started = api.post("/v1/confirm/challenges", json={
                "login": "alice", "scene": {"operation": "transfer", "amount": "10.00"}}).json()
            app.scan(render_png(started["code"]))
            page.wait_for_selector("button.decline")
            page.locator("button.decline").click()
            page.wait_for_selector(".result")
        elapsed = time.monotonic() - started_at
        measures = {name: app.measures(name) for name in
                    ("qrgate:decode", "qrgate:frame-to-verified", "qrgate:frame-to-screen")}
        # Frames with no code are the decoder's worst case: it searches the whole frame.
        camera.show_nothing()
        page.locator(".tabs a[href='#/scan']").click()
        page.wait_for_timeout(args.idle_seconds * 1000)
        empty = app.measures("qrgate:decode")[len(measures["qrgate:decode"]):]
        print(f"{args.rounds} scans in {elapsed:.1f} s (each: camera opened, code read, "
              "verified, context shown, declined)")
        print(f"{'decode ms, code frame':<22} {percentiles(measures['qrgate:decode'])}")
        print(f"{'decode ms, empty frame':<22} {percentiles(empty)}")
        print(f"{'frame to verified ms':<22} {percentiles(measures['qrgate:frame-to-verified'])}")
        print(f"{'frame to context ms':<22} {percentiles(measures['qrgate:frame-to-screen'])}")
        transfer_sizes(url)
        browser.close()


if __name__ == "__main__":
    main()
