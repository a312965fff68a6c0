"""Reading a printed grid card (scheme A) as the phone does, for the simulator, the demo and
the bench.

Step by step, from the issuer's PDF to the content of the asked cell:

1.  :func:`render_page` rasterises one page of the PDF that ``qrgate.gridcard.printing``
    made, as a 150 dpi scan of the printed sheet would look.
2.  :func:`photo_like` turns that page into what a phone's camera sees: tilted, seen a
    little from one side, soft focus, uneven light, sensor noise and fewer pixels. The same
    seed gives the same photo, so a failure can be replayed.
3.  :func:`read_cards` finds every QR symbol in the frame with zxing-cpp and keeps those
    that :func:`qrgate.core.gridcard.parse_cell` accepts, grouped by card serial and then by
    position label; :func:`read_cells` narrows to one card.
4.  :func:`pick_cell` returns the cell the server asked for (``"C4"``). Serial and position
    are printed in clear inside each cell, so the whole card (or the whole sheet) may be in
    view: the phone needs no help to find the asked one.

A frame that does not show the asked card or cell is refused with ``unreadable_image``,
as the phone simulator refuses a photo without a code; the caller takes another photo.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pypdfium2 as pdfium
import zxingcpp
from PIL import Image, ImageFilter

from qrgate.core.gridcard import format_serial, normalize_serial, parse_cell, parse_position
from qrgate.errors import InvalidField, Malformed, MalformedCode

_QR_ONLY: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_POINTS_PER_INCH: Final = 72
# What surrounds the sheet in the photo: a desk, darker than paper.
_DESK: Final = 110
_LOOK_AGAIN_AT: Final = (0.9, 1.1)


def render_page(pdf: bytes, page: int = 0, dpi: int = 150) -> Image.Image:
    """Page ``page`` (from 0) of ``pdf`` in greyscale at ``dpi`` dots per inch."""
    document = pdfium.PdfDocument(pdf)
    try:
        if not 0 <= page < len(document):
            raise InvalidField(f"the PDF has {len(document)} page(s); no page {page}")
        image: Image.Image = (document[page].render(scale=dpi / _POINTS_PER_INCH)
                              .to_pil().convert("L"))
    finally:
        document.close()
    return image


def photo_like(page: Image.Image, *, seed: int = 0) -> Image.Image:
    """A phone's photo of the printed ``page``: tilted 2-5 degrees either way, its far edge
    2-4 % shorter than its near one, lit more on one side than the other, slightly out of
    focus, at 80-95 % of the page's pixels, with sensor noise. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    angle = float(rng.uniform(2.0, 5.0) * rng.choice((-1.0, 1.0)))
    tilted = page.convert("L").rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                                      fillcolor=_DESK)
    w, h = tilted.size
    squeeze = float(rng.uniform(0.02, 0.04))
    # The far (top) edge maps onto a wider stretch of the source: it looks shorter.
    quad = (-squeeze * w, 0.0, -0.5 * squeeze * w, h, (1 + 0.5 * squeeze) * w, h,
            (1 + squeeze) * w, 0.0)
    skewed = tilted.transform((w, h), Image.Transform.QUAD, quad,
                              resample=Image.Resampling.BICUBIC, fillcolor=_DESK)
    # In the order light meets them: the room's light, the lens, the sensor.
    lit = _lit_unevenly(skewed, rng)
    blurred = lit.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.6, 1.1))))
    scale = float(rng.uniform(0.8, 0.95))
    small = blurred.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    noisy = pixels + rng.normal(0.0, float(rng.uniform(2.0, 4.0)), size=pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")


def _lit_unevenly(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Paper is never white in a photo, nor ink black, and the light falls off towards one
    side of the sheet."""
    pixels = np.asarray(image, dtype=np.float64)
    h, w = pixels.shape
    direction = rng.uniform(0.0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    along = np.cos(direction) * xs / w + np.sin(direction) * ys / h
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-9)
    light = 1.0 - float(rng.uniform(0.2, 0.35)) * along
    ink, paper = float(rng.uniform(30, 50)), float(rng.uniform(215, 235))
    shot = (ink + pixels / 255.0 * (paper - ink)) * light
    return Image.fromarray(np.clip(shot, 0, 255).astype(np.uint8), mode="L")


def read_cards(image: Image.Image) -> dict[str, dict[str, str]]:
    """Every grid card cell decoded in ``image``: serial -> position label -> content.
    Codes that are not cells (a URL, a qrgate ``QG1:`` code) are left out."""
    cards = _decode_cells(image)
    for scale in _LOOK_AGAIN_AT:
        if not any(_has_gaps(cells) for cells in cards.values()):
            break
        # In a frame full of codes zxing-cpp misses one now and then (in about one photo
        # of a sheet in five); the same frame a little smaller or larger yields it, as the
        # next frame does for a phone.
        w, h = image.size
        rescaled = image.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
        for serial, cells in _decode_cells(rescaled).items():
            cards.setdefault(serial, {}).update(cells)
    return cards


def _decode_cells(image: Image.Image) -> dict[str, dict[str, str]]:
    cards: dict[str, dict[str, str]] = {}
    pixels = np.asarray(image.convert("L"))
    for barcode in zxingcpp.read_barcodes(pixels, formats=_QR_ONLY):
        try:
            cell = parse_cell(barcode.text)
        except MalformedCode:
            continue
        cards.setdefault(cell.serial, {})[cell.position.label] = cell.text()
    return cards


def _has_gaps(cells: dict[str, str]) -> bool:
    """A card's cells fill a rectangle from A1: a label missing inside the span of those
    found is a code the decoder missed."""
    positions = [parse_position(label) for label in cells]
    rows = 1 + max(position.row for position in positions)
    columns = 1 + max(position.column for position in positions)
    return len(positions) < rows * columns


def read_cells(image: Image.Image, serial: str | None = None) -> dict[str, str]:
    """The cells of one card in ``image``, position label -> content: the card ``serial``
    (as printed, ``"ABCDE-FGHJK"``, or bare), or else the only card in view."""
    cards = read_cards(image)
    if serial is not None:
        wanted = normalize_serial(serial)
        if wanted not in cards:
            raise Malformed(f"card {format_serial(wanted)} is not readable in the image",
                            code="unreadable_image")
        return cards[wanted]
    if not cards:
        raise Malformed("no grid card in the image", code="unreadable_image")
    if len(cards) > 1:
        shown = ", ".join(sorted(format_serial(found) for found in cards))
        raise InvalidField(f"{len(cards)} cards in view ({shown}): name one by its serial")
    (cells,) = cards.values()
    return cells


def pick_cell(image: Image.Image, position: str, serial: str | None = None) -> str:
    """The content of the cell at ``position`` (``"C4"``) of card ``serial`` (or of the only
    card in view): what the phone sends as its answer."""
    label = parse_position(position).label
    cells = read_cells(image, serial)
    if label not in cells:
        raise Malformed(f"cell {label} is not readable in the image: get it in view",
                        code="unreadable_image")
    return cells[label]
