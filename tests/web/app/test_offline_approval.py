"""Offline approval with the phone app a person holds (qrgate.core.offline): the phone loses
its network after enrolment, still opens the app (the service worker's shell) and scans the
waiting page's QR with its camera, verifies it with the keys it holds, asks for the number
the computer shows and shows an 8-digit code; the person types it into the waiting page on
the computer, which then shows the approval. A wrong code is refused there first."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from qrgate.clients.relying_party import QrgateClient
from qrgate.qrimage import render_png
from support.phone_app import WAIT_MS, PhoneApp
from support.stack import Stack
from support.waiting_page import open_page, qr_shown, start_transfer
from web.test_confirm_page_i18n import catalog as page_catalog
from web.test_confirm_page_i18n import screenshot as page_screenshot


def enrol(app: PhoneApp, rp: QrgateClient, login: str) -> None:
    """Bind the phone with the one-time code shown beside the enrolment QR."""
    enrolment = rp.start_enrolment(login)
    app.scan(render_png(enrolment["code"]))
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("enrol.title"))
    app.page.fill("#qg-once", enrolment["confirm_code"])
    app.page.get_by_role("button", name=app.t("enrol.bind")).click()
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("enrol.done_title"),
                                                           timeout=WAIT_MS)


def offline_phone(app: PhoneApp, rp: QrgateClient, login: str) -> None:
    """A phone bound to ``login`` while online, then cut off the network and reopened."""
    app.open()
    enrol(app, rp, login)
    app.page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                               timeout=WAIT_MS)
    app.camera.show_nothing()
    app.page.locator(".tabs a[href='#/']").click()
    app.page.context.set_offline(True)
    app.page.reload()  # from the service worker's cache: no network at all
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("home.title"), timeout=WAIT_MS)
    expect(app.page.locator(".entry-title")).to_have_text([login])


def test_an_offline_approval_typed_into_the_waiting_page(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    offline_phone(app, stack.rp, "alice")

    started = start_transfer(stack)
    open_page(page, started)
    app.scan(qr_shown(page))  # the scan request fails: the app offers the offline code
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("offline.title"),
                                                           timeout=WAIT_MS)
    assert app.fact(app.t("field.operation")) == "Transfer"
    assert app.fact(app.t("field.amount")) == "2500.00 EUR"
    assert app.fact(app.t("field.account")) == "alice"
    # The number the computer shows, typed on the phone, goes into the code.
    number = page.locator("#qg-number-value").inner_text()
    app.page.fill("#qg-number", number)
    app.page.get_by_role("button", name=app.t("offline.show")).click()
    shown = app.page.locator("#qg-offline-code")
    expect(shown).to_be_visible()
    code = shown.get_attribute("data-code")
    assert code is not None and len(code) == 8 and code.isdigit()
    assert shown.inner_text() == f"{code[:4]} {code[4:]}"
    app.screenshot("offline-code")

    # The person mistypes it first: the page says so and the challenge still waits.
    texts = page_catalog("en")
    page.locator("#qg-offline summary").click()
    page.fill("#qg-offline-code", f"{(int(code) + 1) % 10**8:08d}")
    page.get_by_role("button", name=texts["offline.submit"]).click()
    expect(page.locator("#qg-offline-message")).to_have_text(texts["error.wrong_offline_code"],
                                                             timeout=WAIT_MS)
    page_screenshot(page, "confirm-en-offline-wrong-code")
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "pending"

    # Typed as shown, with its space: approved, as if the phone had been online.
    page.fill("#qg-offline-code", shown.inner_text())
    page.get_by_role("button", name=texts["offline.submit"]).click()
    expect(page.locator("#qg-status")).to_have_text(texts["state.approved"], timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_have_text(texts["reason.approved_offline"])
    expect(page.locator("#qg-offline")).to_be_hidden()
    page_screenshot(page, "confirm-en-offline-approved")
    challenge = stack.rp.get_challenge(started["challenge_id"])
    assert (challenge["state"], challenge["reason"]) == ("approved", "approved_offline")
    # The browser logs each request the phone could not send; nothing else went wrong.
    assert [error for error in app.console_errors
            if "net::ERR_INTERNET_DISCONNECTED" not in error] == []


def test_without_number_matching_the_code_shows_at_once(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    shop = stack.other  # its policy has no number matching
    app = phone_factory(stack.base_url)
    offline_phone(app, shop.rp, "bob")
    started = shop.rp.start_confirm("bob", operation="login")
    assert started["number"] is None
    open_page(page, started)
    app.scan(qr_shown(page))
    shown = app.page.locator("#qg-offline-code")
    expect(shown).to_be_visible(timeout=WAIT_MS)
    expect(app.page.locator("#qg-number")).to_have_count(0)
    code = shown.get_attribute("data-code")
    assert code is not None
    # The relying party may forward the code instead of the waiting page.
    assert shop.rp.forward_offline_code(started["challenge_id"], code)["state"] == "approved"
    expect(page.locator("#qg-status")).to_have_text(page_catalog("en")["state.approved"],
                                                    timeout=WAIT_MS)


def test_when_the_decision_cannot_be_sent_the_app_offers_the_code(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack.rp, "bob")
    started = stack.rp.start_confirm("bob", operation="transfer", amount="2500.00",
                                     currency="EUR")
    open_page(page, started)
    app.scan(qr_shown(page))  # online: the scan gets through
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("approve.title"))
    number = page.locator("#qg-number-value").inner_text()
    app.page.fill("#qg-number", number)
    app.page.context.set_offline(True)  # then the network goes
    app.page.get_by_role("button", name=app.t("approve.approve")).click()
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("offline.title"),
                                                           timeout=WAIT_MS)
    # The number typed for the decision is kept: the code shows with one tap.
    expect(app.page.locator("#qg-number")).to_have_value(number)
    app.page.get_by_role("button", name=app.t("offline.show")).click()
    code = app.page.locator("#qg-offline-code").get_attribute("data-code")
    assert code is not None
    texts = page_catalog("en")
    page.locator("#qg-offline summary").click()
    page.fill("#qg-offline-code", code)
    page.get_by_role("button", name=texts["offline.submit"]).click()
    expect(page.locator("#qg-status")).to_have_text(texts["state.approved"], timeout=WAIT_MS)
