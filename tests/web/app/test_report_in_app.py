""""This wasn't me" from the phone app: a user who did not start a request says so on the
phone; the waiting page sees it denied and the next challenge for that user is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from qrgate.clients.relying_party import ApiError
from support.phone_app import WAIT_MS, PhoneApp, enrol
from support.stack import Stack
from support.waiting_page import open_page, qr_shown, start_transfer


def test_a_report_blocks_the_next_challenge(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack)

    started = start_transfer(stack)
    open_page(page, started)
    app.scan(qr_shown(page))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    # No number needed to say no.
    app.page.get_by_role("button", name="I did not start this").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Reported", timeout=WAIT_MS)
    expect(app.page.locator(".result")).to_contain_text("paused")
    app.screenshot("reported")
    expect(page.locator("#qg-status")).to_have_text("Denied", timeout=WAIT_MS)
    challenge = stack.rp.get_challenge(started["challenge_id"])
    assert (challenge["state"], challenge["reason"]) == ("denied", "reported_by_user")

    with pytest.raises(ApiError) as refused:
        start_transfer(stack)
    assert (refused.value.status, refused.value.code) == (423, "user_blocked")
    assert app.console_errors == []
