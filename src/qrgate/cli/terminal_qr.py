"""A QR code drawn with text, for a phone to scan off the terminal (``qrgate serve``).

Each character cell holds two modules, one above the other, drawn with the Unicode half
blocks; a cell is about twice as tall as it is wide, so the modules come out square.

Which colour is "dark" depends on the terminal. On a terminal (a TTY) the code is drawn in
explicit black on white with ANSI colours, so it reads on a dark or a light theme alike.
Written to a file or a pipe (a log), there are no colours: the light modules are the
printed blocks, as ``qrencode -t UTF8`` does, because logs are mostly read on dark
backgrounds; on a light one the code shows inverted, which phone scanners also read.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from qrgate.qrimage import modules

# Two modules of quiet zone: the standard asks for four, but phones read two well, and the
# code must fit a terminal next to the log.
QUIET_ZONE: Final = 2
# Black text on a bright white background, then back to the terminal's own colours.
_ANSI_ON: Final = "\x1b[30;107m"
_ANSI_OFF: Final = "\x1b[0m"
# Index: 2 * (upper cell is drawn) + (lower cell is drawn).
_BLOCKS: Final = (" ", "▄", "▀", "█")


def qr_lines(text: str, *, ansi: bool) -> list[str]:
    """The lines that draw ``text`` as a QR code (ECC level L: the smallest symbol)."""
    dark = np.pad(modules(text, ecc="L"), QUIET_ZONE, constant_values=False)
    # With colours, the glyphs are the dark (black) modules; without, the light ones.
    drawn: np.ndarray[Any, np.dtype[np.bool_]] = dark if ansi else ~dark
    if drawn.shape[0] % 2:
        # An odd number of rows: the last cell's lower half is quiet zone too.
        drawn = np.vstack([drawn, np.full((1, drawn.shape[1]), not ansi)])
    lines = []
    for top, bottom in zip(drawn[0::2], drawn[1::2], strict=True):
        row = "".join(_BLOCKS[2 * int(upper) + int(lower)]
                      for upper, lower in zip(top, bottom, strict=True))
        lines.append(f"{_ANSI_ON}{row}{_ANSI_OFF}" if ansi else row)
    return lines


def read_lines(lines: list[str], *, ansi: bool) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The modules :func:`qr_lines` drew (True for dark), quiet zone included: for tests
    that decode what a terminal showed."""
    rows: list[list[bool]] = []
    for line in lines:
        text = line.removeprefix(_ANSI_ON).removesuffix(_ANSI_OFF) if ansi else line
        cells = [_BLOCKS.index(char) for char in text]
        rows.append([cell >= 2 for cell in cells])
        rows.append([cell % 2 == 1 for cell in cells])
    drawn = np.array(rows, dtype=bool)
    return drawn if ansi else ~drawn
