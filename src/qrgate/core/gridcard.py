"""Scheme A (CN103078862A): the printed QR grid card, its cells and their check.

The card, step by step, as the patent describes it and as qrgate builds it:

1.  **Issue** (patent [0023], claims 13-15). The server draws a random 32-byte *card key*
    and a random *serial* (:func:`serial_from_random`), both from the operating system's
    random bit generator, and derives every cell of the :class:`Layout` with
    :func:`issue_card`. Each cell is a QR code holding :func:`cell_content`; the printer
    (``qrgate.gridcard.printing``) draws it beside its position label (``A1`` .. ``F5``).
2.  **Store.** The server keeps, per cell, only a digest of its content (:func:`cell_digest`,
    or a keyed one: ``qrgate.gridcard.cards`` keys it under the KEK); the card key is
    thrown away once the card is printed. Reissue is a new key and a new
    serial: the old card's digests go, and with them every old cell.
3.  **Ask** (claim 3, step 2 of SPEC A). After the password, the server picks an unused
    position at random and sends its label; the user scans that cell.
4.  **Check** (claim 3, [0020]). :func:`verify_cell` parses the scanned text, then tells a
    cell of another card (``field_mismatch``), a genuine cell of this card at another
    position (``wrong_response``) and anything else, a forgery (``bad_signature``). Each is
    a failed attempt for the caller to count; success names the cell to mark as used.

**The cell**, precisely (43 characters, all in the QR alphanumeric set, so a cell is a
version 3 symbol at ECC level Q)::

    QGA1:<serial>:<position>:<secret>
    QGA1       scheme A, format version 1
    serial     10 Crockford Base32 symbols: 9 random ones and a check symbol
    position   row letter A-Z and column digit 1-9, e.g. "F5"
    secret     24 Crockford Base32 symbols: the first 120 bits of
               HMAC-SHA256(card key, "qrgate gridcard cell v1" || 0x00 || serial || position)

Serial and position are in clear so that the phone can pick the asked cell out of a photo
of the whole card; they are not secret and help forge nothing. The secret is a PRF output
under a key no one keeps, so one cell (or 29) says nothing about another; the label keeps
this use of the key apart from any other, and serial and position have fixed lengths, so
the MAC input is unambiguous.

**Why this meets NIST SP 800-63B-4 for look-up secrets** (sec. 3.1.2):

- 3.1.2.1: secrets come from an approved random bit generator and are "at least six
  decimal digits (or equivalent)". Ours are 120-bit outputs of HMAC-SHA256 keyed with 256
  random bits, far past six digits (about 20 bits).
- 3.1.2.2: "All look-up secrets SHALL be stored in a hashed form using an approved hashing
  function"; secrets shorter than 112 bits must instead be salted and hashed with a
  password hashing scheme. Ours have 120 bits, so one SHA-256 per cell
  (:func:`cell_digest`) is the stored form the rule asks for. Keeping the card key sealed
  and recomputing cells would not be "hashed form", and would let anyone holding the
  sealing key and the database print the card again; that is why the key is dropped.
- 3.1.2.2 also asks that a secret succeed only once and that each grid cell SHOULD be
  used only once, and sec. 3.2.2 asks for rate limiting: both are the service's job (it
  records used cells and counts failures); this module only decides one scan.

This module is pure: no I/O, no clock; randomness comes in as arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final

from qrgate.errors import (
    BadCredentials,
    BadSignature,
    InvalidField,
    MalformedCode,
    Rejected,
    Replayed,
    UnsupportedVersion,
)

PREFIX: Final = "QGA"
VERSION: Final = 1
CARD_KEY_BYTES: Final = 32
SERIAL_RANDOM_BYTES: Final = 6
SERIAL_LENGTH: Final = 10
SECRET_BITS: Final = 120
SECRET_LENGTH: Final = SECRET_BITS // 5
CELL_LENGTH: Final = len(f"{PREFIX}{VERSION}:") + SERIAL_LENGTH + 1 + 2 + 1 + SECRET_LENGTH
MIN_CELLS: Final = 30
MAX_ROWS: Final = 26  # one letter per row
MAX_COLUMNS: Final = 9  # one digit per column: a position is always two characters
MAC_LABEL: Final = b"qrgate gridcard cell v1"
DIGEST_LABEL: Final = b"qrgate gridcard stored cell v1"

# Crockford's Base32: digits and upper-case letters without I, L, O and U, so a serial read
# aloud or typed is hard to get wrong, and every symbol is in the QR alphanumeric set.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE: Final = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Letters people type for the digits they look like (Crockford's decoding rules).
_LOOKALIKES: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_HEAD = re.compile(r"QGA([0-9]{1,3})")
_SYMBOLS = re.compile(f"[{ALPHABET}]+")
_POSITION = re.compile(r"([A-Z])([1-9])")
# Anything longer is not a cell: refuse it before splitting or matching anything.
_MAX_INPUT: Final = 64


@dataclass(frozen=True, kw_only=True, order=True)
class Position:
    """A cell of the grid: ``row`` 0 is "A", ``column`` 0 is "1"."""

    row: int
    column: int

    def __post_init__(self) -> None:
        if not (_small_int(self.row, MAX_ROWS) and _small_int(self.column, MAX_COLUMNS)):
            raise InvalidField("a position is a row 0-25 and a column 0-8")

    @property
    def label(self) -> str:
        return f"{chr(ord('A') + self.row)}{self.column + 1}"


def parse_position(label: str) -> Position:
    """``"C4"`` -> row 2, column 3. Strict: upper case, exactly two characters."""
    match = _POSITION.fullmatch(label) if isinstance(label, str) else None
    if match is None:
        raise InvalidField("a position is a letter A-Z and a digit 1-9, e.g. 'C4'")
    return Position(row=ord(match[1]) - ord("A"), column=int(match[2]) - 1)


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Rows lettered from A, columns numbered from 1, as seats are: the default 6 x 5 is
    the issue's A1 .. F5. At least :data:`MIN_CELLS` cells, so a card lasts a while."""

    rows: int = 6
    columns: int = 5

    def __post_init__(self) -> None:
        if not (_small_int(self.rows - 1, MAX_ROWS) and _small_int(self.columns - 1, MAX_COLUMNS)):
            raise InvalidField(f"a layout has 1-{MAX_ROWS} rows and 1-{MAX_COLUMNS} columns")
        if self.rows * self.columns < MIN_CELLS:
            raise InvalidField(f"a card has at least {MIN_CELLS} cells")

    @property
    def size(self) -> int:
        return self.rows * self.columns

    def positions(self) -> tuple[Position, ...]:
        """Row by row: A1, A2, ..., B1, ..."""
        return tuple(Position(row=r, column=c)
                     for r in range(self.rows) for c in range(self.columns))

    def __contains__(self, position: object) -> bool:
        return (isinstance(position, Position)
                and position.row < self.rows and position.column < self.columns)


def _small_int(value: object, bound: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound


# --- serials ------------------------------------------------------------------------------


def _check_symbol(body: str) -> str:
    """Luhn mod 32 over the symbols' values: catches every single wrong symbol and every swap
    of two neighbours but 0 and Z, which a weighted sum mod 32 could not (an even modulus)."""
    total = 0
    for index, symbol in enumerate(reversed(body)):
        addend = _VALUE[symbol] * (2 if index % 2 == 0 else 1)
        total += addend // 32 + addend % 32
    return ALPHABET[-total % 32]


def serial_from_random(random: bytes) -> str:
    """A new serial from :data:`SERIAL_RANDOM_BYTES` random bytes: 45 of their bits as 9
    symbols, then the check symbol. Serials are not secret; the store keeps them unique."""
    if not isinstance(random, bytes) or len(random) != SERIAL_RANDOM_BYTES:
        raise InvalidField(f"a serial takes {SERIAL_RANDOM_BYTES} random bytes")
    bits = int.from_bytes(random, "big") >> (8 * SERIAL_RANDOM_BYTES - 5 * (SERIAL_LENGTH - 1))
    body = _base32(bits, SERIAL_LENGTH - 1)
    return body + _check_symbol(body)


def is_valid_serial(serial: object) -> bool:
    return (isinstance(serial, str) and len(serial) == SERIAL_LENGTH
            and _SYMBOLS.fullmatch(serial) is not None
            and _check_symbol(serial[:-1]) == serial[-1])


def normalize_serial(typed: str) -> str:
    """A serial as an operator types it ("7kq2m-9xh4c", O for 0) to its canonical form;
    a wrong symbol fails the check symbol. Codes in QRs are never normalised."""
    if not isinstance(typed, str) or len(typed) > 3 * SERIAL_LENGTH:
        raise InvalidField("not a card serial")
    serial = typed.replace("-", "").replace(" ", "").upper().translate(_LOOKALIKES)
    if not is_valid_serial(serial):
        raise InvalidField("not a card serial (a symbol is wrong or missing)")
    return serial


def format_serial(serial: str) -> str:
    """For people: two groups of five, as printed on the card."""
    return f"{serial[:5]}-{serial[5:]}"


def _base32(value: int, length: int) -> str:
    symbols = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        symbols.append(ALPHABET[digit])
    return "".join(reversed(symbols))


# --- cells --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Cell:
    """A parsed cell: everything a cell's content holds, and nothing else."""

    version: int
    serial: str
    position: Position
    secret: str

    def text(self) -> str:
        return f"{PREFIX}{self.version}:{self.serial}:{self.position.label}:{self.secret}"


@dataclass(frozen=True, kw_only=True)
class CardCell:
    position: Position
    # What the QR holds. A secret: printed on the card, never stored.
    content: str


@dataclass(frozen=True, kw_only=True)
class IssuedCard:
    serial: str
    layout: Layout
    cells: tuple[CardCell, ...]

    def digests(self, digest: CellDigest | None = None) -> dict[Position, bytes]:
        """What the server stores for this card: one digest per cell, :func:`cell_digest`
        unless the caller keeps cells under its own (keyed) ``digest``."""
        stored = digest or cell_digest
        return {cell.position: stored(cell.content) for cell in self.cells}


def _check_key(card_key: bytes) -> None:
    if not isinstance(card_key, bytes) or len(card_key) != CARD_KEY_BYTES:
        raise InvalidField(f"a card key is {CARD_KEY_BYTES} bytes", code="bad_key_material")


def cell_content(*, card_key: bytes, serial: str, position: Position) -> str:
    """The text of the QR at ``position`` on card ``serial``; see the module's docstring."""
    _check_key(card_key)
    if not is_valid_serial(serial):
        raise InvalidField("not a card serial")
    if not isinstance(position, Position):
        raise InvalidField("not a position")
    message = MAC_LABEL + b"\x00" + serial.encode("ascii") + position.label.encode("ascii")
    mac = hmac.new(card_key, message, hashlib.sha256).digest()[: SECRET_BITS // 8]
    secret = _base32(int.from_bytes(mac, "big"), SECRET_LENGTH)
    return Cell(version=VERSION, serial=serial, position=position, secret=secret).text()


def issue_card(*, card_key: bytes, serial: str, layout: Layout) -> IssuedCard:
    """Every cell of a new card. The caller prints ``cells``, stores ``digests()`` and
    forgets ``card_key``."""
    cells = tuple(CardCell(position=position,
                           content=cell_content(card_key=card_key, serial=serial,
                                                position=position))
                  for position in layout.positions())
    return IssuedCard(serial=serial, layout=layout, cells=cells)


# How a cell's content becomes its stored form: :func:`cell_digest`, or a server's keyed
# digest (qrgate.gridcard.cards keys it, as every compared secret, under the KEK).
CellDigest = Callable[[str], bytes]


def cell_digest(content: str) -> bytes:
    """The stored form of a cell (SP 800-63B-4 3.1.2.2: hashed with an approved function;
    120-bit secrets need no salt or password hash). The whole canonical text is hashed, so
    a digest also names its card and position."""
    return hashlib.sha256(DIGEST_LABEL + b"\x00" + content.encode("ascii")).digest()


def parse_cell(content: object) -> Cell:
    """Strict parser of a scanned cell. Raises :class:`~qrgate.errors.UnsupportedVersion`
    for a later format of ours and :class:`~qrgate.errors.MalformedCode` for anything else
    that is not exactly one canonical cell."""
    # mutation: ">=" is equivalent: a cell is 43 characters, so 64 of them are malformed
    # one way or the other.
    if not isinstance(content, str) or len(content) > _MAX_INPUT:
        raise MalformedCode("not a grid card cell")
    parts = content.split(":")
    head = _HEAD.fullmatch(parts[0])
    if head is None:
        raise MalformedCode("not a grid card cell")
    if head[1] != str(VERSION):
        raise UnsupportedVersion(f"grid card cell version {head[1]} is not supported")
    if len(parts) != 4:
        raise MalformedCode("a grid card cell has four fields")
    _, serial, label, secret = parts
    if not is_valid_serial(serial):
        raise MalformedCode("the cell's serial is not valid")
    if len(secret) != SECRET_LENGTH or _SYMBOLS.fullmatch(secret) is None:
        raise MalformedCode("the cell's secret is not 24 Base32 symbols")
    try:
        position = parse_position(label)
    except InvalidField as exc:
        raise MalformedCode("the cell's position is not valid") from exc
    return Cell(version=VERSION, serial=serial, position=position, secret=secret)


@dataclass(frozen=True, kw_only=True)
class VerifiedCell:
    serial: str
    position: Position


def verify_cell(
    *,
    content: object,
    expected_serial: str,
    expected_position: Position,
    cell_digests: Mapping[Position, bytes],
    digest: CellDigest | None = None,
    used: Collection[Position] = (),
) -> VerifiedCell:
    """Check a scanned cell against the position the server asked for.

    ``cell_digests`` are the stored digests of the user's current card, made with
    ``digest`` (default :func:`cell_digest`) from each cell's content. Digests are compared
    with :func:`hmac.compare_digest`, and both comparisons run whatever the first says.
    Raises ``wrong_card`` (:class:`~qrgate.errors.Rejected`) for a cell of another card,
    ``wrong_cell`` (:class:`~qrgate.errors.BadCredentials`) for a genuine cell of this
    card at another position, ``cell_used`` (:class:`~qrgate.errors.Replayed`) when that
    cell is one of the ``used`` ones (a replay), ``bad_signature`` for a forged cell;
    malformed text as :func:`parse_cell` does. Telling a wrong cell from a forged one helps
    no forger: a forger learns only whether a 120-bit guess was right, which the caller's
    attempt limit bounds.
    """
    if expected_position not in cell_digests:
        raise InvalidField("the asked position is not on this card")
    cell = parse_cell(content)
    if not hmac.compare_digest(cell.serial.encode("ascii"), expected_serial.encode("ascii")):
        raise Rejected("this cell is from another card", code="wrong_card")
    scanned = (digest or cell_digest)(cell.text())
    matches_asked = hmac.compare_digest(scanned, cell_digests[expected_position])
    # The position is in clear: a digest is looked up by it, but compared in constant time.
    # mutation: another bytes default is equivalent: no digest is 4 bytes long, and a
    # position off the card matches nothing whatever it is compared with.
    claimed = cell_digests.get(cell.position, b"")
    matches_claimed = hmac.compare_digest(scanned, claimed)
    if matches_asked and cell.position == expected_position:
        return VerifiedCell(serial=cell.serial, position=cell.position)
    if matches_claimed and cell.position in used:
        raise Replayed(f"cell {cell.position.label} was used already", code="cell_used")
    if matches_claimed:
        raise BadCredentials(f"this is cell {cell.position.label}, not "
                             f"{expected_position.label}", code="wrong_cell")
    raise BadSignature("this cell was not issued with this card", code="bad_signature")
