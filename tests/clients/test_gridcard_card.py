"""Reading a printed grid card (qrgate.clients.gridcard_card) from the PDF that
qrgate.gridcard.printing makes: every cell of a sheet of three cards is read from the
150 dpi page and from photo-like copies of it, the asked cell is picked from the card named
by its serial, and a frame without the card or the cell is refused (``unreadable_image``)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from qrgate.clients.gridcard_card import (
    photo_like,
    pick_cell,
    read_cards,
    read_cells,
    render_page,
)
from qrgate.core.gridcard import (
    CARD_KEY_BYTES,
    SERIAL_RANDOM_BYTES,
    Layout,
    format_serial,
    issue_card,
    serial_from_random,
)
from qrgate.errors import InvalidField, Malformed
from qrgate.gridcard.printing import CardToPrint, render_pdf
from qrgate.qrimage import render_png

Cards = dict[str, dict[str, str]]


def printed_cards(count: int) -> list[CardToPrint]:
    # Fixed keys and serials: the same pixels every run, so a photo that reads today reads
    # tomorrow (the bench measures the rate over fresh cards).
    return [CardToPrint(card=issue_card(card_key=bytes([n + 1]) * CARD_KEY_BYTES,
                                        serial=serial_from_random(
                                            bytes([n + 1]) * SERIAL_RANDOM_BYTES),
                                        layout=Layout()),
                        expires_on=date(2028, 11, 30))
            for n in range(count)]


@pytest.fixture(scope="module")
def sheet() -> tuple[Cards, Image.Image]:
    """A page of three cards, and what each card holds: serial -> label -> content."""
    cards = printed_cards(3)
    page = render_page(render_pdf(cards, issuer="Example Bank"))
    return ({item.card.serial: {cell.position.label: cell.content for cell in item.card.cells}
             for item in cards}, page)


def test_every_cell_is_read_from_the_page_at_150_dpi(sheet: tuple[Cards, Image.Image]) -> None:
    printed, page = sheet
    assert page.size in {(1754, 1240), (1754, 1241)}  # A4 landscape at 150 dpi
    assert read_cards(page) == printed


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_cell_is_read_from_a_photo_of_the_page(
        sheet: tuple[Cards, Image.Image], seed: int) -> None:
    printed, page = sheet
    photo = photo_like(page, seed=seed)
    assert photo.size != page.size
    assert read_cards(photo) == printed


def test_a_seed_gives_the_same_photo_and_another_seed_another(
        sheet: tuple[Cards, Image.Image]) -> None:
    _, page = sheet
    assert photo_like(page, seed=7).tobytes() == photo_like(page, seed=7).tobytes()
    assert photo_like(page, seed=7).tobytes() != photo_like(page, seed=8).tobytes()


def test_the_asked_cell_is_picked_from_the_card_named_by_its_serial(
        sheet: tuple[Cards, Image.Image]) -> None:
    printed, page = sheet
    photo = photo_like(page, seed=5)
    for serial, cells in printed.items():
        for label in ("A1", "C4", "F5"):
            assert pick_cell(photo, label, serial=format_serial(serial)) == cells[label]
        assert read_cells(photo, serial) == cells
    with pytest.raises(InvalidField, match="3 cards in view"):
        pick_cell(photo, "C4")
    with pytest.raises(InvalidField):
        pick_cell(photo, "c4", serial=next(iter(printed)))


def test_the_only_card_in_view_needs_no_serial() -> None:
    (item,) = printed_cards(1)
    page = render_page(render_pdf([item], issuer="Example Bank"))
    cells = {cell.position.label: cell.content for cell in item.card.cells}
    assert read_cells(page) == cells
    assert pick_cell(page, "E2") == cells["E2"]


def test_a_frame_without_the_card_or_the_cell_is_refused(
        sheet: tuple[Cards, Image.Image]) -> None:
    printed, page = sheet
    blank = Image.new("L", page.size, 255)
    # A QR code that is not a cell is not a card.
    blank.paste(Image.open(io.BytesIO(render_png("https://bank.example/", scale=8))), (200, 200))
    assert read_cards(blank) == {}
    for serial in (None, next(iter(printed))):
        with pytest.raises(Malformed) as refused:
            pick_cell(blank, "C4", serial=serial)
        assert refused.value.code == "unreadable_image"

    # Only the top card's first panel (rows A and B) in view: its cell E1 is not.
    serial = next(iter(printed))
    first_panel = page.crop((0, 0, page.width // 3 + 40, page.height // 3 + 40))
    assert pick_cell(first_panel, "B5", serial=serial) == printed[serial]["B5"]
    with pytest.raises(Malformed, match="E1") as refused:
        pick_cell(first_panel, "E1", serial=serial)
    assert refused.value.code == "unreadable_image"


def test_pages_past_the_end_are_refused() -> None:
    pdf = render_pdf(printed_cards(1), issuer="Example Bank")
    with pytest.raises(InvalidField, match="no page 1"):
        render_page(pdf, page=1)
