"""The QR code ``qrgate serve`` draws in the terminal (qrgate.cli.terminal_qr): drawn as text,
read back from the characters, decoded as a phone would, with colours and without."""

from __future__ import annotations

import numpy as np
import pytest
import zxingcpp

from qrgate.cli.terminal_qr import QUIET_ZONE, qr_lines, read_lines
from qrgate.qrimage import modules


def decode(dark: np.ndarray) -> list[str]:
    pixels = np.where(np.kron(dark, np.ones((3, 3), dtype=bool)), 0, 255).astype(np.uint8)
    return [found.text for found in
            zxingcpp.read_barcodes(pixels, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.mark.parametrize("text", [
    "https://127.0.0.1:8443/app/",
    "https://192.168.178.100:65535/app/",
    "https://[fd00:1234:5678::2]:8443/app/",
    "https://qrgate.example.com/a/rather/long/path/prefix/app/",
])
@pytest.mark.parametrize("ansi", [False, True])
def test_what_is_drawn_decodes(text: str, ansi: bool) -> None:
    lines = qr_lines(text, ansi=ansi)
    dark = read_lines(lines, ansi=ansi)
    symbol = modules(text, ecc="L")
    side = symbol.shape[0] + 2 * QUIET_ZONE
    # Two modules per character cell; an odd last row is padded with quiet zone.
    assert len(lines) == (side + 1) // 2
    assert dark.shape == (2 * len(lines), side)
    assert (dark[QUIET_ZONE:QUIET_ZONE + symbol.shape[0],
                 QUIET_ZONE:QUIET_ZONE + symbol.shape[0]] == symbol).all()
    assert not dark[:QUIET_ZONE].any() and not dark[:, :QUIET_ZONE].any()
    assert decode(dark) == [text]


def test_without_colours_the_light_modules_are_the_blocks() -> None:
    # For logs read on dark backgrounds: the quiet zone is printed, the dark modules are not.
    lines = qr_lines("https://127.0.0.1:8443/app/", ansi=False)
    assert set(lines[0]) == {"█"}
    assert all("\x1b" not in line for line in lines)


def test_with_colours_black_is_black_on_any_theme() -> None:
    lines = qr_lines("https://127.0.0.1:8443/app/", ansi=True)
    assert all(line.startswith("\x1b[30;107m") and line.endswith("\x1b[0m") for line in lines)
    assert lines[0] == "\x1b[30;107m" + " " * (len(lines[0]) - 13) + "\x1b[0m"
