"""Scheme A (printed grid cards): how fast cards are printed, and how well a phone reads them.

* print: cards/s through ``qrgate.gridcard.printing.write_pdf_volumes`` into a temporary
  directory, for N cards whose cells were derived beforehand (printing alone), then for N
  cards from a fresh card key to the PDF (cells derived and their keyed digests computed
  per card, as ``qrgate.gridcard.cards.issue`` does, without its database), and for that
  derivation alone;
* read: page 0 of the first volume rasterised at 150 dpi (a sheet of three cards), read as
  a scan and as K photos (``qrgate.clients.gridcard_card.photo_like``, one per seed):
  cells read / cells printed, and ms per page decode, p50 and p99;
* flows: N concurrent users sign in through a relying party (``POST
  /v1/gridcard/attempts``: password, asked position) and answer with the asked cell, against
  a spawned server (SQLite) or ``--url``: flows/s, p50/p99 per step, and the ratio to the
  crypto floor, the scrypt check of the password each sign-in must pay. Each user's card
  comes from ``POST /v1/gridcard/cards`` and is read once from its PDF; a spent card is
  replaced outside the measured steps.

    .venv/bin/python bench/gridcard.py                 # 300 cards, 20 photos, 32 users 15 s
    .venv/bin/python bench/gridcard.py --cards 900 --seeds 50 --users 16 --seconds 30
    .venv/bin/python bench/gridcard.py --url http://127.0.0.1:8000 --api-key qgk_...

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import aiohttp
from common import Http, Timings, measured, options, print_latencies, spawned_server
from PIL import Image

from qrgate.clients.gridcard_card import photo_like, read_cards, read_cells, render_page
from qrgate.core.digests import SecretDigests
from qrgate.core.gridcard import (
    CARD_KEY_BYTES,
    SERIAL_RANDOM_BYTES,
    Layout,
    issue_card,
    serial_from_random,
)
from qrgate.core.passwords import new_password_hash, verify_password
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


PASSWORD = "bench password"
STEPS = ("sign-in", "answer")


class CardHolder:
    """A bench user and the cells of their current card, read once from its PDF."""

    def __init__(self, login: str) -> None:
        self.login = login
        self.cells: dict[str, str] = {}
        self.unused = 0

    async def new_card(self, http: Http, api: dict[str, str]) -> None:
        pdf = await http.call("POST", "/v1/gridcard/cards", headers=api,
                              json_body={"login": self.login, "days": 30}, raw=True)
        self.cells = read_cells(render_page(pdf))
        self.unused = len(self.cells)


async def holder(http: Http, api: dict[str, str], login: str) -> CardHolder:
    await http.call("POST", "/v1/users", headers=api,
                    json_body={"login": login, "password": PASSWORD})
    card_holder = CardHolder(login)
    await card_holder.new_card(http, api)
    return card_holder


async def flow(http: Http, api: dict[str, str], user: CardHolder, timings: Timings) -> None:
    if user.unused == 0:
        await user.new_card(http, api)  # outside the measured steps
    t0 = time.perf_counter()
    started = await http.call("POST", "/v1/gridcard/attempts", headers=api,
                              json_body={"login": user.login, "password": PASSWORD})
    t1 = time.perf_counter()
    done = await http.call("POST", f"/v1/gridcard/attempts/{started['attempt_id']}/answer",
                           headers={"qrgate-attempt-token": started["answer_token"]},
                           json_body={"cell": user.cells[started["position"]]})
    t2 = time.perf_counter()
    user.unused -= 1
    if done["state"] != "authenticated":
        raise RuntimeError(f"flow ended {done['state']}")
    timings["sign-in"].append(t1 - t0)
    timings["answer"].append(t2 - t1)
    timings["flow"].append(t2 - t0)


async def bench_flows(url: str, api_key: str, users: int, seconds: float,
                      warmup: float) -> None:
    api = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=users * 2)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        http = Http(url, session)
        run_id = secrets.token_hex(3)
        holders = await asyncio.gather(*(holder(http, api, f"gc-{run_id}-{n}")
                                         for n in range(users)))
        timings, errors, elapsed = await measured(
            holders, lambda card_holder, sink: flow(http, api, card_holder, sink),
            warmup=warmup, seconds=seconds)
    flows = len(timings["flow"])
    floor = scrypt_seconds()
    print(f"flows: users {users}, measured {elapsed:.1f} s, {flows} sign-ins authenticated, "
          f"{len(errors)} errors")
    print(f"  throughput {flows / elapsed:.1f} flows/s; crypto floor: one scrypt check "
          f"{floor * 1000:.0f} ms = {os.cpu_count()} cores x {1 / floor:.1f} flows/s "
          f"= {(os.cpu_count() or 1) / floor:.1f} flows/s "
          f"(ratio {flows / elapsed * floor / (os.cpu_count() or 1):.2f})")
    print_latencies(timings, (*STEPS, "flow"), errors)


def scrypt_seconds(rounds: int = 5) -> float:
    """What one sign-in's password check costs here, in this process."""
    encoded = new_password_hash(PASSWORD)
    start = time.perf_counter()
    for _ in range(rounds):
        verify_password(PASSWORD, encoded)
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = options(__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=300, help="cards printed per run")
    parser.add_argument("--cards-per-volume", type=int, default=99)
    parser.add_argument("--seeds", type=int, default=20, help="photos of the page read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qrgate-bench-gridcard-") as workdir:
        printed, first_volume = bench_printing(args.cards, args.cards_per_volume,
                                               Path(workdir))
        bench_reading(printed, first_volume, args.seeds)
    if args.url:
        if not args.api_key:
            parser.error("--api-key (or QRGATE_BENCH_API_KEY) is needed with --url")
        asyncio.run(bench_flows(args.url, args.api_key, args.users, args.seconds, args.warmup))
        return
    with spawned_server(args.workers) as (url, api_key):
        asyncio.run(bench_flows(url, api_key, args.users, args.seconds, args.warmup))


if __name__ == "__main__":
    main()
