"""Storage that lasts: when the browser deletes the app's keys (as Chromium does under storage
pressure and Safari after seven days unused), the app notices at its next start, says which
accounts were lost and how to enrol again; an account unbound on purpose is no such loss."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import expect

from qrgate.clients.phone import PhoneSimulator
from qrgate.http.enrolled_cookie import DEVICES, MAX_IDS
from support.phone_app import WAIT_MS, PhoneApp, add_token, enrol
from support.stack import Stack


def evict(app: PhoneApp) -> None:
    """What the browser does to an evicted origin: its IndexedDB is gone, cookies stay."""
    session = app.page.context.new_cdp_session(app.page)
    session.send("Storage.clearDataForOrigin",
                 {"origin": app.base_url, "storageTypes": "indexeddb"})
    session.detach()


def test_evicted_keys_are_noticed_and_enrolment_starts_again(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack)
    add_token(app, stack, "alice")
    app.page.locator(".tabs a[href='#/']").click()
    notice = app.page.locator(".notice.evicted")
    expect(app.page.locator(".entries li")).to_have_count(2, timeout=WAIT_MS)
    expect(notice).to_have_count(0)

    evict(app)
    app.open()
    expect(notice).to_be_visible(timeout=WAIT_MS)
    expect(notice).to_contain_text(app.t("home.evicted_title"))
    # The account and the token.
    expect(notice).to_contain_text(app.t("home.evicted", count=2))
    expect(app.page.locator(".entries li")).to_have_count(0)
    app.screenshot("evicted")

    app.page.get_by_role("button", name=app.t("home.evicted_ok")).click()
    expect(notice).to_have_count(0)
    app.open()
    expect(app.page.locator("#qg-screen .empty")).to_be_visible(timeout=WAIT_MS)
    expect(notice).to_have_count(0)

    # Enrolling again works and is not itself a loss.
    enrol(app, stack)
    app.open()
    expect(app.page.locator(".entries li")).to_have_count(1, timeout=WAIT_MS)
    expect(notice).to_have_count(0)
    assert app.console_errors == []


def test_an_account_unbound_on_purpose_is_not_reported_lost(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack)
    app.page.locator(".tabs a[href='#/']").click()
    app.page.locator(".entries a").first.click()
    app.page.once("dialog", lambda dialog: dialog.accept())
    app.page.get_by_role("button", name=app.t("account.unbind")).click()
    expect(app.page.locator("#qg-screen .empty")).to_be_visible(timeout=WAIT_MS)
    app.open()
    expect(app.page.locator("#qg-screen .empty")).to_be_visible(timeout=WAIT_MS)
    expect(app.page.locator(".notice.evicted")).to_have_count(0)
    assert stack.rp.list_devices("alice")[0]["status"] == "unbound"


def test_the_enrolment_cookie_lists_this_browsers_latest_devices(
    app_stack: tuple[Stack, Callable[[], None]],
) -> None:
    """What the app compares its accounts with: every device this browser enrolled, the
    latest sixteen, readable by the app's script, never sent to another site."""
    stack, _ = app_stack
    phone = PhoneSimulator(stack.base_url, clock=time.time)
    stack.closers.append(phone.close)
    enrolment = stack.rp.start_enrolment("alice")
    phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
    cookie = next(c for c in phone._http.cookies.jar if c.name == DEVICES)
    assert cookie.value == phone.device_id and cookie.path == "/"
    assert cookie.get_nonstandard_attr("SameSite") == "strict"
    assert not cookie.has_nonstandard_attr("HttpOnly")
    devices = [phone.device_id]
    for _ in range(MAX_IDS):
        enrolment = stack.rp.start_enrolment("alice")
        devices.append(phone.enrol(enrolment["code"],
                                   confirm_code=enrolment["confirm_code"])["device_id"])
    assert phone._http.cookies[DEVICES].split(".") == devices[-MAX_IDS:]
