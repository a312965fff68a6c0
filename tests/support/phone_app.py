"""The qrgate phone app (``/app/``) driven in Chromium as a person uses it: it scans with
the camera (the fake capture device of :mod:`support.camera`), reads and taps the screen."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from playwright.sync_api import Page, Request, expect

import qrgate.web
from qrgate.qrimage import render_png
from support.camera import FakeCamera
from support.stack import PASSWORD, Stack

WAIT_MS = 10_000
SCREENSHOTS = Path(__file__).parent.parent / "web" / "screenshots"
CATALOGS = Path(qrgate.web.__file__).parent / "app" / "i18n"


@cache
def catalog(lang: str) -> dict[str, str]:
    messages: dict[str, str] = json.loads((CATALOGS / f"{lang}.json").read_text("utf-8"))
    return messages


@dataclass
class PhoneApp:
    page: Page
    camera: FakeCamera
    base_url: str
    lang: str = "en"
    requests: list[str] = field(default_factory=list)
    # What the app's console reported as errors, and uncaught exceptions: a test ends by
    # checking there are none (a CSP violation shows up here too).
    console_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("request", self._seen)
        self.page.on("console", lambda message: self.console_errors.append(message.text)
                     if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _seen(self, request: Request) -> None:
        self.requests.append(request.url)

    def t(self, key: str, **params: object) -> str:
        """The app's text for `key` in this phone's language."""
        text = catalog(self.lang)[key]
        for name, value in params.items():
            text = text.replace(f"{{{name}}}", str(value))
        return text

    def api_calls(self) -> list[str]:
        return [url for url in self.requests if "/v1/" in url]

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/app/")
        expect(self.page.locator("#qg-screen h1")).to_be_visible(timeout=WAIT_MS)

    def heading(self) -> str:
        return self.page.locator("#qg-screen h1").inner_text()

    def scan(self, png: bytes) -> None:
        """Hold the phone over `png`: open the scan screen and wait until the app has read
        a code and left it (or shows a refusal under the camera)."""
        self.camera.show(png)
        # Screens are swapped asynchronously: mark the one shown now, so the wait below
        # cannot mistake it for the screen the scan leads to.
        self.page.evaluate("() => { const h = document.querySelector('#qg-screen h1');"
                           " if (h) h.dataset.before = '1'; }")
        self.page.locator(".tabs a[href='#/scan']").click()
        self.page.wait_for_function(
            "() => { const h = document.querySelector('#qg-screen h1');"
            " return h && !h.dataset.before && (!document.querySelector('#qg-screen video')"
            " || document.querySelector('#qg-screen .status .error')); }", timeout=WAIT_MS)

    def fact(self, label: str) -> str:
        """The value shown under a label of the screen's facts list."""
        term = self.page.locator("#qg-screen dt", has_text=label).first
        return term.locator("xpath=following-sibling::dd[1]").inner_text()

    def refusal_code(self) -> str | None:
        error = self.page.locator("#qg-screen .error[data-code]").first
        error.wait_for(timeout=WAIT_MS)
        return error.get_attribute("data-code")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"app-{self.lang}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def measures(self, name: str) -> list[float]:
        durations = self.page.evaluate(
            "(name) => performance.getEntriesByName(name).map((e) => e.duration)", name)
        return [float(value) for value in durations]


def enrol(app: PhoneApp, stack: Stack, login: str = "alice") -> None:
    """Bind the app to ``login`` as a person does: scan the enrolment QR, type the password."""
    app.scan(render_png(stack.rp.start_enrolment(login)["code"]))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Add an account")
    assert app.fact("Account") == login
    app.page.fill("#qg-password", PASSWORD)
    app.page.fill("#qg-name", "Alice's phone")
    app.page.get_by_role("button", name="Bind this phone").click()
    expect(app.page.locator("#qg-screen h1")).to_have_text("Phone bound", timeout=WAIT_MS)


def add_token(app: PhoneApp, stack: Stack, login: str) -> None:
    """Add and activate an OCRA token for ``login`` by scanning its enrolment QR."""
    app.scan(render_png(stack.rp.enrol_token(login)["code"]))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Add a signing token")
    assert app.fact("Account") == login
    app.page.get_by_role("button", name="Add and activate").click()
    expect(app.page.locator("#qg-screen .result")).to_have_text(
        "Active: ready to sign transactions.", timeout=WAIT_MS)
