"""The hosted waiting page of scheme C, in a real Chromium against a real server.

The phone simulator reads the QR from a screenshot of what the browser rendered, so these
tests check what a person would see and scan, not what the server meant to send. The page
counts down and rotates in real time, so the server and the phone use the real clock here.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from qrgate.clients.relying_party import ApiError
from qrgate.web.pages import STATIC_DIR
from support.stack import Stack
from support.waiting_page import open_page, realtime, scanned_qr, start_transfer

WAIT_MS = 5_000
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def shown_seq(page: Page) -> str:
    src = page.locator("#qg-qr-img").get_attribute("src") or ""
    return src.rpartition("seq=")[2]


def policy_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if "Content Security Policy" in message.text else None)
    return found


def test_whole_flow_shows_number_and_pushed_approval(stack: Stack, page: Page) -> None:
    phone = realtime(stack)
    violations = policy_violations(page)
    started = start_transfer(stack, number_matching=True)
    status_url = started["links"]["self"]
    status_reads: list[str] = []
    page.on("request", lambda request: status_reads.append(request.url)
            if request.url == status_url else None)

    open_page(page, started)
    status = page.locator("#qg-status")
    expect(status).to_have_text("Scan with the qrgate app", timeout=WAIT_MS)
    # The binding secret left the address bar and now lives only in an HttpOnly cookie.
    assert "#" not in page.url and started["browser_token"] not in page.url
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == f"/v1/confirm/challenges/{started['challenge_id']}"

    expect(page.locator("#qg-amount")).to_have_text("2500.00 EUR")
    expect(page.locator("#qg-operation")).to_have_text("Transfer")
    expect(page.locator("#qg-content")).to_have_text("to Bob, invoice 42")
    expect(page.locator("#qg-countdown")).to_contain_text("Expires in 4:")
    number = page.locator("#qg-number-value")
    expect(number).to_be_visible()
    shown_number = int(number.inner_text())
    assert shown_number == started["number"]

    context = phone.scan_text(scanned_qr(page))
    assert context["challenge_id"] == started["challenge_id"]
    expect(status).to_have_text("Scanned — confirm on your phone", timeout=WAIT_MS)
    expect(page.locator("#qg-qr")).to_be_hidden()
    expect(number).to_be_visible()  # the phone asks for it only now

    phone.decide(started["challenge_id"], approve=True, number=shown_number)
    expect(status).to_have_text("Approved", timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_contain_text("You approved this")
    expect(page.locator("#qg-number")).to_be_hidden()
    expect(page.locator("#qg-countdown")).to_be_hidden()
    assert violations == []
    # Pushed, not polled: the page read the status once, then only listened.
    assert status_reads == [status_url]


def test_page_rotates_the_code_and_the_old_one_dies(
    stack_factory: Callable[..., Stack], page: Page
) -> None:
    stack = stack_factory(code_ttl=10)
    phone = realtime(stack)
    started = start_transfer(stack)
    open_page(page, started)
    first = scanned_qr(page)
    first_seq = shown_seq(page)

    # The first code lives 10 s; the page must replace it before then, unasked.
    page.wait_for_function(
        f"() => !document.getElementById('qg-qr-img').src.endsWith('seq={first_seq}')",
        timeout=12_000)
    # Straight away, while the old code has not yet expired on its own: only the rotation
    # can be what kills it.
    with pytest.raises(ApiError) as refused:
        phone.scan_text(first)
    assert (refused.value.status, refused.value.code) == (410, "code_superseded")

    second = scanned_qr(page)
    old, new = phone.read_confirm_code(first), phone.read_confirm_code(second)
    assert new.challenge_id == old.challenge_id
    assert new.verification_code != old.verification_code
    assert phone.scan_text(second)["challenge_id"] == started["challenge_id"]
    expect(page.locator("#qg-status")).to_have_text("Scanned — confirm on your phone",
                                                    timeout=WAIT_MS)


def test_without_the_token_the_page_explains_and_headers_are_strict(
    stack: Stack, page: Page
) -> None:
    realtime(stack)
    started = start_transfer(stack)

    response = page.goto(started["links"]["page"])
    assert response is not None and response.status == 200
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    policy = {part.split()[0]: part.split()[1:] for part in
              headers["content-security-policy"].split("; ")}
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert policy[directive] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'none'"]

    expect(page.locator("#qg-status")).to_have_text("This confirmation cannot be shown here",
                                                    timeout=WAIT_MS)
    expect(page.locator("#qg-error")).to_contain_text("in the same browser")
    expect(page.locator("#qg-qr")).to_be_hidden()
    expect(page.locator("#qg-number")).to_be_hidden()

    # Another browser's token (or a made-up one) is no better than none. (Leave first: a
    # change of fragment alone does not reload a page.)
    page.goto("about:blank")
    page.goto(f"{started['links']['page']}#bt=not-the-token")
    expect(page.locator("#qg-error")).to_contain_text("in the same browser", timeout=WAIT_MS)
    assert "not-the-token" not in page.url

    # The page's modules: one served as anything but JavaScript would not run at all, and
    # none names another site (the policy would refuse it anyway).
    modules = sorted((STATIC_DIR / "confirm").glob("*.js"))
    assert "main.js" in {module.name for module in modules}
    for module in modules:
        script = httpx.get(f"{stack.base_url}/static/confirm/{module.name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert script.headers["x-content-type-options"] == "nosniff"
        assert "://" not in script.text, module.name
    for bad_id in ("NOT-AN-ID", "0" * 31, "A" * 32):
        missing = httpx.get(f"{stack.base_url}/confirm/{bad_id}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "challenge_not_found"


def test_denial_is_shown_as_denied_even_without_the_event_stream(
    stack: Stack, page: Page
) -> None:
    phone = realtime(stack)
    started = start_transfer(stack)
    # A proxy that breaks event streams: the page must fall back to polling.
    page.route("**/events", lambda route: route.abort())
    open_page(page, started)
    status = page.locator("#qg-status")
    expect(status).to_have_text("Scan with the qrgate app", timeout=WAIT_MS)
    expect(page.locator("#qg-number")).to_be_hidden()  # no number matching asked for

    phone.scan_text(scanned_qr(page))
    expect(status).to_have_text("Scanned — confirm on your phone", timeout=WAIT_MS)
    phone.decide(started["challenge_id"], approve=False)
    expect(status).to_have_text("Denied", timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_contain_text("You declined this on your phone")
    expect(page.locator("#qg-qr")).to_be_hidden()
