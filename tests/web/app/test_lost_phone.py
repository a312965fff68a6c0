"""A lost phone replaced with a temporary access pass, in Chromium: two phones (two browser
contexts, the fake camera) and the computer's waiting page. Alice's first phone approves;
she loses it; the operator issues a pass (``qrgate admin user access-pass``); her new phone
enrols with it from the home screen; the lost phone is refused from then on, the new one
approves. The pass, used again or past its time, is refused with its code."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner
from playwright.sync_api import Page, expect
from sqlalchemy import update

from qrgate.cli.main import cli
from qrgate.storage.models import access_passes
from support.phone_app import WAIT_MS, PhoneApp, enrol
from support.stack import Stack
from support.waiting_page import open_page, qr_shown, start_transfer


def approve(app: PhoneApp, page: Page, started: dict[str, object]) -> None:
    """Scan the waiting page's QR, type the number it shows, approve."""
    open_page(page, started)
    app.scan(qr_shown(page))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Confirm this request?")
    app.page.fill("#qg-number", page.locator("#qg-number-value").inner_text())
    app.page.get_by_role("button", name="Approve").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Approved", timeout=WAIT_MS)
    expect(page.locator("#qg-status")).to_have_text("Approved", timeout=WAIT_MS)


def operator_issues_a_pass(stack: Stack) -> dict[str, str]:
    settings = stack.rt.settings
    result = CliRunner().invoke(
        cli, ["admin", "user", "access-pass", "--org", "bank", "--login", "alice"],
        env={"QRGATE_DATA_DIR": str(settings.data_dir),
             "QRGATE_DATABASE_URL": settings.resolved_database_url})
    assert result.exit_code == 0, result.output
    issued: dict[str, str] = json.loads(result.output)
    return issued


def type_pass(app: PhoneApp, access_pass: str, name: str = "") -> None:
    """From the home screen: the lost-phone link, the pass as a person types it, Bind."""
    app.page.locator(".tabs a[href='#/']").click()
    app.page.get_by_role("link", name="Lost your phone? Enrol with a temporary access pass").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Enrol with a temporary access pass")
    app.page.fill("#qg-pass", access_pass)
    if name:
        app.page.fill("#qg-name", name)
    app.page.get_by_role("button", name="Bind this phone").click()


def test_a_lost_phone_replaced_with_a_temporary_access_pass(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    page: Page,
) -> None:
    stack, _ = app_stack
    lost = phone_factory(stack.base_url)
    lost.open()
    enrol(lost, stack)
    approve(lost, page, start_transfer(stack))

    issued = operator_issues_a_pass(stack)
    new = phone_factory(stack.base_url)
    new.open()
    # Typed as read out over the phone: lower case, spaces instead of dashes.
    type_pass(new, issued["access_pass"].lower().replace("-", " "), name="Alice's new phone")
    expect(new.page.locator("#qg-screen h1")).to_have_text("Phone bound", timeout=WAIT_MS)
    expect(new.page.locator(".result")).to_have_text(new.t("enrol.done", login="alice"))
    new.screenshot("lost-phone-bound")
    devices = {d["name"]: d["status"] for d in stack.rp.list_devices("alice")}
    assert devices == {"Alice's phone": "unbound", "Alice's new phone": "active"}

    # The new phone lists the account as a scanned enrolment would.
    new.page.locator(".tabs a[href='#/']").click()
    expect(new.page.locator(".entry-title")).to_have_text(["alice"])
    expect(new.page.locator(".entry-sub")).to_contain_text(stack.rt.settings.issuer)
    new.screenshot("lost-phone-home")

    started = start_transfer(stack)
    open_page(page, started)
    lost.scan(qr_shown(page))
    assert lost.refusal_code() == "device_unbound"
    lost.page.locator(".tabs a[href='#/']").click()  # away from the camera
    approve(new, page, started)
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "approved"
    new.screenshot("lost-phone-approved")

    # The pass again, on the lost phone's app: refused, used.
    type_pass(lost, issued["access_pass"])
    assert lost.refusal_code() == "access_pass_used"
    expect(lost.page.locator("#qg-screen .error")).to_have_text(
        lost.t("error.access_pass_used"))

    # A later pass, past its time before it is typed: refused, expired.
    later = operator_issues_a_pass(stack)
    with stack.rt.engine.begin() as conn:
        conn.execute(update(access_passes).where(
            access_passes.c.id == later["access_pass_id"]).values(expires_at=0.0))
    lost.page.fill("#qg-pass", later["access_pass"])
    lost.page.get_by_role("button", name="Bind this phone").click()
    expect(lost.page.locator("#qg-screen .error")).to_have_text(
        lost.t("error.access_pass_expired"), timeout=WAIT_MS)
    assert lost.refusal_code() == "access_pass_expired"
    lost.screenshot("lost-phone-pass-expired")

    # Nothing bound by the refused attempts; no script error on either phone, but the
    # browser's own line for each refused request (a 401, a 409, a 410).
    assert len(stack.rp.list_devices("alice")) == 2
    assert new.console_errors == []
    assert all("Failed to load resource" in line for line in lost.console_errors), (
        lost.console_errors)
