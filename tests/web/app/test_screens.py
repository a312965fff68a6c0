"""Every screen of the phone app, in English and in Simplified Chinese, at 390x844 (a
common phone), saved under tests/web/screenshots/ to be looked at. Each step also checks
the screen speaks the phone's language (its heading comes from that catalog)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from qrgate.qrimage import render_png
from support.phone_app import WAIT_MS, PhoneApp
from support.stack import PASSWORD, Stack


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: these are pictures of screens; the flows run on both databases in
    test_confirm_in_app.py and test_txsign_in_app.py."""
    yield f"sqlite:///{(tmp_path / 'screens.db').as_posix()}"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_screen_in_both_languages(
    lang: str, app_stack: tuple[Stack, Callable[[], None]],
    phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url, lang)
    heading = app.page.locator("#qg-screen h1")

    def shot(name: str, title_key: str, **params: object) -> None:
        expect(heading).to_have_text(app.t(title_key, **params), timeout=WAIT_MS)
        assert app.page.locator("html").get_attribute("lang") == lang
        app.screenshot(name)

    app.open()
    shot("home-empty", "home.title")
    app.camera.show_nothing()
    app.page.locator(".tabs a[href='#/scan']").click()
    app.page.wait_for_function("() => document.querySelector('video')?.readyState >= 2",
                               timeout=WAIT_MS)
    shot("scan", "scan.title")

    app.scan(render_png(stack.rp.start_enrolment("alice")["code"]))
    shot("enrol", "enrol.title")
    app.page.fill("#qg-password", PASSWORD)
    app.page.locator("form.form button[type=submit]").click()
    shot("enrolled", "enrol.done_title")

    started = stack.rp.start_confirm("alice", operation="transfer", amount="2500.00",
                                     currency="EUR", content="to Bob, invoice 42",
                                     requester_ip="198.51.100.20",
                                     requester_ua="Firefox on Linux")
    app.scan(render_png(started["code"]))
    shot("approve", "approve.title")
    app.page.fill("#qg-number", f"{started['number']:02d}")
    app.page.locator("button.approve").click()
    shot("approved", "result.approved")

    started = stack.rp.start_confirm("alice", operation="login")
    app.scan(render_png(started["code"]))
    app.page.locator("button.decline").click()
    shot("declined", "result.denied")

    app.scan(render_png("QG1:NOT+A+REAL+CODE"))
    expect(app.page.locator("#qg-screen .status .error")).to_be_visible()
    app.screenshot("refused")

    app.page.locator(".tabs a[href='#/history']").click()
    expect(app.page.locator(".history-item")).to_have_count(2, timeout=WAIT_MS)
    shot("history", "history.title")

    app.page.locator(".tabs a[href='#/']").click()
    app.page.locator(".entry").first.click()
    expect(app.page.locator(".device-status")).to_have_text(app.t("device.active"),
                                                            timeout=WAIT_MS)
    expect(heading).to_have_text("alice")  # an account's heading is its login
    app.screenshot("account")

    app.scan(render_png(stack.rp.enrol_token("alice")["code"]))
    shot("token-enrol", "token.title")
    app.page.locator("#qg-screen button.primary").click()
    expect(app.page.locator("#qg-screen .result")).to_have_text(app.t("token.active"),
                                                                timeout=WAIT_MS)
    app.screenshot("token")

    transaction = stack.rp.start_transaction("alice", demand="pay 120.00 EUR to ACME",
                                             comment="invoice 7")
    app.scan(stack.rp.transaction_png(transaction["transaction_id"], "challenge"))
    shot("sign", "sign.title")
    app.page.locator("#qg-screen .actions button.primary").click()
    shot("response", "sign.response_title")
    response = app.page.locator("#qg-response").inner_text().replace(" ", "")
    stack.rp.submit_response(transaction["transaction_id"], response)

    app.scan(stack.rp.transaction_png(transaction["transaction_id"], "chain"))
    shot("chain", "chain.title")
