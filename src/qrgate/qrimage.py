"""QR images both ways, with zxing-cpp: render codes for screens, read them from photos.

Rendering returns PNG (through Pillow) or SVG. Decoding accepts whatever Pillow opens
(PNG, JPEG, ...), converts it to greyscale and lets zxing-cpp find every QR symbol in it,
however rotated or small. Input that is not an image raises
:class:`~qrgate.errors.Malformed` with code ``"unreadable_image"``; an image in which no QR
symbol is found is not an error and yields an empty list.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

from qrgate.errors import InvalidField, Malformed, PayloadTooLarge

ECC_LEVELS: Final = frozenset({"L", "M", "Q", "H"})
# A phone photo is 12-50 Mpx; more than this is not a photo of a screen but an attack on
# our memory (Pillow's own bomb check would only warn, and warnings are errors in tests).
MAX_IMAGE_PIXELS: Final = 64_000_000
MAX_IMAGE_BYTES: Final = 32 * 1024 * 1024
_QR_ONLY: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


@dataclass(frozen=True, kw_only=True)
class DecodedQR:
    text: str
    version: int
    ec_level: str
    # Corners in image pixels: top-left, top-right, bottom-right, bottom-left of the symbol.
    position: tuple[tuple[int, int], ...]


def _create(text: str, ecc: str) -> zxingcpp.Barcode:
    if ecc not in ECC_LEVELS:
        raise InvalidField(f"ECC level must be one of L, M, Q, H, not {ecc!r}")
    if not text:
        raise InvalidField("cannot render an empty QR code")
    try:
        return zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=ecc)
    except ValueError as exc:
        if "too long" in str(exc):
            raise PayloadTooLarge("text does not fit in a QR code") from exc
        raise InvalidField(f"cannot render QR code: {exc}") from exc


def render_png(text: str, *, ecc: str = "M", scale: int = 6, quiet_zone: bool = True) -> bytes:
    if not 1 <= scale <= 64:
        raise InvalidField("scale must be between 1 and 64")
    image = _create(text, ecc).to_image(scale=scale, add_quiet_zones=quiet_zone)
    out = io.BytesIO()
    Image.fromarray(np.asarray(image), mode="L").save(out, format="PNG", optimize=False)
    return out.getvalue()


def render_svg(text: str, *, ecc: str = "M") -> str:
    """The code as an SVG that scales with CSS: one user unit per module, quiet zone
    included (``viewBox="0 0 N N"``), no width or height of its own, so the page sets the
    size; ``crispEdges`` so modules stay sharp squares at any scale. The light background
    is drawn, not assumed: on a dark page the quiet zone must still be light to scan."""
    modules = np.asarray(_create(text, ecc).to_image(scale=1, add_quiet_zones=True)) < 128
    side = modules.shape[0]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}"'
            ' shape-rendering="crispEdges">'
            f'<rect width="{side}" height="{side}" fill="#fff"/>'
            f'<path fill="#000" d="{_dark_modules_path(modules)}"/></svg>\n')


def _dark_modules_path(dark: np.ndarray[Any, np.dtype[np.bool_]]) -> str:
    """One path for every dark module: each horizontal run of dark modules is a 1-unit high
    rectangle. A run starts with a move relative to the previous run of its row (a closed
    subpath returns to its start), which keeps a version 10 code near 10 kB."""
    parts: list[str] = []
    for y, row in enumerate(dark):
        edges = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        widths = np.flatnonzero(edges == -1) - starts
        previous: int | None = None
        for x, width in zip(starts.tolist(), widths.tolist(), strict=True):
            move = f"M{x} {y}" if previous is None else f"m{x - previous} 0"
            parts.append(f"{move}h{width}v1h-{width}z")
            previous = x
    return "".join(parts)


def modules(text: str, *, ecc: str = "M") -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The symbol as a square array, True for a dark module, without a quiet zone: for
    drawing it some other way (``qrgate serve`` prints one in the terminal)."""
    image = np.asarray(_create(text, ecc).to_image(scale=1, add_quiet_zones=False))
    dark: np.ndarray[Any, np.dtype[np.bool_]] = image < 128
    return dark


def qr_version(text: str, *, ecc: str = "M") -> int:
    """QR symbol version (1-40) that ``text`` needs at ``ecc``.

    Computed from the side of the generated symbol (version v has 17 + 4v modules), which
    is exact and avoids a decode round trip.
    """
    side: int = np.asarray(_create(text, ecc).to_image(scale=1, add_quiet_zones=False)).shape[0]
    return (side - 17) // 4


def _open_grey(data: bytes) -> Image.Image:
    if len(data) > MAX_IMAGE_BYTES:
        raise PayloadTooLarge("image file too large")
    try:
        with warnings.catch_warnings():
            # The size check below is ours; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise PayloadTooLarge("image has too many pixels")
            image.load()
            # Phone cameras store rotation in EXIF; apply it so positions match what people see.
            return ImageOps.exif_transpose(image).convert("L")
    except PayloadTooLarge:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise Malformed("not a readable image", code="unreadable_image") from exc


def _to_decoded(barcode: zxingcpp.Barcode) -> DecodedQR:
    extra = barcode.extra
    version = extra.get("Version") if isinstance(extra, dict) else None
    pos = barcode.position
    corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
    return DecodedQR(
        text=barcode.text,
        version=int(version) if version is not None else 0,
        ec_level=barcode.ec_level,
        position=tuple((p.x, p.y) for p in corners),
    )


def decode_image(data: bytes) -> list[DecodedQR]:
    grey = np.asarray(_open_grey(data))
    barcodes = zxingcpp.read_barcodes(grey, formats=_QR_ONLY)
    return [_to_decoded(barcode) for barcode in barcodes]
