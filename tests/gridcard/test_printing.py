"""The printed card (qrgate.gridcard.printing): every code of a rendered page decodes with
zxing-cpp, from the PDF rasterised at 150 dpi and from a photo-like copy of the page, and
each decoded code is the cell printed under its own label on its own card."""

from __future__ import annotations

import io
import stat
from datetime import date
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from qrgate.clients.gridcard_card import photo_like, read_cards, render_page
from qrgate.core.gridcard import Layout, issue_card, parse_cell, serial_from_random
from qrgate.errors import InvalidField
from qrgate.gridcard.printing import (
    PANEL_HEIGHT,
    PANEL_WIDTH,
    CardToPrint,
    panel_plans,
    render_pdf,
    write_pdf_volumes,
)
from qrgate.qrimage import decode_image, modules

SCREENSHOTS = Path(__file__).parents[1] / "web" / "screenshots"


def _cards(count: int, layout: Layout | None = None) -> list[CardToPrint]:
    # Fixed keys and serials: the same pixels every run, so a photo that reads today reads
    # tomorrow (bench/gridcard.py measures the rate over fresh cards).
    return [CardToPrint(card=issue_card(card_key=bytes([n + 1]) * 32,
                                        serial=serial_from_random(bytes([n + 1]) * 6),
                                        layout=layout or Layout()),
                        expires_on=date(2028, 11, 30))
            for n in range(count)]


def _decode(image: Image.Image) -> list[str]:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return [code.text for code in decode_image(out.getvalue())]


@pytest.fixture(scope="module")
def printed() -> tuple[list[CardToPrint], Image.Image]:
    cards = _cards(2)
    page = render_page(render_pdf(cards, issuer="Example Bank"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.save(SCREENSHOTS / "gridcard-page.png")
    return cards, page


def _assert_every_cell_found(cards: list[CardToPrint], texts: list[str]) -> None:
    for item in cards:
        card = item.card
        found = {parse_cell(text).position: text for text in texts
                 if parse_cell(text).serial == card.serial}
        assert len(found) == 30
        for cell in card.cells:
            assert found[cell.position] == cell.content


def test_every_code_decodes_from_the_pdf_at_150_dpi(
        printed: tuple[list[CardToPrint], Image.Image]) -> None:
    cards, page = printed
    assert page.size in {(1754, 1240), (1754, 1241)}  # A4 landscape at 150 dpi
    texts = _decode(page)
    assert len(texts) == 60
    _assert_every_cell_found(cards, texts)


def test_every_code_decodes_from_a_photo_like_copy(
        printed: tuple[list[CardToPrint], Image.Image]) -> None:
    cards, page = printed
    photo = photo_like(page)
    photo.save(SCREENSHOTS / "gridcard-photo.png")
    # Read as the phone reads it: a code missed in a frame full of them is looked for again.
    _assert_every_cell_found(cards, [text for cells in read_cards(photo).values()
                                     for text in cells.values()])


def test_codes_are_ecc_q_with_modules_near_half_a_millimetre() -> None:
    (plan, *_rest) = panel_plans(Layout())
    content = _cards(1)[0].card.cells[0].content
    side = modules(content, ecc="Q").shape[0]
    assert side == 29  # version 3
    assert plan.code_size == 14.0
    assert 0.45 < plan.code_size / side < 0.5
    assert len(panel_plans(Layout())) == 3
    assert (PANEL_WIDTH, PANEL_HEIGHT) == (90.0, 55.0)


def test_layouts_that_would_not_print_legibly_are_refused() -> None:
    with pytest.raises(InvalidField):
        panel_plans(Layout(rows=8, columns=4))  # four panels: wider than the sheet
    with pytest.raises(InvalidField):
        panel_plans(Layout(rows=4, columns=8))  # eight codes across 90 mm
    assert len(panel_plans(Layout(rows=5, columns=6))) == 3


def test_issuer_names_are_checked() -> None:
    with pytest.raises(InvalidField):
        render_pdf(_cards(1), issuer="")
    with pytest.raises(InvalidField):
        render_pdf(_cards(1), issuer="示例银行")
    with pytest.raises(InvalidField):
        render_pdf([], issuer="Example Bank")


def test_volumes_stream_cards_and_are_private(tmp_path: Path) -> None:
    issued: list[int] = []

    def lazily(count: int):  # a generator: cards are issued as the writer asks for them
        for item in _cards(count):
            issued.append(1)
            yield item

    progress: list[int] = []
    paths = write_pdf_volumes(lazily(4), issuer="Example Bank", directory=tmp_path,
                              cards_per_volume=3, on_card=progress.append)
    assert [path.name for path in paths] == ["gridcards-0001.pdf", "gridcards-0002.pdf"]
    assert progress == [1, 2, 3, 4]
    for path, pages in zip(paths, (1, 1), strict=True):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        document = pdfium.PdfDocument(path.read_bytes())
        assert len(document) == pages
        document.close()
    with pytest.raises(FileExistsError):
        write_pdf_volumes(_cards(1), issuer="Example Bank", directory=tmp_path)
