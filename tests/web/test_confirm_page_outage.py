"""Review 9 in the browser: while the database is away the waiting page says it is still
trying (its event stream ended cleanly, it polls), and once the database is back it
shows the result pushed again. PostgreSQL behind a proxy the test cuts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import make_url

from qrgate.clients.phone import PhoneSimulator
from support.stack import PASSWORD, Stack
from support.tcp_proxy import proxied

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


def test_review_9_the_waiting_page_rides_out_a_database_outage(
        stack_factory: Any, database_url: str, page: Page) -> None:
    url = make_url(database_url)
    with proxied(str(url.host), int(url.port or 5432)) as proxy:
        stack: Stack = stack_factory(via=url.set(port=proxy.port).render_as_string(
            hide_password=False))
        stack.rt.clock = time.time
        phone = PhoneSimulator(stack.base_url, clock=time.time)
        stack.closers.append(phone.close)
        phone.enrol(stack.rp.start_enrolment("alice")["code"], password=PASSWORD)
        started = stack.rp.start_confirm("alice", operation="transfer", amount="25.00",
                                         currency="EUR")
        page.goto(f"{started['links']['page']}#bt={started['browser_token']}")
        status, error = page.locator("#qg-status"), page.locator("#qg-error")
        expect(status).to_have_text("Scan with the qrgate app", timeout=5_000)

        proxy.cut()
        expect(error).to_have_text("Cannot reach the server right now; still trying…",
                                   timeout=15_000)
        page.screenshot(path=str(_screenshots() / "confirm-outage.png"))

        proxy.restore()
        phone.scan_text(started["code"])
        phone.decide(started["challenge_id"], approve=True)
        expect(status).to_have_text("Approved", timeout=15_000)
        expect(error).to_be_hidden()
        page.screenshot(path=str(_screenshots() / "confirm-after-outage.png"))


def _screenshots() -> Path:
    folder = Path(__file__).parent / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder
