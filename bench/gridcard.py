"""Scheme A (printed grid cards): how fast cards are printed, and how well a phone reads them.

* print: cards/s through ``qrgate.gridcard.printing.write_pdf_volumes`` into a temporary
  directory, for N cards whose cells were derived beforehand (printing alone), then for N
  cards from a fresh card key to the PDF (cells derived and their keyed digests computed
  per card, as ``qrgate.gridcard.cards.issue`` does, without its database), and for that
  derivation alone;
* read: page 0 of the first volume rasterised at 150 dpi (a sheet of three cards), read as
  a scan and as K photos (``qrgate.clients.gridcard_card.photo_like``, one per seed):
  cells read / cells printed, and ms per page decode, p50 and p99.

    .venv/bin/python bench/gridcard.py                 # 300 cards, 20 photos
    .venv/bin/python bench/gridcard.py --cards 900 --seeds 50

Needs no server. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from PIL import Image

from qrgate.clients.gridcard_card import photo_like, read_cards, render_page
from qrgate.core.digests import SecretDigests
from qrgate.core.gridcard import (
    CARD_KEY_BYTES,
    SERIAL_RANDOM_BYTES,
    Layout,
    issue_card,
    serial_from_random,
)
from qrgate.gridcard.cards import cell_digester
from qrgate.gridcard.printing import CARDS_PER_PAGE, CardToPrint, write_pdf_volumes

ISSUER = "Bench Bank"
EXPIRES_ON = date(2028, 11, 30)


def fresh_cards(count: int, digests: SecretDigests | None = None) -> Iterator[CardToPrint]:
    """Cards from fresh random keys and serials; with ``digests``, each card's stored form
    is computed too, as issuing does."""
    layout = Layout()
    digester = None if digests is None else cell_digester(digests)
    for _ in range(count):
        card = issue_card(card_key=os.urandom(CARD_KEY_BYTES),
                          serial=serial_from_random(os.urandom(SERIAL_RANDOM_BYTES)),
                          layout=layout)
        if digester is not None:
            card.digests(digester)
        yield CardToPrint(card=card, expires_on=EXPIRES_ON)


def timed_print(cards: Iterator[CardToPrint] | list[CardToPrint], directory: Path,
                per_volume: int) -> tuple[float, list[Path]]:
    directory.mkdir()
    start = time.perf_counter()
    paths = write_pdf_volumes(cards, issuer=ISSUER, directory=directory,
                              stem="cards", cards_per_volume=per_volume)
    return time.perf_counter() - start, paths


def bench_printing(count: int, per_volume: int, workdir: Path) -> tuple[list[CardToPrint], Path]:
    """Prints the two rates; returns the cards printed alone and their first volume."""
    derived = list(fresh_cards(count))
    alone, paths = timed_print(derived, workdir / "printed", per_volume)
    size = sum(path.stat().st_size for path in paths)
    print(f"print: {count} cards, {len(paths)} volume(s) of up to {per_volume}, "
          f"{size / count / 1024:.1f} KiB per card")
    print(f"  printing alone:          {count / alone:7.1f} cards/s  ({alone:.2f} s)")
    digests = SecretDigests(os.urandom(32))
    issued, _ = timed_print(fresh_cards(count, digests), workdir / "issued", per_volume)
    print(f"  key, cells, digests, PDF: {count / issued:6.1f} cards/s  ({issued:.2f} s)")
    start = time.perf_counter()
    for _ in fresh_cards(count, digests):
        pass
    derivation = time.perf_counter() - start
    print(f"  key, cells, digests only: {count / derivation:6.0f} cards/s  "
          f"({derivation:.2f} s)")
    return derived, paths[0]


def bench_reading(printed: list[CardToPrint], volume: Path, seeds: int) -> None:
    expected = {item.card.serial: {cell.position.label: cell.content
                                   for cell in item.card.cells}
                for item in printed[:CARDS_PER_PAGE]}
    start = time.perf_counter()
    page = render_page(volume.read_bytes(), page=0, dpi=150)
    rendered = time.perf_counter() - start
    print(f"read: page 0 of {volume.name}, {len(expected)} cards, "
          f"rendered at 150 dpi in {rendered * 1000:.0f} ms ({page.width}x{page.height})")
    report_reading("scan (150 dpi)", [page], expected)
    report_reading(f"photos ({seeds} seeds)",
                   [photo_like(page, seed=seed) for seed in range(seeds)], expected)


def report_reading(name: str, images: list[Image.Image],
                   expected: dict[str, dict[str, str]]) -> None:
    printed = sum(len(cells) for cells in expected.values()) * len(images)
    found, timings = 0, []
    for image in images:
        start = time.perf_counter()
        cards = read_cards(image)
        timings.append(time.perf_counter() - start)
        found += sum(content == expected.get(serial, {}).get(label)
                     for serial, cells in cards.items() for label, content in cells.items())
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"  {name:<18} {found}/{printed} cells read ({100 * found / printed:.2f} %), "
          f"decode p50 {statistics.median(timings) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms per page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=300, help="cards printed per run")
    parser.add_argument("--cards-per-volume", type=int, default=99)
    parser.add_argument("--seeds", type=int, default=20, help="photos of the page read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qrgate-bench-gridcard-") as workdir:
        printed, first_volume = bench_printing(args.cards, args.cards_per_volume,
                                               Path(workdir))
        bench_reading(printed, first_volume, args.seeds)
    # Next section: authentication flows/s (password, asked position, the phone's read of
    # the cell, answer) against a server, printed after the two above.


if __name__ == "__main__":
    main()
