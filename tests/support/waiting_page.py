"""Scheme C's hosted waiting page as the browser tests use it: a transfer started by the
relying party, the page opened with its browser token, the QR code it shows."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page

from qrgate.clients.phone import PhoneSimulator
from qrgate.qrimage import decode_image
from support.stack import PASSWORD, Stack

WAIT_MS = 5_000


def realtime(stack: Stack, login: str = "alice") -> PhoneSimulator:
    """Put the server on the real clock (the page counts down in real time) and bind a
    phone that uses it too."""
    stack.rt.clock = time.time
    phone = PhoneSimulator(stack.base_url, name="test phone", clock=time.time)
    stack.closers.append(phone.close)
    phone.enrol(stack.rp.start_enrolment(login)["code"], password=PASSWORD)
    return phone


def start_transfer(stack: Stack, **extra: Any) -> dict[str, Any]:
    """Alice's transfer of 2500.00 EUR to Bob, asked from Firefox at 198.51.100.20."""
    return stack.rp.start_confirm(
        "alice", operation="transfer", amount="2500.00", currency="EUR",
        source="web/transfers", content="to Bob, invoice 42",
        requester_ip="198.51.100.20", requester_ua="Firefox on Linux", **extra)


def open_page(page: Page, started: dict[str, Any]) -> None:
    page.goto(f"{started['links']['page']}#bt={started['browser_token']}")


def qr_shown(page: Page) -> bytes:
    """A screenshot of the QR code once the page shows it: what a phone's camera sees."""
    page.wait_for_function(
        "() => { const img = document.getElementById('qg-qr-img');"
        " return img.complete && img.naturalWidth > 0 && img.checkVisibility(); }",
        timeout=WAIT_MS)
    return page.locator("#qg-qr-img").screenshot()


def scanned_qr(page: Page) -> str:
    """The text of the QR code as the browser shows it: a screenshot, really decoded."""
    found = decode_image(qr_shown(page))
    assert len(found) == 1, "the page should show exactly one readable QR code"
    return found[0].text
