"""QR codes as SVG scale with CSS and still scan: checked on the document itself, then on
what Chromium draws from it at several sizes, read back with zxing-cpp like a phone would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import numpy as np
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page

from qrgate.core.codes import CodeType, encode_code
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.qrimage import decode_image, render_svg
from support.stack import Stack

SVG = "{http://www.w3.org/2000/svg}"
NOW = 1_700_000_000
RING = KeyRing(active=SigningKey.generate(now=NOW))


def real_code() -> str:
    """A confirm code as the server issues it: about 300 characters, QR version 10."""
    return encode_code(code_type=CodeType.CONFIRM, code_id=os.urandom(16), issued_at=NOW,
                       expires_at=NOW + 120, issuer="qrgate",
                       claims={10: os.urandom(16), 11: "alice", 12: 1234}, keyring=RING)


def modules(text: str) -> np.ndarray:
    """The symbol's dark modules, quiet zone included, straight from zxing-cpp."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)) < 128


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Scale factor 1: a CSS pixel is a screenshot pixel, so sizes below are exact.
    context = browser.new_context(viewport={"width": 900, "height": 900},
                                  device_scale_factor=1)
    try:
        yield context.new_page()
    finally:
        context.close()


def drawn(page: Page, svg: str, *, width: float, inline: bool = False) -> bytes:
    """A PNG of what Chromium draws for ``svg`` in a box ``width`` CSS pixels wide: as an
    <img> (how a page shows /qr.svg) or inline in the HTML (how a relying party may show
    the ``qr_svg`` of a response). The SVG itself says nothing about its size."""
    if inline:
        body = svg.split("?>", 1)[1]
        html = f'<div id="box" style="width:{width}px">{body}</div>'
    else:
        data = base64.b64encode(svg.encode()).decode()
        html = (f'<img id="box" style="width:{width}px; display:block"'
                f' src="data:image/svg+xml;base64,{data}">')
    page.set_content(f'<body style="margin:0; background:#123">{html}</body>')
    page.wait_for_function("() => !document.images.length || document.images[0].complete")
    return page.locator("#box").screenshot()


def test_review_13_svg_has_a_view_box_and_no_size_of_its_own() -> None:
    text = real_code()
    dark = modules(text)
    side = dark.shape[0]
    root = ET.fromstring(render_svg(text).split("?>", 1)[1])
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == f"0 0 {side} {side}"
    assert root.get("width") is None and root.get("height") is None
    assert root.get("shape-rendering") == "crispEdges"
    background, path = list(root)
    assert (background.tag, background.get("fill")) == (f"{SVG}rect", "#fff")
    assert (background.get("width"), background.get("height")) == (str(side), str(side))
    assert path.tag == f"{SVG}path" and path.get("fill") == "#000"
    # Compact: one rectangle per run of dark modules, no per-module elements.
    assert len(render_svg(text)) < 12_000


def test_drawn_one_module_per_pixels_it_is_exactly_the_symbol(page: Page) -> None:
    text = real_code()
    dark = modules(text)
    side = dark.shape[0]
    scale = 5
    image = np.asarray(Image.open(io.BytesIO(drawn(page, render_svg(text), width=side * scale)))
                       .convert("L"))
    assert image.shape == (side * scale, side * scale)
    # Every pixel, not only the module centres: crispEdges leaves no grey seams.
    expected = np.kron(dark, np.ones((scale, scale), dtype=bool))
    assert ((image < 128) == expected).all()
    assert set(np.unique(image).tolist()) <= {0, 255}


@pytest.mark.parametrize(("width", "inline"), [(230, False), (731, False), (333.5, True)])
def test_it_scans_at_any_size(page: Page, width: float, inline: bool) -> None:
    text = real_code()
    png = drawn(page, render_svg(text), width=width, inline=inline)
    with Image.open(io.BytesIO(png)) as image:
        assert abs(image.width - width) <= 1  # the page set the size, not the SVG
    assert [qr.text for qr in decode_image(png)] == [text]


def test_review_13_served_qr_svg_scales_and_scans(stack: Stack, page: Page) -> None:
    stack.enrolled_phone()  # a user with no bound phone has no QR to show
    started, _ = stack.start()
    url = f"{started['links']['self']}/qr.svg"
    served = httpx.get(url, headers={"Qrgate-Browser-Token": started["browser_token"]})
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("image/svg+xml")
    svg = served.text
    assert 'viewBox="0 0 ' in svg and "width=" not in svg.split("<rect", 1)[0]
    for width in (260, 640):
        assert [qr.text for qr in decode_image(drawn(page, svg, width=width))] == [
            started["code"]]


def test_enrolment_qr_svg_scales_and_scans(stack: Stack, page: Page) -> None:
    enrolment = stack.rp.start_enrolment("alice")
    svg = enrolment["qr_svg"]
    assert 'viewBox="0 0 ' in svg
    for width in (250, 500):
        found = decode_image(drawn(page, svg, width=width, inline=True))
        assert [qr.text for qr in found] == [enrolment["code"]]


def rfc6238_code(secret_b32: str, *, now: float) -> str:
    """RFC 6238 with its defaults (HMAC-SHA-1, 30 s, 6 digits), written out here rather than
    taken from the library the server itself uses."""
    counter = int(now) // 30
    digest = hmac.new(base64.b32decode(secret_b32), counter.to_bytes(8, "big"),
                      hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10**6:06d}"


def test_totp_setup_qr_svg_scans_to_the_secret_the_server_checks(stack: Stack,
                                                                  page: Page) -> None:
    setup = stack.rp.setup_totp("carol")  # carol has no phone: her challenges use TOTP
    found = decode_image(drawn(page, setup["qr_svg"], width=320, inline=True))
    assert [qr.text for qr in found] == [setup["uri"]]
    # The Key URI Format an authenticator app reads: otpauth://totp/ISSUER:LOGIN?secret=...
    uri = urlsplit(found[0].text)
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp",
                                                           "/Example Bank:carol")
    query = parse_qs(uri.query)
    assert query["issuer"] == ["Example Bank"]
    # Absent parameters mean SHA-1, 6 digits and 30 s, which is what the server verifies.
    assert not {"algorithm", "digits", "period"} & set(query)
    (secret,) = query["secret"]
    assert len(base64.b32decode(secret)) == 20
    # What the phone computes from the scanned secret approves carol's challenge.
    started, browser = stack.start("carol")
    assert started["verifier"] == "totp"
    approved = stack.rp.submit_otp(started["challenge_id"], rfc6238_code(secret, now=stack.clock()))
    assert approved["state"] == "approved"
    assert browser.status()["state"] == "approved"
