"""Scheme C with the phone app a person holds: a computer shows the waiting page, the phone
(a second Chromium) scans it with its camera, verifies the code, shows the context and
decides. Nothing is scripted inside the app: the test only points the camera and taps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page, expect

from qrgate.cli.admin import rotate_keys
from qrgate.core.codes import PREFIX
from qrgate.core.cose import parse_own_sign1, sign1
from qrgate.qrimage import render_png
from support.phone_app import WAIT_MS, PhoneApp, enrol
from support.stack import Stack, serve_stack
from support.waiting_page import open_page, qr_shown, start_transfer


def forged(code: str) -> str:
    """The code with its amount changed and signed again by a key that is not the
    server's, under the server's key id: what a phisher who copies a code can make."""
    message, kid = parse_own_sign1(base45.b45decode(code[len(PREFIX):]))
    claims = cbor2.loads(message.payload)
    claims[15] = "1.00"
    impostor = ec.generate_private_key(ec.SECP256R1())
    raw = sign1(payload=cbor2.dumps(claims, canonical=True), private_key=impostor, kid=kid)
    return PREFIX + base45.b45encode(raw).decode()


@pytest.fixture
def alice_app(app_stack: tuple[Stack, Callable[[], None]],
              phone_factory: Callable[..., PhoneApp]) -> PhoneApp:
    """Alice's phone with the app open, bound to her account."""
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack)
    return app


def test_enrol_match_the_number_approve_and_deny(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    expect(app.page.locator("#qg-screen .empty")).to_be_visible()
    enrol(app, stack)
    (device,) = stack.rp.list_devices("alice")
    assert device["name"] == "Alice's phone" and device["status"] == "active"

    started = start_transfer(stack)
    open_page(page, started)
    app.scan(qr_shown(page))  # the QR as the screen shows it
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    assert app.fact("Operation") == "Transfer"
    assert app.fact("Amount") == "2500.00 EUR"
    assert app.fact("Details") == "to Bob, invoice 42"
    assert app.fact("Service") == "Example Bank · Web banking"
    assert app.fact("Website") == "https://bank.example"
    assert app.fact("Requested from") == "Firefox on Linux"
    assert "198.51.100.20" in app.fact("Place")
    expect(app.page.locator(".countdown")).to_contain_text("s left")
    # Decline is the default: it has the focus, Enter on it declines.
    expect(app.page.get_by_role("button", name="Decline")).to_be_focused()
    expect(page.locator("#qg-status")).to_have_text("Scanned — confirm on your phone",
                                                    timeout=WAIT_MS)

    number = page.locator("#qg-number-value").inner_text()
    for digit in number:  # picked on the app's digit pad
        app.page.locator(".digit-pad button", has_text=digit).first.click()
    expect(app.page.locator("#qg-number")).to_have_value(number)
    app.page.get_by_role("button", name="Approve").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Approved", timeout=WAIT_MS)
    expect(page.locator("#qg-status")).to_have_text("Approved", timeout=WAIT_MS)
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "approved"

    started = start_transfer(stack)
    open_page(page, started)
    app.scan(qr_shown(page))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    app.page.keyboard.press("Enter")  # on the focused Decline
    expect(app.page.locator("#qg-screen h1")).to_have_text("Declined", timeout=WAIT_MS)
    expect(page.locator("#qg-status")).to_have_text("Denied", timeout=WAIT_MS)
    assert stack.rp.get_challenge(started["challenge_id"])["reason"] == "denied_by_user"

    app.page.locator(".tabs a[href='#/history']").click()
    items = app.page.locator(".history-item")
    expect(items).to_have_count(2, timeout=WAIT_MS)
    app.page.fill("#qg-search", "transfer")  # the server searches its own words
    expect(items).to_have_count(2, timeout=WAIT_MS)
    app.page.fill("#qg-search", "no such operation")
    expect(items).to_have_count(0, timeout=WAIT_MS)


def test_a_wrong_number_cancels_and_the_app_says_why(
    app_stack: tuple[Stack, Callable[[], None]], alice_app: PhoneApp,
    page: Page,
) -> None:
    stack, _ = app_stack
    app = alice_app
    started = start_transfer(stack)
    open_page(page, started)
    app.scan(qr_shown(page))
    shown = int(page.locator("#qg-number-value").inner_text())
    app.page.fill("#qg-number", f"{(shown + 1 - 10) % 90 + 10:02d}")
    app.page.press("#qg-number", "Enter")  # decides nothing: only a pressed button does
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "scanned"
    app.page.get_by_role("button", name="Approve").click()
    assert app.refusal_code() == "number_mismatch"
    expect(page.locator("#qg-status")).to_have_text("Rejected", timeout=WAIT_MS)


def test_a_forged_or_expired_code_is_refused_offline_without_a_request(
    app_stack: tuple[Stack, Callable[[], None]], alice_app: PhoneApp,
) -> None:
    stack, stop = app_stack
    app = alice_app
    genuine = start_transfer(stack)["code"]
    stop()  # no server: whatever the app decides, it decides alone

    before = len(app.api_calls())
    app.scan(render_png(forged(genuine)))
    assert app.refusal_code() == "bad_signature"
    expect(app.page.locator("#qg-screen .error")).to_contain_text("forged")
    assert app.api_calls()[before:] == []

    # The phone's clock, 10 minutes on (timers still run): the code has expired.
    app.page.clock.set_system_time(time.time() + 600)
    app.scan(render_png(genuine))
    assert app.refusal_code() == "expired"
    assert app.api_calls()[before:] == []


def test_the_app_opens_offline_with_its_accounts(
    app_stack: tuple[Stack, Callable[[], None]], alice_app: PhoneApp,
) -> None:
    _, stop = app_stack
    app = alice_app
    app.page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                               timeout=WAIT_MS)
    app.page.locator(".tabs a[href='#/']").click()
    stop()
    app.page.reload()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Your accounts", timeout=WAIT_MS)
    expect(app.page.locator(".entry-title")).to_have_text(["alice"])


def test_one_app_holds_two_accounts_and_unbinds_one(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    tmp_path: Path,
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    enrol(app, stack, "alice")

    # Carol has no password: the one-time code shown with her QR confirms. Her QR comes
    # as a screenshot picked from the phone's photos, not through the camera.
    enrolment = stack.rp.start_enrolment("carol")
    picture = tmp_path / "enrolment.png"
    picture.write_bytes(render_png(enrolment["code"]))
    app.camera.show_nothing()  # the camera sees no code meanwhile
    app.page.locator(".tabs a[href='#/scan']").click()
    app.page.locator("#qg-file").set_input_files(picture)
    expect(app.page.locator("#qg-screen h1")).to_have_text("Add an account", timeout=WAIT_MS)
    assert app.fact("Account") == "carol"
    app.page.fill("#qg-once", enrolment["confirm_code"])
    app.page.get_by_role("button", name="Bind this phone").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Phone bound", timeout=WAIT_MS)

    # A confirmation for Carol goes to Carol's account; its text pasted, as from a link.
    started = stack.rp.start_confirm("carol", operation="login")
    app.page.locator(".tabs a[href='#/scan']").click()
    app.page.locator(".fallbacks summary").click()
    app.page.fill("#qg-paste", started["code"])
    app.page.get_by_role("button", name="Open").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    assert app.fact("Account") == "carol"
    app.page.fill("#qg-number", f"{started['number']:02d}")
    app.page.get_by_role("button", name="Approve").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Approved", timeout=WAIT_MS)

    app.page.locator(".tabs a[href='#/']").click()
    expect(app.page.locator(".entry-title")).to_have_text(["alice", "carol"])
    app.page.locator(".entry", has_text="alice").click()
    expect(app.page.locator(".device-status")).to_have_text("Active", timeout=WAIT_MS)
    app.page.once("dialog", lambda dialog: dialog.accept())
    app.page.get_by_role("button", name="Unbind this phone").click()
    expect(app.page.locator(".entry-title")).to_have_text(["carol"], timeout=WAIT_MS)
    (alice_device,) = stack.rp.list_devices("alice")
    assert alice_device["status"] == "unbound"
    assert stack.rp.list_devices("carol")[0]["status"] == "active"


def test_a_code_under_a_rotated_key_makes_the_app_fetch_the_keys_once(
    app_stack: tuple[Stack, Callable[[], None]], alice_app: PhoneApp,
    page: Page,
) -> None:
    stack, _ = app_stack
    app = alice_app
    rotate_keys(stack.rt)  # what `qrgate admin keys rotate` runs
    started = start_transfer(stack)
    before = len(app.api_calls())
    app.scan(render_png(started["code"]))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    fetched = [url for url in app.api_calls()[before:] if url.endswith("/v1/keys")]
    assert len(fetched) == 1
    assert app.console_errors == []


def test_a_code_from_a_node_with_another_issuer_is_refused_on_the_phone(
    app_stack: tuple[Stack, Callable[[], None]], alice_app: PhoneApp, tmp_path: Path,
    database_url: str,
) -> None:
    stack, _ = app_stack
    misconfigured, close = serve_stack(home=tmp_path, database_url=database_url,
                                       clock=stack.clock, join=stack, issuer="qrgate-staging")
    misconfigured.rt.clock = time.time
    try:
        started = start_transfer(misconfigured)
    finally:
        close()
    before = len(alice_app.api_calls())
    alice_app.scan(render_png(started["code"]))
    assert alice_app.refusal_code() == "wrong_issuer"
    assert alice_app.api_calls()[before:] == []
