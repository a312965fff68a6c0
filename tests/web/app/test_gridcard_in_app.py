"""Scheme A with the phone app a person holds: a printed grid card, issued as an operator
issues it (``qrgate.gridcard.cards.run_issue``, its PDF rendered at 150 dpi), held whole in
front of the phone's camera (Chromium's fake capture device). The app signs in (or joins a
relying party's attempt by scanning its code), shows the position asked, picks that one
cell out of the thirty codes in view and sends it alone; the server marks it used."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base45
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image, ImageOps
from playwright.sync_api import Request, Route, expect
from sqlalchemy import select

from qrgate.clients.gridcard_card import render_page
from qrgate.core.codes import PREFIX
from qrgate.core.cose import parse_own_sign1, sign1
from qrgate.core.gridcard import Layout, format_serial
from qrgate.gridcard import cards
from qrgate.gridcard.printing import CardToPrint, render_pdf
from qrgate.qrimage import render_png
from qrgate.storage.models import gridcard_attempts, gridcard_cells, gridcards
from support.camera import HEIGHT, MARGIN, WIDTH, FakeCamera
from support.phone_app import WAIT_MS, PhoneApp
from support.stack import PASSWORD, Stack

DPI = 150
# The page's printing note runs along its top edge, above the first card.
NOTE_MM = 12


class Card:
    """Alice's printed card: its serial as printed, and the card cut from the page."""

    def __init__(self, stack: Stack, directory: Path) -> None:
        pdf = directory / f"card-{time.monotonic_ns()}.pdf"

        def deliver(issued: cards.IssuedCard) -> None:
            printable = CardToPrint(card=issued.card, expires_on=issued.record.expires_on())
            pdf.write_bytes(render_pdf([printable], issuer=issued.issuer_name))

        issued = cards.run_issue(stack.rt, org_slug="bank", login="alice", layout=Layout(),
                                 ttl_days=30, issuer="operator", actor="test", deliver=deliver)
        self.serial = format_serial(issued.record.serial)
        page = render_page(pdf.read_bytes(), dpi=DPI)
        below_note = page.crop((0, round(NOTE_MM * DPI / 25.4), page.width, page.height))
        # Everything printed for the card, its cut marks included: as it is cut out.
        self.picture = below_note.crop(ImageOps.invert(below_note).getbbox())

    def png(self) -> bytes:
        out = io.BytesIO()
        self.picture.save(out, format="PNG")
        return out.getvalue()


def hold_up(camera: FakeCamera, picture: Image.Image) -> None:
    """Point the camera at the whole card: as large as the frame allows, centred on white.
    (FakeCamera.show squares its picture, as a QR on a screen is; a card is 5:1.)"""
    scale = min((WIDTH - 2 * MARGIN) / picture.width, (HEIGHT - 2 * MARGIN) / picture.height)
    # Smoothly, as a lens scales: at about 2 pixels a module, nearest neighbour would not.
    seen = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                          Image.Resampling.LANCZOS)
    frame = Image.new("L", (WIDTH, HEIGHT), 255)
    frame.paste(seen, ((WIDTH - seen.width) // 2, (HEIGHT - seen.height) // 2))
    camera._write(frame.tobytes())


def sent_cells(app: PhoneApp) -> list[str]:
    """Every cell the app sends from now on, in order."""
    cells: list[str] = []

    def seen(request: Request) -> None:
        if request.url.endswith("/answer"):
            cells.append(request.post_data_json["cell"])

    app.page.on("request", seen)
    return cells


def attempt_row(stack: Stack, attempt_id: str) -> Any:
    with stack.rt.engine.connect() as conn:
        return conn.execute(select(gridcard_attempts)
                            .where(gridcard_attempts.c.id == attempt_id)).one()


def used_positions(stack: Stack, serial: str) -> set[str]:
    with stack.rt.engine.connect() as conn:
        rows = conn.execute(select(gridcard_cells.c.position)
                            .join(gridcards, gridcards.c.id == gridcard_cells.c.card_id)
                            .where(gridcards.c.serial == serial.replace("-", ""),
                                   gridcard_cells.c.used_at.is_not(None)))
        return {row.position for row in rows}


def sign_in(app: PhoneApp, organisation: str | None = "Bank", password: str = PASSWORD,
            screenshot: str | None = None) -> dict[str, Any]:
    """From the home screen: the grid-card link, the account (``organisation`` None: the
    one the app remembers), Continue; the server's answer. ``screenshot``: the filled form's
    name under tests/web/screenshots."""
    app.page.locator(".tabs a[href='#/']").click()
    # The home screen renders after reading storage: let it finish before leaving it, or
    # its late render can replace the next screen (see the closing note of issue 10).
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("home.title"))
    app.page.wait_for_load_state("networkidle")
    app.page.get_by_role("link", name=app.t("home.gridcard")).click()
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.title"))
    if organisation is None:
        expect(app.page.locator("#qg-org")).to_have_value("bank")
    else:
        app.page.fill("#qg-org", organisation)  # the app sends the slug in lower case
    app.page.fill("#qg-login", "alice")
    app.page.fill("#qg-password", password)
    if screenshot:
        app.screenshot(screenshot)
    with app.page.expect_response("**/v1/gridcard/sign-in") as response:
        app.page.get_by_role("button", name=app.t("gridcard.continue")).click()
    answer: dict[str, Any] = response.value.json()
    return answer


def expect_signed_in(app: PhoneApp, detail_key: str = "gridcard.done") -> None:
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.done_title"),
                                                           timeout=WAIT_MS)
    expect(app.page.locator("#qg-screen .result")).to_have_text(
        app.t(detail_key, organisation="Example Bank"))


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_sign_in_in_the_app_with_the_whole_card_in_view(
    lang: str, app_stack: tuple[Stack, Callable[[], None]],
    phone_factory: Callable[..., PhoneApp], tmp_path: Path,
) -> None:
    stack, _ = app_stack
    old = Card(stack, tmp_path)
    card = Card(stack, tmp_path)  # revokes the old one, which alice still has in a drawer
    app = phone_factory(stack.base_url, lang)
    sent = sent_cells(app)
    app.open()

    # The old card in front of the camera: the app names the card to use and sends nothing.
    hold_up(app.camera, old.picture)
    started = sign_in(app, screenshot="gridcard-sign-in")
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.position_title"))
    expect(app.page.locator("#qg-position")).to_have_text(started["position"])
    expect(app.page.locator(".card-serial")).to_have_text(
        app.t("gridcard.on_card", serial=card.serial))
    expect(app.page.locator(".countdown")).to_be_visible()
    expect(app.page.locator(".status .note")).to_have_text(
        app.t("gridcard.other_card", seen=old.serial, serial=card.serial), timeout=WAIT_MS)
    app.screenshot("gridcard-position")

    # A photo of the old card has no cell to send; one of the right card has.
    app.page.set_input_files("#qg-file", files=[
        {"name": "old.png", "mimeType": "image/png", "buffer": old.png()}])
    assert app.refusal_code() == "cell_not_in_image"
    app.page.set_input_files("#qg-file", files=[
        {"name": "card.png", "mimeType": "image/png", "buffer": card.png()}])
    expect_signed_in(app)
    app.screenshot("gridcard-signed-in")
    assert attempt_row(stack, started["attempt_id"]).state == "authenticated"
    assert used_positions(stack, card.serial) == {started["position"]}

    # The camera on the whole card: thirty codes in each frame, the asked one picked.
    hold_up(app.camera, card.picture)
    again = sign_in(app, organisation=None)
    expect_signed_in(app)
    row = attempt_row(stack, again["attempt_id"])
    assert (row.state, row.reason) == ("authenticated", "authenticated")
    assert used_positions(stack, card.serial) == {started["position"], again["position"]}
    # One answer per sign-in, each the asked cell of the current card: nothing else left.
    compact = card.serial.replace("-", "")
    assert [cell.split(":")[1:3] for cell in sent] == [
        [compact, started["position"]], [compact, again["position"]]]
    assert app.console_errors == []


def test_a_wrong_password_shows_no_position(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    tmp_path: Path,
) -> None:
    stack, _ = app_stack
    Card(stack, tmp_path)
    app = phone_factory(stack.base_url)
    app.open()
    assert sign_in(app, password="not her password")["code"] == "bad_credentials"
    assert app.refusal_code() == "bad_credentials"
    expect(app.page.locator("#qg-screen .error")).to_have_text(app.t("error.bad_credentials"))
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.title"))
    expect(app.page.locator("#qg-position")).to_have_count(0)
    with stack.rt.engine.connect() as conn:
        assert conn.execute(select(gridcard_attempts)).all() == []


def pass_window(stack: Stack, app: PhoneApp, shift: float, seconds: float) -> float:
    """Both clocks, the server's and the phone's, past the position's window: the shift
    from real time that they keep from now on."""
    shift += seconds + 2
    stack.rt.clock = lambda: time.time() + shift
    app.page.clock.set_system_time(time.time() + shift)
    return shift


def test_when_the_time_passes_another_position_is_asked_a_few_times(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    tmp_path: Path,
) -> None:
    stack, _ = app_stack
    card = Card(stack, tmp_path)
    app = phone_factory(stack.base_url)
    app.open()
    app.camera.show_nothing()  # the card stays in the pocket
    attempt = sign_in(app)
    first = attempt["attempt_id"]
    asked = [attempt["position"]]
    shift = 0.0
    status = app.page.locator("#qg-screen .status")
    for left in (2, 1):
        shift = pass_window(stack, app, shift, attempt["window_seconds"])
        expect(status.locator(".note")).to_have_text(
            app.t("gridcard.time_up", position=asked[-1]), timeout=WAIT_MS)
        expect(status).to_contain_text(app.t("gridcard.reissues_left", count=left))
        expect(app.page.locator("#qg-screen video")).to_be_hidden()
        if left == 2:
            app.screenshot("gridcard-time-up")
        with app.page.expect_response("**/reissue") as response:
            app.page.get_by_role("button", name=app.t("gridcard.reissue")).click()
        attempt = response.value.json()
        assert attempt["reissues_left"] == left - 1 and attempt["position"] != asked[-1]
        asked.append(attempt["position"])
        expect(app.page.locator("#qg-position")).to_have_text(asked[-1])

    # None left: the app says so and asks the server for nothing more.
    shift = pass_window(stack, app, shift, attempt["window_seconds"])
    assert app.refusal_code() == "reissue_limit"
    assert sum(url.endswith("/reissue") for url in app.api_calls()) == 2
    assert attempt_row(stack, first).position_seq == 2
    assert used_positions(stack, card.serial) == set()

    app.page.get_by_role("link", name=app.t("gridcard.again")).click()
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.title"))
    hold_up(app.camera, card.picture)
    again = sign_in(app, organisation=None)
    expect_signed_in(app)
    assert used_positions(stack, card.serial) == {again["position"]}
    assert app.console_errors == []


def test_joining_a_relying_partys_attempt_by_its_code(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    tmp_path: Path,
) -> None:
    stack, _ = app_stack
    card = Card(stack, tmp_path)
    started = stack.rp.start_gridcard("alice", PASSWORD, requester_ip="198.51.100.20",
                                      requester_ua="Firefox on Linux")
    app = phone_factory(stack.base_url)
    sent = sent_cells(app)
    app.open()

    def turn_to_the_card(route: Route) -> None:
        # The code read, the person holds up the card: the camera the app opens next sees it.
        hold_up(app.camera, card.picture)
        route.continue_()

    held: list[Route] = []

    def hold(route: Route) -> None:  # answered below, once the screen is checked
        held.append(route)

    app.page.route("**/v1/gridcard/scan", turn_to_the_card)
    app.page.route("**/answer", hold)
    app.camera.show(render_png(started["code"]))
    app.page.locator(".tabs a[href='#/scan']").click()
    expect(app.page.locator("#qg-screen .status")).to_have_text(
        app.t("gridcard.checking", position=started["position"]), timeout=WAIT_MS)
    expect(app.page.locator("#qg-screen h1")).to_have_text(app.t("gridcard.position_title"))
    expect(app.page.locator("#qg-screen .verified")).to_have_text(app.t("code.verified"))
    assert app.fact("Service") == "Example Bank · Web banking"
    assert app.fact("Website") == "https://bank.example"
    assert app.fact("Account") == "alice"
    assert app.fact("Requested from") == "Firefox on Linux"
    expect(app.page.locator("#qg-position")).to_have_text(started["position"])
    app.screenshot("gridcard-join")
    held[0].continue_()

    expect_signed_in(app, "gridcard.done_website")
    assert stack.rp.get_gridcard(started["attempt_id"])["state"] == "authenticated"
    assert used_positions(stack, card.serial) == {started["position"]}
    assert [cell.split(":")[2] for cell in sent] == [started["position"]]
    assert app.console_errors == []


def forged(code: str) -> str:
    """The code signed again by a key that is not the server's, under the server's key id:
    what a phisher who copies a relying party's code can make of it."""
    message, kid = parse_own_sign1(base45.b45decode(code[len(PREFIX):]))
    impostor = ec.generate_private_key(ec.SECP256R1())
    raw = sign1(payload=message.payload, private_key=impostor, kid=kid)
    return PREFIX + base45.b45encode(raw).decode()


def test_a_forged_join_code_is_refused_before_anything_is_sent(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
    tmp_path: Path,
) -> None:
    stack, _ = app_stack
    Card(stack, tmp_path)
    started = stack.rp.start_gridcard("alice", PASSWORD)
    app = phone_factory(stack.base_url)
    app.open()
    app.scan(render_png(forged(started["code"])))
    assert app.refusal_code() == "bad_signature"
    expect(app.page.locator("#qg-position")).to_have_count(0)
    assert [url for url in app.api_calls() if "/v1/gridcard/" in url] == []
