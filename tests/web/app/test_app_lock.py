"""The app lock in Chromium: a service whose policy requires it refuses the unlocked app;
the user locks the app with a PIN and the platform authenticator (Chromium's virtual
WebAuthn authenticator, with user verification, driven over the DevTools protocol), and the
next approval carries the fingerprint's proof; when the fingerprint no longer verifies and
the authenticator is gone, the PIN still unlocks.

WebAuthn wants a domain as RP id, so the server's public URL and the app are on
``http://localhost`` (a secure context for Chromium), not 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from playwright.sync_api import CDPSession, expect

from qrgate.accounts import directory
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.qrimage import render_png
from support.phone_app import WAIT_MS, PhoneApp, enrol
from support.stack import Stack
from support.waiting_page import start_transfer

PIN = "482916"
LOCKED = AppPolicy(number_matching=NumberMatching.ALWAYS, require_app_lock=True)


def on_localhost(stack: Stack) -> str:
    """Serve the stack's links, codes and WebAuthn origin as localhost; require the lock."""
    base_url = stack.base_url.replace("127.0.0.1", "localhost")
    stack.rt.settings = dataclasses.replace(stack.rt.settings, public_url=base_url)
    with stack.rt.engine.begin() as conn:
        org_id = directory.org_id_by_slug(conn, "bank")
        app_id = directory.app_id_by_business_id(conn, org_id=org_id, business_id="web")
        directory.set_app_policy(conn, app_id=app_id, policy=LOCKED)
    return base_url


def virtual_authenticator(app: PhoneApp) -> tuple[CDPSession, str]:
    cdp = app.page.context.new_cdp_session(app.page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
    return cdp, str(added["authenticatorId"])


def scan_transfer(app: PhoneApp, stack: Stack) -> dict[str, Any]:
    """Scan a new transfer and type the number the waiting page would show."""
    started = start_transfer(stack)
    app.scan(render_png(started["code"]))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    app.page.fill("#qg-number", f"{started['number']:02d}")
    return started


def state_of(stack: Stack, started: dict[str, Any]) -> str:
    return str(stack.rp.get_challenge(started["challenge_id"])["state"])


def test_a_locked_app_approves_and_an_unlocked_one_is_refused(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    app = phone_factory(on_localhost(stack))
    cdp, authenticator = virtual_authenticator(app)
    app.open()
    enrol(app, stack)

    # No lock yet: the service refuses the approval and the app says where to set it up.
    started = scan_transfer(app, stack)
    app.page.get_by_role("button", name="Approve").click()
    assert app.refusal_code() == "app_lock_required"
    assert state_of(stack, started) == "scanned"
    app.screenshot("lock-required")
    app.page.get_by_role("link", name=app.t("lock.set_up")).click()

    # A PIN first, then the fingerprint (the virtual authenticator, user verified).
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("lock.title"))
    app.page.fill("#qg-new-pin", PIN)
    app.page.fill("#qg-repeat-pin", PIN)
    app.page.get_by_role("button", name=app.t("lock.set_pin")).click()
    expect(app.page.locator("#qg-screen .result")).to_have_text(app.t("lock.saved"),
                                                                timeout=WAIT_MS)
    assert app.fact(app.t("lock.state")) == app.t("lock.pin_on")
    app.page.fill("#qg-pin", PIN)
    app.page.get_by_role("button", name=app.t("lock.add_webauthn")).click()
    expect(app.page.locator("#qg-screen .result")).to_have_text(app.t("lock.saved"),
                                                                timeout=WAIT_MS)
    assert app.fact(app.t("lock.webauthn")) == app.t("lock.webauthn_on")
    app.screenshot("lock-settings")
    (credential,) = cdp.send("WebAuthn.getCredentials",
                             {"authenticatorId": authenticator})["credentials"]
    assert credential["rpId"] == "localhost"

    # The same kind of request now goes through: the fingerprint is asked for at once.
    started = scan_transfer(app, stack)
    app.page.get_by_role("button", name="Approve").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Approved", timeout=WAIT_MS)
    assert state_of(stack, started) == "approved"

    # A finger the phone no longer recognises: no user verification, no approval.
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator,
                                          "isUserVerified": False})
    started = scan_transfer(app, stack)
    app.page.get_by_role("button", name="Approve").click()
    expect(app.page.locator("#qg-unlock-pin")).to_be_visible()
    refusal = app.page.locator("#qg-screen .unlock .error[data-code]")
    refusal.wait_for(timeout=WAIT_MS)
    # Chromium refuses the assertion itself (NotAllowedError): nothing reaches the server.
    assert refusal.get_attribute("data-code") == "unlock_cancelled"
    assert state_of(stack, started) == "scanned"
    app.screenshot("lock-unlock")

    # The fingerprint is gone altogether: the PIN is the fallback (a wrong one is counted).
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    app.page.fill("#qg-unlock-pin", "111111")
    app.page.get_by_role("button", name=app.t("unlock.with_pin")).click()
    expect(app.page.locator("#qg-screen .error[data-code='wrong_pin']")).to_be_visible(
        timeout=WAIT_MS)
    assert state_of(stack, started) == "scanned"
    app.page.get_by_role("button", name="Approve").click()
    app.page.fill("#qg-unlock-pin", PIN)
    app.page.get_by_role("button", name=app.t("unlock.with_pin")).click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Approved", timeout=WAIT_MS)
    assert state_of(stack, started) == "approved"
    # The refusals above are answers, not faults: the browser logs their statuses only.
    assert [error for error in app.console_errors
            if not error.startswith("Failed to load resource")] == []
