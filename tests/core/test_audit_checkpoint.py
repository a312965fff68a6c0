"""Signed audit checkpoints, pure: format, signatures, and the sequence checks."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrgate.core.audit_checkpoint import (
    GENESIS,
    MAX_TEXT_CHARS,
    PREFIX,
    Checkpoint,
    SignedCheckpoint,
    StoredCheckpoint,
    next_checkpoint,
    parse_checkpoint,
    read_export,
    sign_checkpoint,
    verify_checkpoint,
    verify_checkpoints,
)
from qrgate.core.cose import sign1
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import (
    BadSignature,
    InvalidField,
    Malformed,
    PayloadTooLarge,
    UnknownKey,
    UnsupportedVersion,
)

NOW = 1_700_000_000.75
RING = KeyRing(active=SigningKey.generate(now=NOW))
KEYS = RING.public_keys()
FOREIGN = KeyRing(active=SigningKey.generate(now=NOW))


def entry_hash(seq: int) -> bytes:
    return hashlib.sha256(f"entry {seq}".encode()).digest()


def chain_of(seqs: list[int], *, ring: KeyRing = RING) -> list[SignedCheckpoint]:
    signed: list[SignedCheckpoint] = []
    previous: Checkpoint | None = None
    for seq in seqs:
        previous = next_checkpoint(previous=previous, seq=seq, entry_hash=entry_hash(seq),
                                   now=NOW + seq, issuer="qrgate")
        signed.append(sign_checkpoint(previous, signer=ring))
    return signed


def stored(signed: list[SignedCheckpoint]) -> list[StoredCheckpoint]:
    return [
        StoredCheckpoint(number=s.checkpoint.number, seq=s.checkpoint.seq, text=s.text,
                         log_hash=entry_hash(s.checkpoint.seq))
        for s in signed
    ]


def problem(
    rows: list[StoredCheckpoint], *, exported: dict[int, bytes] | None = None
) -> tuple[str | None, int | None]:
    report = verify_checkpoints(rows, keys=KEYS, exported=exported)
    return report.problem, report.first_bad_number


# --- one checkpoint -----------------------------------------------------------------------


def test_round_trip_and_text_format() -> None:
    first, second = chain_of([5, 9])
    assert first.text.startswith("QGA1:")
    body = first.text[len(PREFIX):]
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(first.text) < 400
    verified = verify_checkpoint(second.text, keys=KEYS)
    assert verified == second
    assert verified.kid == RING.active_kid
    checkpoint = verified.checkpoint
    assert (checkpoint.number, checkpoint.seq, checkpoint.entry_hash) == (2, 9, entry_hash(9))
    assert checkpoint.at == 1_700_000_009  # whole seconds, rounded down
    assert checkpoint.issuer == "qrgate"
    assert first.checkpoint.prev == GENESIS
    assert checkpoint.prev == first.digest == hashlib.sha256(first.checkpoint.statement).digest()


def test_statement_is_the_documented_cbor_array() -> None:
    (signed,) = chain_of([3])
    statement = cbor2.loads(signed.checkpoint.statement)
    assert statement == ["qrgate.audit.checkpoint.v1", 1, 3, entry_hash(3), 1_700_000_003,
                         GENESIS, "qrgate"]


def test_signed_by_another_key_is_refused() -> None:
    (forged,) = chain_of([3], ring=FOREIGN)
    with pytest.raises(UnknownKey):
        verify_checkpoint(forged.text, keys=KEYS)
    # Even under our kid, another key's signature does not verify.
    with pytest.raises(BadSignature):
        verify_checkpoint(forged.text, keys={FOREIGN.active_kid: RING.active.public_key})


def test_edited_statement_is_a_bad_signature() -> None:
    (signed,) = chain_of([3])
    message = cbor2.loads(base64.urlsafe_b64decode(signed.text[5:] + "=="))
    protected, unprotected, statement, signature = message.value
    edited = statement.replace(entry_hash(3), entry_hash(4))
    forged = cbor2.CBORTag(18, [protected, dict(unprotected), edited, signature])
    text = PREFIX + base64.urlsafe_b64encode(cbor2.dumps(forged)).rstrip(b"=").decode()
    assert parse_checkpoint(text).checkpoint.entry_hash == entry_hash(4)
    with pytest.raises(BadSignature):
        verify_checkpoint(text, keys=KEYS)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", Malformed),
        ("QG1:ABC", Malformed),
        ("QGA2:AAAA", UnsupportedVersion),
        ("QGA1:", Malformed),
        ("QGA1:AAAA=", Malformed),  # padding is not written, so it is not read
        ("QGA1:AA+A", Malformed),  # base64, not base64url
        ("QGA1:AAB", Malformed),  # non-zero trailing bits: a second text for the same bytes
        ("QGA1:" + "A" * MAX_TEXT_CHARS, PayloadTooLarge),
    ],
    ids=["empty", "qr-code", "version-2", "no-body", "padding", "plus", "trailing-bits",
         "too-long"],
)
def test_malformed_texts(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_checkpoint(text)


def test_signed_payload_that_is_not_a_checkpoint_is_malformed() -> None:
    for payload in (cbor2.dumps(["qrgate.audit.checkpoint.v2", 1]), cbor2.dumps({1: 2}),
                    cbor2.dumps(["qrgate.audit.checkpoint.v1", 1, 1, b"x", 0, GENESIS, "q"])):
        text = PREFIX + base64.urlsafe_b64encode(RING.sign(payload)).rstrip(b"=").decode()
        with pytest.raises(Malformed):
            parse_checkpoint(text)


def test_non_canonical_statement_is_malformed() -> None:
    (signed,) = chain_of([3])
    fields = cbor2.loads(signed.checkpoint.statement)
    # 3 encoded in two bytes instead of one: same values, other bytes, so other digests.
    loose = signed.checkpoint.statement.replace(b"\x01\x03", b"\x01\x18\x03", 1)
    assert cbor2.loads(loose) == fields
    text = PREFIX + base64.urlsafe_b64encode(RING.sign(loose)).rstrip(b"=").decode()
    with pytest.raises(Malformed):
        parse_checkpoint(text)


def test_untagged_envelope_is_malformed() -> None:
    (signed,) = chain_of([3])
    untagged = sign1(payload=signed.checkpoint.statement, private_key=RING.active.private_key,
                     kid=RING.active_kid, tagged=False)
    text = PREFIX + base64.urlsafe_b64encode(untagged).rstrip(b"=").decode()
    with pytest.raises(Malformed):
        parse_checkpoint(text)


def test_invalid_checkpoints_are_not_built() -> None:
    first = chain_of([5])[0].checkpoint
    with pytest.raises(InvalidField):
        next_checkpoint(previous=first, seq=5, entry_hash=entry_hash(5), now=NOW, issuer="q")
    with pytest.raises(InvalidField):
        next_checkpoint(previous=None, seq=0, entry_hash=entry_hash(5), now=NOW, issuer="q")
    with pytest.raises(InvalidField):
        next_checkpoint(previous=None, seq=1, entry_hash=b"short", now=NOW, issuer="q")
    with pytest.raises(InvalidField):
        next_checkpoint(previous=None, seq=1, entry_hash=entry_hash(1), now=NOW, issuer="")
    with pytest.raises(InvalidField):
        next_checkpoint(previous=None, seq=1, entry_hash=entry_hash(1), now=float("nan"),
                        issuer="q")
    huge = next_checkpoint(previous=None, seq=1, entry_hash=entry_hash(1), now=NOW,
                           issuer="q" * MAX_TEXT_CHARS)
    with pytest.raises(PayloadTooLarge):
        sign_checkpoint(huge, signer=RING)


# --- the parser never fails in any other way ----------------------------------------------

PARSER_ERRORS = (Malformed, BadSignature)


@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_parse_errors(text: str) -> None:
    with pytest.raises(PARSER_ERRORS):
        verify_checkpoint(text, keys=KEYS)


@given(st.text(max_size=300))
def test_arbitrary_text_after_the_prefix_raises_only_parse_errors(body: str) -> None:
    with pytest.raises(PARSER_ERRORS):
        verify_checkpoint(PREFIX + body, keys=KEYS)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_in_base64url_raise_only_parse_errors(raw: bytes) -> None:
    text = PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(PARSER_ERRORS):
        verify_checkpoint(text, keys=KEYS)


VALID = chain_of([7])[0].text


@settings(max_examples=300)
@given(st.integers(0, len(VALID) - 1), st.sampled_from("AQgw_-9z=+/ é\n"))
def test_any_one_character_changed_is_refused(position: int, replacement: str) -> None:
    text = VALID[:position] + replacement + VALID[position + 1:]
    if text == VALID:
        return
    with pytest.raises(PARSER_ERRORS):
        verify_checkpoint(text, keys=KEYS)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.integers(), inner, max_size=4),
    max_leaves=20,
))
def test_arbitrary_signed_cbor_raises_only_parse_errors(value: object) -> None:
    text = PREFIX + base64.urlsafe_b64encode(RING.sign(cbor2.dumps(value))).rstrip(b"=").decode()
    with pytest.raises(Malformed):
        verify_checkpoint(text, keys=KEYS)


# --- the sequence ---------------------------------------------------------------------------


def test_an_intact_sequence_verifies() -> None:
    rows = stored(chain_of([3, 10, 11, 40]))
    report = verify_checkpoints(rows, keys=KEYS)
    assert (report.ok, report.checked, report.covered_seq) == (True, 4, 40)
    empty = verify_checkpoints([], keys=KEYS)
    assert (empty.ok, empty.checked, empty.covered_seq) == (True, 0, 0)


def test_a_changed_entry_under_a_checkpoint_is_found() -> None:
    rows = stored(chain_of([3, 10, 40]))
    rows[1] = dataclasses.replace(rows[1], log_hash=entry_hash(99))
    assert problem(rows) == ("entry_mismatch", 2)
    rows[1] = dataclasses.replace(rows[1], log_hash=None)
    assert problem(rows) == ("entry_missing", 2)
    report = verify_checkpoints(rows, keys=KEYS)
    assert (report.checked, report.covered_seq) == (1, 3)


def test_removed_reordered_or_relinked_checkpoints_are_found() -> None:
    rows = stored(chain_of([3, 10, 40]))
    assert problem([rows[0], rows[2]]) == ("gap", 2)
    assert problem([rows[1], rows[2]]) == ("gap", 1)
    assert problem([rows[0], rows[2], rows[1]]) == ("gap", 2)
    # A validly signed checkpoint from another history does not link.
    other = stored(chain_of([4, 12]))
    assert problem([rows[0], other[1]]) == ("link_mismatch", 2)


def test_a_checkpoint_that_does_not_move_forward_is_found() -> None:
    first = chain_of([10])[0]
    # Only someone with the key could make this; verification still refuses it.
    backwards = dataclasses.replace(first.checkpoint, number=2, seq=4, entry_hash=entry_hash(4),
                                    prev=first.digest)
    rows = stored([first, sign_checkpoint(backwards, signer=RING)])
    assert problem(rows) == ("order", 2)


def test_columns_that_disagree_with_the_signature_are_found() -> None:
    rows = stored(chain_of([3, 10]))
    rows[1] = dataclasses.replace(rows[1], seq=3, log_hash=entry_hash(3))
    assert problem(rows) == ("stored_mismatch", 2)


def test_forged_or_garbled_stored_checkpoints_are_found() -> None:
    rows = stored(chain_of([3, 10]))
    forged = stored(chain_of([3, 10], ring=FOREIGN))
    assert problem([rows[0], forged[1]]) == ("unknown_key", 2)
    assert problem([rows[0], dataclasses.replace(rows[1], text="QGA1:AA+A")]) == ("malformed", 2)


def test_checked_against_an_export() -> None:
    signed = chain_of([3, 10, 40])
    exported = read_export([s.text + "\n" for s in signed], keys=KEYS)
    assert exported == {s.checkpoint.number: s.digest for s in signed}
    rows = stored(signed)
    assert verify_checkpoints(rows, keys=KEYS, exported=exported).ok
    # The newest checkpoint deleted: the stored ones still verify on their own...
    assert verify_checkpoints(rows[:2], keys=KEYS).ok
    # ...but not against the export.
    assert problem(rows[:2], exported=exported) == ("missing_exported", 3)
    # A later export holds more than an earlier one: checkpoints newer than it are fine.
    assert verify_checkpoints(rows, keys=KEYS, exported={1: signed[0].digest}).ok
    # Checkpoints re-signed over a rewritten log differ from the exported ones.
    resigned = stored(chain_of([3, 10, 41]))
    assert problem(resigned, exported=exported) == ("export_mismatch", 3)


def test_read_export_refuses_bad_lines_and_forks() -> None:
    signed = chain_of([3, 10])
    text = [signed[0].text, "", signed[1].text, signed[1].text]
    assert len(read_export(text, keys=KEYS)) == 2
    with pytest.raises(Malformed, match="line 2"):
        read_export([signed[0].text, "QGA1:garbage"], keys=KEYS)
    with pytest.raises(UnknownKey, match="line 1"):
        read_export([chain_of([3], ring=FOREIGN)[0].text], keys=KEYS)
    fork = chain_of([4])[0]
    with pytest.raises(Malformed, match="two different checkpoints numbered 1"):
        read_export([signed[0].text, fork.text], keys=KEYS)
