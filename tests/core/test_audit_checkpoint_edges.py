"""Edges of signed audit checkpoints (``qrgate.core.audit_checkpoint``): the bounds of every
field, texts at exactly the length limit, and what a failed report says. Found by mutation
testing (scripts/mutation.sh)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.audit_checkpoint import (
    GENESIS,
    MAX_INT,
    MAX_TEXT_CHARS,
    Checkpoint,
    StoredCheckpoint,
    next_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
    verify_checkpoints,
)
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import QrgateError

# A fixed key: RFC 6979 signatures make every text below the same on every run.
RING = KeyRing(active=SigningKey.from_private_key(
    ec.derive_private_key(0xC0FFEE, ec.SECP256R1()), created_at=0))
KEYS = RING.public_keys()
HASH = hashlib.sha256(b"entry").digest()


def checkpoint(**changes: object) -> Checkpoint:
    values: dict[str, object] = {"number": 1, "seq": 1, "entry_hash": HASH, "at": 0,
                                 "prev": GENESIS, "issuer": "qrgate", **changes}
    return Checkpoint(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {"number": MAX_INT}, {"seq": MAX_INT}, {"at": 0}, {"at": MAX_INT},
])
def test_fields_up_to_their_column_limits(changes: dict[str, object]) -> None:
    signed = sign_checkpoint(checkpoint(**changes), signer=RING)
    assert verify_checkpoint(signed.text, keys=KEYS).checkpoint == signed.checkpoint


@pytest.mark.parametrize("changes", [
    {"number": 0}, {"number": MAX_INT + 1}, {"number": True}, {"number": "1"},
    {"seq": 0}, {"seq": MAX_INT + 1}, {"seq": True}, {"seq": 1.0},
    {"at": -1}, {"at": MAX_INT + 1}, {"at": True}, {"at": "0"},
    {"entry_hash": HASH[:31]}, {"prev": b""}, {"issuer": ""}, {"issuer": 1},
])
def test_fields_outside_their_limits_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(QrgateError) as error:
        checkpoint(**changes)
    assert error.value.code == "invalid_field"


def test_a_signed_statement_out_of_bounds_is_malformed_and_says_why() -> None:
    # A statement that Checkpoint itself would refuse to build, signed by the real key.
    statement = checkpoint().statement.replace(b"\x01", b"\x00", 1)  # number 1 -> 0
    text = "QGA1:" + base64.urlsafe_b64encode(RING.sign(statement)).rstrip(b"=").decode()
    with pytest.raises(QrgateError) as error:
        verify_checkpoint(text, keys=KEYS)
    assert error.value.code == "malformed"
    assert error.value.detail == "checkpoint number must be 1..2**63-1"


def text_of_length(length: int) -> str:
    for size in range(1200, 1400):
        text = sign_checkpoint(checkpoint(issuer="i" * size), signer=RING).text
        if len(text) == length:
            return text
    raise AssertionError(f"no checkpoint text of {length} characters")


def test_a_text_of_exactly_the_limit_is_written_and_read() -> None:
    text = text_of_length(MAX_TEXT_CHARS)
    assert verify_checkpoint(text, keys=KEYS).text == text


def test_texts_ending_in_any_character_verify() -> None:
    # base64url's alphabet includes "X": nothing but padding may be stripped from the end.
    endings: set[str] = set()
    # Three issuer lengths, so that one of them makes a COSE message of 3k bytes, whose
    # last base64 character is any of the 64.
    for issuer in (f"{'q' * width}{n:04d}" for width in (1, 2, 3) for n in range(1000)):
        text = sign_checkpoint(checkpoint(issuer=issuer), signer=RING).text
        if text[-1] in endings:
            continue
        endings.add(text[-1])
        verify_checkpoint(text, keys=KEYS)
    assert "X" in endings


def rows(*checkpoints: Checkpoint) -> list[StoredCheckpoint]:
    return [StoredCheckpoint(number=c.number, seq=c.seq, log_hash=c.entry_hash,
                             text=sign_checkpoint(c, signer=RING).text) for c in checkpoints]


def test_a_failed_report_says_so_and_why() -> None:
    first = next_checkpoint(previous=None, seq=3, entry_hash=HASH, now=10, issuer="q")
    broken = [StoredCheckpoint(number=1, seq=3, text="QGA1:AAAA", log_hash=HASH)]
    report = verify_checkpoints(broken, keys=KEYS)
    assert (report.ok, report.checked, report.covered_seq) == (False, 0, 0)
    assert report.first_bad_number == 1 and report.problem == "malformed_code"
    assert report.detail
    second = next_checkpoint(previous=first, seq=5, entry_hash=HASH, now=11, issuer="q")
    report = verify_checkpoints(rows(first, second), keys=KEYS,
                                exported={1: first.digest, 2: b"\x00" * 32})
    assert (report.ok, report.problem, report.covered_seq) == (False, "export_mismatch", 3)
    assert "2" in report.detail
    report = verify_checkpoints(rows(first), keys=KEYS, exported={1: first.digest, 2: HASH})
    assert (report.ok, report.problem, report.first_bad_number) == (False, "missing_exported",
                                                                   2)
    assert "1 exported" in report.detail


def test_a_checkpoint_at_the_same_seq_does_not_move_forward() -> None:
    first = checkpoint(seq=4)
    same = checkpoint(number=2, seq=4, prev=first.digest)
    report = verify_checkpoints(rows(first, same), keys=KEYS)
    assert (report.ok, report.problem, report.first_bad_number) == (False, "order", 2)
    assert verify_checkpoints(rows(first, checkpoint(number=2, seq=5, prev=first.digest)),
                              keys=KEYS).ok
