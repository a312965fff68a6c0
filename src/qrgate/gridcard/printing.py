"""Print-ready PDF of grid cards: what the issuer sends to a printer, then cuts and folds.

**The card.** Patent [0023]: a foldable card that can be split, each panel 90 x 55 mm. A
panel holds two rows of the layout (A and B, then C and D, ...), so the default 6 x 5
card is three panels side by side, 270 x 55 mm, folded in a zigzag to 90 x 55. Thirty
codes on one panel would leave modules of about 0.3 mm, too small for a phone held at
arm's length and for a 150 dpi scan; on three panels a code is 14 mm, a module about
0.48 mm. Each panel carries the issuer's name, the serial, the expiry and which rows it
holds, so a panel torn off still says whose card it came from.

**The codes.** Each cell is drawn as vector rectangles from its QR matrix at error
correction level Q (25 % of the symbol may be lost to dirt, creases or glare), one filled
path per code so that no hairline shows between modules. A position label sits centred
above each code. At least 2.8 mm (about six modules) of white separates codes, enough for
a reader to tell them apart.

**The sheet.** A4 landscape, three cards a page, corner marks to cut along and dashed
lines to fold along, all 1:1: the page says to print at 100 %, because a printer that
"fits to page" would shrink the panels below 90 x 55.

**Many cards.** :func:`write_pdf_volumes` reads cards from any iterable (a generator
that issues them one by one) and writes one PDF per ``cards_per_volume`` cards, so memory
stays bounded however many cards a run prints; ``on_card`` reports progress. The files
hold every cell in clear: they are created readable by their owner only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.drawing import PaintedPath

from qrgate import qrimage
from qrgate.core.gridcard import IssuedCard, Layout, Position, format_serial
from qrgate.errors import InvalidField

PRINT_ECC: Final = "Q"
PANEL_WIDTH: Final = 90.0  # mm, patent [0023]
PANEL_HEIGHT: Final = 55.0
ROWS_PER_PANEL: Final = 2
MAX_PANELS: Final = 3  # three panels side by side is as wide as A4 landscape allows
MAX_COLUMNS: Final = 6
PAGE_WIDTH: Final = 297.0  # A4 landscape
PAGE_HEIGHT: Final = 210.0
CARDS_PER_PAGE: Final = 3
_MARGIN: Final = 3.0  # inside a panel: keeps ink away from the cut and the fold
_CODE_MAX: Final = 14.0
_CODE_GAP: Final = 2.8  # white between neighbouring codes, about six modules
_LABEL_HEIGHT: Final = 3.0
_GRID_TOP: Final = 12.0  # below the panel's header
_FIRST_CARD_TOP: Final = 16.0
_CARD_PITCH: Final = PANEL_HEIGHT + 8.0
_MARK_OFFSET: Final = 1.5  # cut marks start this far outside the card, so no mark is cut into it
_MARK_LENGTH: Final = 3.0
_NOTE = ("qrgate grid cards - print at 100 % (no 'fit to page'), cut at the corner marks, "
         "fold along the dashed lines. Every code is a secret: shred misprints.")


@dataclass(frozen=True, kw_only=True)
class CardToPrint:
    card: IssuedCard
    expires_on: date


@dataclass(frozen=True, kw_only=True)
class PanelPlan:
    """Where one panel's codes go, in mm from the panel's top-left corner."""

    rows: tuple[int, ...]
    code_size: float
    pitch: float
    left: float


def panel_plans(layout: Layout) -> tuple[PanelPlan, ...]:
    """The panels of a card of ``layout``; raises InvalidField for a layout that does not
    print legibly (more than :data:`MAX_COLUMNS` columns or :data:`MAX_PANELS` panels)."""
    panels = math.ceil(layout.rows / ROWS_PER_PANEL)
    if layout.columns > MAX_COLUMNS or panels > MAX_PANELS:
        raise InvalidField(f"a printed card has at most {MAX_COLUMNS} columns and "
                           f"{MAX_PANELS * ROWS_PER_PANEL} rows")
    pitch = (PANEL_WIDTH - 2 * _MARGIN) / layout.columns
    code_size = min(_CODE_MAX, pitch - _CODE_GAP)
    left = _MARGIN + (PANEL_WIDTH - 2 * _MARGIN - pitch * layout.columns) / 2
    return tuple(
        PanelPlan(rows=tuple(range(first, min(first + ROWS_PER_PANEL, layout.rows))),
                  code_size=code_size, pitch=pitch, left=left)
        for first in range(0, layout.rows, ROWS_PER_PANEL))


def _latin1(text: str, what: str) -> str:
    # The PDF's built-in fonts cover Latin-1 only; embedding a Unicode font comes later.
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidField(f"the {what} must be Latin-1 text for now") from exc
    return text


class _Sheets:
    """One PDF being filled, three cards a page."""

    def __init__(self, *, issuer: str) -> None:
        if not issuer.strip() or len(issuer) > 40:
            raise InvalidField("the issuer's name is 1-40 characters")
        self._issuer = _latin1(issuer, "issuer's name")
        self._pdf = FPDF(orientation="L", unit="mm", format="A4")
        self._pdf.set_auto_page_break(auto=False)
        self._pdf.set_creator("qrgate")
        self._pdf.set_title(f"{self._issuer} grid cards")
        self._slot = CARDS_PER_PAGE
        self.cards = 0

    def add(self, item: CardToPrint) -> None:
        plans = panel_plans(item.card.layout)
        if self._slot == CARDS_PER_PAGE:
            self._new_page()
        width = PANEL_WIDTH * len(plans)
        x = (PAGE_WIDTH - width) / 2
        y = _FIRST_CARD_TOP + self._slot * _CARD_PITCH
        contents = {cell.position: cell.content for cell in item.card.cells}
        for index, plan in enumerate(plans):
            self._panel(x + index * PANEL_WIDTH, y, plan=plan, item=item,
                        index=index, count=len(plans), contents=contents)
        self._marks(x, y, width=width, folds=len(plans) - 1)
        self._slot += 1
        self.cards += 1

    def output(self) -> bytes:
        return bytes(self._pdf.output())

    def _new_page(self) -> None:
        pdf = self._pdf
        pdf.add_page()
        pdf.set_font("Helvetica", size=7)
        pdf.set_text_color(90)
        pdf.text(12.0, 9.0, _NOTE)
        pdf.text(PAGE_WIDTH - 24.0, 9.0, f"page {pdf.page_no()}")
        self._slot = 0

    def _panel(self, x: float, y: float, *, plan: PanelPlan, item: CardToPrint, index: int,
               count: int, contents: dict[Position, str]) -> None:
        pdf = self._pdf
        card = item.card
        pdf.set_text_color(0)
        pdf.set_font("Helvetica", style="B", size=8)
        pdf.text(x + _MARGIN, y + 6.0, self._issuer)
        pdf.set_font("Courier", style="B", size=9)
        serial = format_serial(card.serial)
        pdf.text(x + PANEL_WIDTH - _MARGIN - pdf.get_string_width(serial), y + 6.0, serial)
        pdf.set_font("Helvetica", size=6)
        first, last = (chr(ord("A") + plan.rows[0]), chr(ord("A") + plan.rows[-1]))
        pdf.text(x + _MARGIN, y + 9.5,
                 f"Rows {first}-{last}  -  valid until {item.expires_on.isoformat()}")
        part = f"panel {index + 1} of {count}"
        pdf.text(x + PANEL_WIDTH - _MARGIN - pdf.get_string_width(part), y + 9.5, part)
        line_pitch = (PANEL_HEIGHT - _GRID_TOP - _MARGIN) / ROWS_PER_PANEL
        pdf.set_font("Helvetica", style="B", size=7)
        for line, row in enumerate(plan.rows):
            top = y + _GRID_TOP + line * line_pitch
            for column in range(card.layout.columns):
                position = Position(row=row, column=column)
                left = x + plan.left + column * plan.pitch + (plan.pitch - plan.code_size) / 2
                label = position.label
                pdf.text(left + (plan.code_size - pdf.get_string_width(label)) / 2,
                         top + _LABEL_HEIGHT - 0.6, label)
                self._code(contents[position], left, top + _LABEL_HEIGHT + 0.4, plan.code_size)

    def _code(self, content: str, x: float, y: float, size: float) -> None:
        # One path of a rectangle per run of dark modules, filled at once (one fill, so no
        # seam between rows). Added with clone=False: fpdf2 otherwise deep-copies the path
        # to guard against later edits, which made a card take over half a second.
        dark = qrimage.modules(content, ecc=PRINT_ECC)
        module = size / dark.shape[0]
        path = PaintedPath()
        path.style.fill_color = "#000000"
        path.style.stroke_color = None
        for row_index, row in enumerate(dark.tolist()):
            start: int | None = None
            for column, is_dark in enumerate([*row, False]):
                if is_dark and start is None:
                    start = column
                elif not is_dark and start is not None:
                    path.rectangle(x + start * module, y + row_index * module,
                                   (column - start) * module, module)
                    start = None
        with self._pdf.drawing_context() as context:
            context.add_item(path, clone=False)

    def _marks(self, x: float, y: float, *, width: float, folds: int) -> None:
        pdf = self._pdf
        pdf.set_draw_color(0)
        pdf.set_line_width(0.2)
        near, far = _MARK_OFFSET, _MARK_OFFSET + _MARK_LENGTH
        for cx in (x, x + width):
            for cy, sign in ((y, -1), (y + PANEL_HEIGHT, 1)):
                pdf.line(cx, cy + sign * near, cx, cy + sign * far)  # vertical cut mark
        for cy in (y, y + PANEL_HEIGHT):
            for cx, sign in ((x, -1), (x + width, 1)):
                pdf.line(cx + sign * near, cy, cx + sign * far, cy)  # horizontal cut mark
        pdf.set_draw_color(150)
        pdf.set_line_width(0.15)
        pdf.set_dash_pattern(dash=1.2, gap=1.2)
        for fold in range(1, folds + 1):
            fx = x + fold * PANEL_WIDTH
            # Inside the card only: in the gap between cards a dashed line reads as a cut.
            pdf.line(fx, y, fx, y + PANEL_HEIGHT)
        pdf.set_dash_pattern()


def render_pdf(cards: Iterable[CardToPrint], *, issuer: str) -> bytes:
    """All ``cards`` in one PDF, in memory: for a handful of cards (one user's reissue,
    tests). Use :func:`write_pdf_volumes` for a print run."""
    sheets = _Sheets(issuer=issuer)
    for item in cards:
        sheets.add(item)
    if sheets.cards == 0:
        raise InvalidField("no cards to print")
    return sheets.output()


def write_pdf_volumes(
    cards: Iterable[CardToPrint],
    *,
    issuer: str,
    directory: Path,
    stem: str = "gridcards",
    cards_per_volume: int = 150,
    on_card: Callable[[int], None] | None = None,
) -> list[Path]:
    """Print a run of cards as ``<stem>-0001.pdf``, ``<stem>-0002.pdf``, ... in
    ``directory``, each of at most ``cards_per_volume`` cards, reading ``cards`` lazily:
    only one volume is ever held in memory. ``on_card(n)`` is called after the n-th card.
    Refuses to overwrite a file; files are created with mode 0600 (they hold secrets)."""
    if not 1 <= cards_per_volume <= 3000:
        raise InvalidField("cards_per_volume is 1-3000")
    written: list[Path] = []
    done = 0
    for batch in _batches(iter(cards), cards_per_volume):
        sheets = _Sheets(issuer=issuer)
        for item in batch:
            sheets.add(item)
            done += 1
            if on_card is not None:
                on_card(done)
        path = directory / f"{stem}-{len(written) + 1:04d}.pdf"
        _write_private(path, sheets.output())
        written.append(path)
    return written


def _batches(items: Iterator[CardToPrint], size: int) -> Iterator[list[CardToPrint]]:
    while batch := [item for _, item in zip(range(size), items, strict=False)]:
        yield batch


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
