"""Grid card cells (qrgate.core.gridcard): cells never collide within or across cards, a cell
holds only its version, serial, position and secret, a cell checks only at its own place
on its own card, and the parser refuses everything else with a qrgate error."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrgate.core.gridcard import (
    ALPHABET,
    CELL_LENGTH,
    MAC_LABEL,
    SECRET_LENGTH,
    Layout,
    Position,
    cell_content,
    cell_digest,
    format_serial,
    is_valid_serial,
    issue_card,
    normalize_serial,
    parse_cell,
    parse_position,
    serial_from_random,
    verify_cell,
)
from qrgate.errors import (
    BadCredentials,
    BadSignature,
    InvalidField,
    MalformedCode,
    QrgateError,
    Rejected,
    Replayed,
    UnsupportedVersion,
)
from qrgate.qrimage import qr_version

keys = st.binary(min_size=32, max_size=32)
serials = st.binary(min_size=6, max_size=6).map(serial_from_random)
layouts = st.sampled_from([Layout(), Layout(rows=5, columns=6), Layout(rows=8, columns=4)])
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def _card(key: bytes | None = None, serial: str | None = None, layout: Layout | None = None):
    return issue_card(card_key=key or os.urandom(32),
                      serial=serial or serial_from_random(os.urandom(6)),
                      layout=layout or Layout())


def test_default_card_is_thirty_cells_a1_to_f5() -> None:
    labels = [p.label for p in Layout().positions()]
    assert len(labels) == 30
    assert labels[:6] == ["A1", "A2", "A3", "A4", "A5", "B1"]
    assert labels[-1] == "F5"
    assert all(parse_position(label).label == label for label in labels)


@pytest.mark.parametrize(("rows", "columns"), [(5, 5), (27, 5), (6, 10), (0, 30), (True, 30)])
def test_layouts_out_of_bounds_are_refused(rows: int, columns: int) -> None:
    with pytest.raises(InvalidField):
        Layout(rows=rows, columns=columns)


def test_a_cell_is_43_alphanumeric_characters_in_a_version_3_code_at_q() -> None:
    content = _card().cells[0].content
    assert len(content) == CELL_LENGTH == 43
    assert set(content) <= QR_ALPHANUMERIC
    assert qr_version(content, ecc="Q") == 3


def test_the_secret_is_the_first_120_bits_of_the_hmac() -> None:
    key, serial = bytes(range(32)), serial_from_random(b"\x00\x01\x02\x03\x04\x05")
    mac = hmac.new(key, MAC_LABEL + b"\x00" + serial.encode() + b"C4", hashlib.sha256).digest()
    value = int.from_bytes(mac[:15], "big")
    expected = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(24)))
    content = cell_content(card_key=key, serial=serial, position=parse_position("C4"))
    assert content == f"QGA1:{serial}:C4:{expected}"


@settings(max_examples=40, deadline=None)
@given(key=keys, serial=serials, layout=layouts)
def test_no_two_cells_of_a_card_collide(key: bytes, serial: str, layout: Layout) -> None:
    card = issue_card(card_key=key, serial=serial, layout=layout)
    secrets = [parse_cell(cell.content).secret for cell in card.cells]
    assert len(secrets) == layout.size == len(set(secrets))
    assert len(set(card.digests().values())) == layout.size


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(keys, min_size=2, max_size=2, unique=True),
       serials=st.lists(serials, min_size=2, max_size=2))
def test_no_cells_of_two_cards_collide(keys: list[bytes], serials: list[str]) -> None:
    first, second = (issue_card(card_key=k, serial=s, layout=Layout())
                     for k, s in zip(keys, serials, strict=True))
    one = {parse_cell(cell.content).secret for cell in first.cells}
    other = {parse_cell(cell.content).secret for cell in second.cells}
    assert not one & other
    assert not set(first.digests().values()) & set(second.digests().values())


@settings(max_examples=40, deadline=None)
@given(key=keys, serial=serials, index=st.integers(min_value=0, max_value=29))
def test_a_cell_holds_only_version_serial_position_and_secret(
        key: bytes, serial: str, index: int) -> None:
    card = issue_card(card_key=key, serial=serial, layout=Layout())
    content = card.cells[index].content
    cell = parse_cell(content)
    # Rebuilt from its four fields alone, the text is the same: it holds nothing else...
    assert cell.text() == content
    assert (cell.version, cell.serial, cell.position) == (1, serial, card.cells[index].position)
    assert len(cell.secret) == SECRET_LENGTH
    # ...and neither the key nor anything the server stores appears in it.
    assert key.hex().upper() not in content
    assert all(digest.hex().upper() not in content for digest in card.digests().values())


@settings(max_examples=40, deadline=None)
@given(key=keys, serial=serials, index=st.integers(min_value=0, max_value=29),
       other=st.integers(min_value=0, max_value=29))
def test_moving_a_cell_to_another_position_is_a_forgery(
        key: bytes, serial: str, index: int, other: int) -> None:
    card = issue_card(card_key=key, serial=serial, layout=Layout())
    cell = parse_cell(card.cells[index].content)
    moved_to = Layout().positions()[other]
    forged = f"QGA1:{serial}:{moved_to.label}:{cell.secret}"
    if other == index:
        assert verify_cell(content=forged, expected_serial=serial, expected_position=moved_to,
                           cell_digests=card.digests()).position == moved_to
        return
    with pytest.raises(BadSignature) as caught:
        verify_cell(content=forged, expected_serial=serial, expected_position=moved_to,
                    cell_digests=card.digests())
    assert caught.value.code == "bad_signature"


def test_every_cell_verifies_at_its_own_position_only() -> None:
    card = _card()
    digests = card.digests()
    for cell in card.cells:
        verified = verify_cell(content=cell.content, expected_serial=card.serial,
                               expected_position=cell.position, cell_digests=digests)
        assert verified.position == cell.position
    asked = parse_position("B2")
    with pytest.raises(BadCredentials) as caught:
        verify_cell(content=card.cells[0].content, expected_serial=card.serial,
                    expected_position=asked, cell_digests=digests)
    assert caught.value.code == "wrong_cell"


def test_a_used_cell_of_this_card_is_a_replay() -> None:
    card = _card()
    used = card.cells[0]
    with pytest.raises(Replayed) as caught:
        verify_cell(content=used.content, expected_serial=card.serial,
                    expected_position=card.cells[1].position, cell_digests=card.digests(),
                    used={used.position})
    assert caught.value.code == "cell_used"
    # Only a genuine cell is a replay: a forged one at a used position is a forgery.
    forged = f"QGA1:{card.serial}:{used.position.label}:{'0' * SECRET_LENGTH}"
    with pytest.raises(BadSignature):
        verify_cell(content=forged, expected_serial=card.serial,
                    expected_position=card.cells[1].position, cell_digests=card.digests(),
                    used={used.position})


def test_a_cell_of_another_card_is_refused_as_such() -> None:
    mine, theirs = _card(), _card()
    with pytest.raises(Rejected) as caught:
        verify_cell(content=theirs.cells[3].content, expected_serial=mine.serial,
                    expected_position=theirs.cells[3].position, cell_digests=mine.digests())
    assert caught.value.code == "wrong_card"


def test_a_reissued_card_under_the_same_serial_does_not_accept_old_cells() -> None:
    old = _card()
    new = _card(serial=old.serial)
    with pytest.raises(BadSignature):
        verify_cell(content=old.cells[0].content, expected_serial=old.serial,
                    expected_position=old.cells[0].position, cell_digests=new.digests())


@settings(max_examples=60, deadline=None)
@given(key=keys, serial=serials, flip=st.integers(min_value=0, max_value=SECRET_LENGTH - 1),
       symbol=st.sampled_from(ALPHABET))
def test_any_change_to_the_secret_is_a_forgery(
        key: bytes, serial: str, flip: int, symbol: str) -> None:
    card = issue_card(card_key=key, serial=serial, layout=Layout())
    cell = parse_cell(card.cells[0].content)
    secret = cell.secret[:flip] + symbol + cell.secret[flip + 1:]
    forged = f"QGA1:{serial}:A1:{secret}"
    if secret == cell.secret:
        return
    with pytest.raises(BadSignature):
        verify_cell(content=forged, expected_serial=serial, expected_position=cell.position,
                    cell_digests=card.digests())


def test_the_asked_position_must_be_on_the_card() -> None:
    card = _card()
    with pytest.raises(InvalidField):
        verify_cell(content=card.cells[0].content, expected_serial=card.serial,
                    expected_position=Position(row=9, column=0), cell_digests=card.digests())


def test_digests_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Not a mock: the real compare_digest, wrapped to record that every check goes through it.
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    card = _card()
    digests = card.digests()
    with pytest.raises(BadSignature):
        verify_cell(content=f"QGA1:{card.serial}:A1:{'0' * 24}", expected_serial=card.serial,
                    expected_position=parse_position("A1"), cell_digests=digests)
    # The serial, then the digest at the asked and at the claimed position: all three.
    assert len(seen) == 3
    assert seen[1][1] == digests[parse_position("A1")]


@pytest.mark.parametrize("text", [
    "", "QGA1", "QGA1:", "QGB1:0000000000:A1:" + "0" * 24, "qga1:x", "QGA1:::",
    "QGA1:{serial}:A1:" + "0" * 23, "QGA1:{serial}:A1:" + "0" * 25,
    "QGA1:{serial}:A0:" + "0" * 24, "QGA1:{serial}:a1:" + "0" * 24,
    "QGA1:{serial}:AA1:" + "0" * 24, "QGA1:{serial}:A1:" + "U" * 24,
    "QGA1:{serial}:A1:" + "0" * 24 + ":", "QGA1:{bad_serial}:A1:" + "0" * 24,
    " QGA1:{serial}:A1:" + "0" * 24, "QGA1:{serial}:A1:" + "0" * 23 + "\u0660",
    "QGA1:" + "x" * 100,
])
def test_malformed_cells_are_refused(text: str) -> None:
    serial = serial_from_random(bytes(6))
    bad_serial = serial[:-1] + ("0" if serial[-1] != "0" else "1")
    with pytest.raises(MalformedCode) as caught:
        parse_cell(text.format(serial=serial, bad_serial=bad_serial))
    assert caught.value.code == "malformed_code"


def test_a_later_version_is_unsupported_not_malformed() -> None:
    serial = serial_from_random(bytes(6))
    with pytest.raises(UnsupportedVersion) as caught:
        parse_cell(f"QGA2:{serial}:A1:" + "0" * 24)
    assert caught.value.code == "unsupported_version"


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80) | st.from_regex(r"QGA[0-9]:[0-9A-Z]{0,12}:[A-Z0-9]{0,3}:"
                                                  r"[0-9A-Z]{20,26}", fullmatch=True))
def test_the_parser_raises_nothing_but_malformed_code(text: str) -> None:
    try:
        cell = parse_cell(text)
    except MalformedCode:
        return
    assert cell.text() == text  # whatever it accepts is canonical


@given(value=st.none() | st.integers() | st.binary())
def test_the_parser_refuses_non_text(value: object) -> None:
    with pytest.raises(MalformedCode):
        parse_cell(value)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_verify_raises_only_qrgate_errors(text: str) -> None:
    card = issue_card(card_key=bytes(32), serial=serial_from_random(bytes(6)), layout=Layout())
    with pytest.raises(QrgateError):
        verify_cell(content=text, expected_serial=card.serial,
                    expected_position=parse_position("A1"), cell_digests=card.digests())


# --- serials ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(serial=serials)
def test_the_check_symbol_catches_every_single_wrong_symbol(serial: str) -> None:
    assert is_valid_serial(serial)
    for index in range(len(serial)):
        for symbol in ALPHABET:
            typo = serial[:index] + symbol + serial[index + 1:]
            assert is_valid_serial(typo) == (typo == serial)


@settings(max_examples=50, deadline=None)
@given(serial=serials)
def test_the_check_symbol_catches_swapped_neighbours_but_0_and_z(serial: str) -> None:
    for index in range(len(serial) - 1):
        a, b = serial[index], serial[index + 1]
        if a == b or {a, b} == {"0", "Z"}:
            continue
        swapped = serial[:index] + b + a + serial[index + 2:]
        assert not is_valid_serial(swapped)


def test_serials_as_people_type_them() -> None:
    serial = serial_from_random(b"\xff\x10\x20\x30\x40\x50")
    printed = format_serial(serial)
    assert printed[5] == "-" and printed.replace("-", "") == serial
    typed = printed.lower().replace("0", "o").replace("1", "l")
    assert normalize_serial(typed) == serial
    with pytest.raises(InvalidField):
        normalize_serial(serial[:-1])
    with pytest.raises(InvalidField):
        serial_from_random(b"\x00" * 5)


def test_keys_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(InvalidField) as caught:
        cell_content(card_key=b"\x00" * 16, serial=serial_from_random(bytes(6)),
                     position=parse_position("A1"))
    assert caught.value.code == "bad_key_material"


def test_the_stored_digest_names_its_cell() -> None:
    card = _card()
    assert cell_digest(card.cells[0].content) == hashlib.sha256(
        b"qrgate gridcard stored cell v1\x00" + card.cells[0].content.encode()).digest()


def test_cells_check_under_the_servers_own_digest() -> None:
    """A server may keep cells under a keyed digest; they check only under that digest."""
    card = _card()
    server_key = os.urandom(32)

    def keyed(content: str) -> bytes:
        return hmac.digest(server_key, content.encode(), "sha256")

    digests = card.digests(keyed)
    assert digests != card.digests()
    assert all(digests[c.position] == keyed(c.content) for c in card.cells)
    cell = card.cells[4]
    assert verify_cell(content=cell.content, expected_serial=card.serial,
                       expected_position=cell.position, cell_digests=digests,
                       digest=keyed).position == cell.position
    with pytest.raises(BadCredentials):
        verify_cell(content=cell.content, expected_serial=card.serial,
                    expected_position=card.cells[5].position, cell_digests=digests,
                    digest=keyed)
    with pytest.raises(BadSignature):  # checked with the wrong digest: nothing matches
        verify_cell(content=cell.content, expected_serial=card.serial,
                    expected_position=cell.position, cell_digests=digests)


# --- known answers: each written out from the rule, not from the module --------------------


def test_the_check_symbol_is_luhn_mod_32_over_crockford_values() -> None:
    # "…1": its 1 is doubled (rightmost of the body), so the sum is 2 and the check is
    # the symbol of -2 mod 32 = 30, "Y". A "G" (16) doubled is 32: digits 1 + 0, so "Z" (31).
    assert serial_from_random(bytes(5) + b"\x08") == "000000001Y"
    assert is_valid_serial("00000000GZ") and not is_valid_serial("00000000GY")
    assert is_valid_serial("0000000100") is False  # 1 not doubled: sum 1, check "Z"
    assert is_valid_serial("000000010Z")


def test_a_serial_takes_the_top_45_bits_of_its_random_bytes() -> None:
    assert serial_from_random(bytes(6))[:9] == "000000000"
    assert serial_from_random(b"\xff" * 6)[:9] == "ZZZZZZZZZ"
    # The lowest 3 bits are dropped; bit 3 is the body's last bit.
    assert serial_from_random(bytes(5) + b"\x07")[:9] == "000000000"
    assert serial_from_random(bytes(5) + b"\x08")[:9] == "000000001"
    assert serial_from_random(b"\x80" + bytes(5))[:9] == "G00000000"


def test_a_typed_serial_may_hold_spaces_and_dashes_up_to_three_times_its_length() -> None:
    serial = serial_from_random(b"\x12\x34\x56\x78\x9a\xbc")
    spaced = " ".join(serial)  # 19 characters
    assert normalize_serial(spaced) == serial
    padded = serial + " " * 20  # 30: still a typed serial
    assert normalize_serial(padded) == serial
    with pytest.raises(InvalidField):
        normalize_serial(padded + " ")
    with pytest.raises(InvalidField):
        normalize_serial(123)  # type: ignore[arg-type]


def test_positions_and_layouts_are_bounded_on_each_axis() -> None:
    for row, column in ((0, 9), (26, 0), (-1, 0), (0, -1)):
        with pytest.raises(InvalidField):
            Position(row=row, column=column)
    with pytest.raises(InvalidField):
        parse_position(5)  # type: ignore[arg-type]
    assert Layout(rows=26, columns=2).size == 52 and Layout(rows=4, columns=9).size == 36
    for rows, columns in ((27, 2), (4, 10), (0, 30), (30, 0)):
        with pytest.raises(InvalidField):
            Layout(rows=rows, columns=columns)


def test_a_layout_holds_exactly_its_own_positions() -> None:
    layout = Layout()
    assert Position(row=5, column=4) in layout
    assert Position(row=6, column=0) not in layout
    assert Position(row=0, column=5) not in layout
    assert "A1" not in layout
    assert set(layout.positions()) == {p for p in map(parse_position, (
        f"{r}{c}" for r in "ABCDEF" for c in "12345"))}


def test_an_issued_card_says_its_layout_and_a_verified_cell_its_serial() -> None:
    layout = Layout(rows=5, columns=6)
    card = _card(layout=layout)
    assert card.layout == layout
    a1 = parse_position("A1")
    verified = verify_cell(content=card.cells[0].content, expected_serial=card.serial,
                           expected_position=a1, cell_digests=card.digests())
    assert (verified.serial, verified.position) == (card.serial, a1)


def test_a_cell_claiming_a_position_off_the_card_is_a_forgery() -> None:
    card = _card()
    forged = f"QGA1:{card.serial}:Z9:{'0' * SECRET_LENGTH}"
    with pytest.raises(BadSignature):
        verify_cell(content=forged, expected_serial=card.serial,
                    expected_position=parse_position("A1"), cell_digests=card.digests())
