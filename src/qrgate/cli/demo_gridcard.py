"""``qrgate demo gridcard``: scheme A, the printed QR grid card, from issuing the card to a
relying party's sign-in, with the phone reading cells out of a photo of the printed page."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qrgate.cli.demo import (
    DEMO_PASSWORD,
    DemoFailed,
    Steps,
    _audit_intact,
    _expect,
    _expect_error,
    _run_demo,
    free_port,
)
from qrgate.cli.failures import failure_types
from qrgate.config import Settings

# The server, clients, storage and imaging are imported inside the scenario, so that
# `qrgate --help` does not load them.
if TYPE_CHECKING:
    from PIL.Image import Image

    from qrgate.clients.gridcard import GridcardPhone, Started
    from qrgate.clients.relying_party import QrgateClient
    from qrgate.gridcard.cards import IssuedCard
    from qrgate.runtime import Runtime

ORG = "demobank"
WRONG_PASSWORD = "wrong horse battery"  # noqa: S105 - the demo's mistyped password


@click.command("gridcard")
def gridcard() -> None:
    """Scheme A: sign in with a printed QR grid card, read from a photo of the card."""
    _run_demo("gridcard", _gridcard)


def _issue(rt: Runtime, pdf: Path) -> IssuedCard:
    from qrgate.core.gridcard import Layout
    from qrgate.gridcard import cards
    from qrgate.gridcard.printing import CardToPrint, render_pdf

    def deliver(issued: IssuedCard) -> None:
        # The PDF holds every cell in clear; the demo's data directory is private (0700).
        pdf.write_bytes(render_pdf([CardToPrint(card=issued.card,
                                                expires_on=issued.record.expires_on())],
                                   issuer=issued.issuer_name))

    return cards.run_issue(rt, org_slug=ORG, login="alice", layout=Layout(),
                           ttl_days=cards.DEFAULT_TTL_DAYS, issuer="operator", actor="demo",
                           deliver=deliver)


def _photograph(pdf: Path, data_dir: Path, steps: Steps) -> Image:
    """Page 0 of the PDF as a PNG, then that PNG as a phone camera would see it."""
    from PIL import Image as PILImage

    from qrgate.clients.gridcard_card import photo_like, render_page

    page_png, photo_png = data_dir / "card-page-0.png", data_dir / "card-photo.png"
    render_page(pdf.read_bytes(), page=0).save(page_png)
    with PILImage.open(page_png) as page:
        photo = photo_like(page)
    photo.save(photo_png)
    steps.say(f"{page_png.name}: {page_png.stat().st_size} bytes; {photo_png.name} "
              f"(skewed, blurred, noisy): {photo_png.stat().st_size} bytes")
    return photo


def _gridcard(data_dir: Path) -> None:
    from qrgate.accounts.provision import provision
    from qrgate.clients.gridcard import GridcardPhone, authenticate_with_card
    from qrgate.clients.gridcard_card import read_cells
    from qrgate.clients.relying_party import QrgateClient
    from qrgate.core.gridcard import format_serial
    from qrgate.core.policy import AppPolicy
    from qrgate.gridcard import cards
    from qrgate.http.app import create_app
    from qrgate.http.local import serve_in_thread
    from qrgate.runtime import build_runtime

    steps = Steps()
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, public_url=f"http://127.0.0.1:{port}")
    rt = build_runtime(settings)
    org = steps.run(f"provision organisation '{ORG}', app 'web-banking', user alice with "
                    "a password",
                    lambda: provision(rt, org_slug=ORG, org_name="Demo Bank",
                                      business_id="web-banking", app_name="Web banking",
                                      origin="https://bank.example", policy=AppPolicy(),
                                      users={"alice": DEMO_PASSWORD}))
    steps.say(f"API key issued (shown once): {org.api_key[:16]}...")
    pdf = data_dir / "alice-card.pdf"
    issued = steps.run("issue alice's grid card; its printable PDF goes to the data directory",
                       partial(_issue, rt, pdf))
    serial = format_serial(issued.record.serial)
    steps.say(f"card {serial}: {issued.card.layout.size} cells, {pdf.name} "
              f"{pdf.stat().st_size} bytes")
    photo = steps.run("render page 0 to PNG and photograph it",
                      partial(_photograph, pdf, data_dir, steps))
    cells = steps.run("the phone reads every cell of the photo",
                      lambda: read_cells(photo, serial=issued.record.serial))
    _expect(len(cells) == issued.card.layout.size,
            f"read {len(cells)} of {issued.card.layout.size} cells")
    steps.say(f"{len(cells)} cells of card {serial}: {', '.join(sorted(cells))}")

    with serve_in_thread(create_app(settings, runtime=rt), port=port) as base_url:
        steps.say(f"server on {base_url}")
        app = GridcardPhone(base_url, show=steps.say)
        rp = QrgateClient(base_url, api_key=org.api_key)
        sign_in = partial(app.sign_in, organisation=ORG, login="alice")
        accepted = steps.run(
            "app alone: alice signs in with her password and the asked cell from the photo",
            lambda: authenticate_with_card(app, organisation=ORG, login="alice",
                                           password=DEMO_PASSWORD, card_image=photo))
        _expect(accepted.state == "authenticated", f"attempt ended {accepted.state}")
        steps.run("a wrong password is refused before any position is asked",
                  lambda: _expect_error(lambda: sign_in(password=WRONG_PASSWORD),
                                        "bad_credentials"))
        steps.run("the cell of another position is refused",
                  lambda: _answer_other_cell(app, sign_in(password=DEMO_PASSWORD), cells))
        steps.run(f"the accepted cell {accepted.position} replayed on a new attempt is "
                  "refused",
                  lambda: _answer(app, sign_in(password=DEMO_PASSWORD),
                                  cells[accepted.position], "cell_used"))
        steps.run("a relying party starts the sign-in; the phone scans its code and answers",
                  partial(_relying_party, app, rp, photo, steps))
        steps.run(f"the card {serial} is revoked (lost)",
                  lambda: cards.run_revoke(rt, serial=issued.record.serial, actor="demo"))
        steps.run("alice's next sign-in is refused: she has no card",
                  lambda: _expect_error(lambda: sign_in(password=DEMO_PASSWORD), "no_card"))
        rp.close()
        app.close()

    steps.run("qrgate audit verify", partial(_audit_intact, rt, steps))
    rt.close()


def _answer(app: GridcardPhone, started: Started, cell: str, code: str) -> None:
    attempt = started.attempt
    _expect_error(lambda: app.answer(attempt.attempt_id, answer_token=started.answer_token,
                                     cell=cell), code)


def _answer_other_cell(app: GridcardPhone, started: Started, cells: dict[str, str]) -> None:
    asked = started.attempt.position
    other = next(label for label in sorted(cells) if label != asked)
    Steps.say(f"asked for {asked}, the phone sends the cell at {other}")
    _answer(app, started, cells[other], "wrong_cell")


def _relying_party(app: GridcardPhone, rp: QrgateClient, photo: Image, steps: Steps) -> None:
    from qrgate.clients.gridcard import answer_with_card
    from qrgate.clients.phone import decode_png
    from qrgate.qrimage import render_png

    started = rp.start_gridcard("alice", DEMO_PASSWORD, requester_ip="203.0.113.7",
                                requester_ua="Firefox 133 on Linux")
    steps.say(f"the bank's page shows: cell {started['position']} of card "
              f"{started['serial']}, and a QR of the attempt's code")
    seen: list[dict[str, Any]] = []
    problems: list[Exception] = []
    following = threading.Event()

    def listen() -> None:
        try:
            for event in rp.gridcard_events(started["attempt_id"]):
                seen.append(event)
                following.set()
        except failure_types() as error:
            problems.append(error)
        following.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    # The page follows the attempt before the user scans, as a browser's would.
    following.wait(timeout=10)
    joined = app.scan_code(decode_png(render_png(started["code"])))
    _expect(joined.attempt.attempt_id == started["attempt_id"], "the code names another attempt")
    answer_with_card(app, joined, photo)
    listener.join(timeout=10)
    if problems:
        raise problems[0]
    if listener.is_alive():
        raise DemoFailed("the bank's event stream did not end with a result")
    states = [event["state"] for event in seen]
    steps.say(f"the bank's event stream: {' -> '.join(states) or '(nothing)'}")
    _expect(states and states[-1] == "authenticated", f"the bank saw {states}")
    state = rp.get_gridcard(started["attempt_id"])["state"]
    _expect(state == "authenticated", f"the bank reads {state}")
