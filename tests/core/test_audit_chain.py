"""The pure hash chain: digests are canonical, and any single tampering is detected."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from qrgate.core.audit_chain import (
    GENESIS,
    AuditRecord,
    canonical_at,
    canonical_detail,
    entry_digest,
    verify_chain,
)

BASE: dict[str, Any] = {
    "prev_hash": GENESIS,
    "seq": 1,
    "at": 1_700_000_000.25,
    "event": "challenge.approved",
    "reason": "ok",
    "scheme": "C",
    "org_id": 1,
    "app_id": 2,
    "user_id": 3,
    "device_id": "d" * 32,
    "challenge_id": "c" * 32,
    "detail": {"ip": "192.0.2.1"},
}


def build_chain(fields: list[dict[str, Any]]) -> list[AuditRecord]:
    chain: list[AuditRecord] = []
    prev = GENESIS
    for seq, item in enumerate(fields, start=1):
        digest = entry_digest(prev_hash=prev, seq=seq, **item)
        chain.append(AuditRecord(seq=seq, prev_hash=prev, hash=digest, **item))
        prev = digest
    return chain


def head_of(chain: list[AuditRecord]) -> tuple[int, bytes]:
    return (chain[-1].seq, chain[-1].hash) if chain else (0, GENESIS)


def test_digest_is_stable_and_field_sensitive() -> None:
    digest = entry_digest(**BASE)
    assert len(digest) == 32
    assert entry_digest(**BASE) == digest
    # Key order of detail must not matter; the int/float of `at` must not either.
    assert entry_digest(**{**BASE, "detail": {"ip": "192.0.2.1"}}) == digest
    assert entry_digest(**{**BASE, "at": 1_700_000_000}) == entry_digest(
        **{**BASE, "at": 1_700_000_000.0}
    )
    for name, other in [
        ("prev_hash", b"\x01" * 32),
        ("seq", 2),
        ("at", 1_700_000_000.250001),
        ("event", "challenge.denied"),
        ("reason", ""),
        ("scheme", ""),
        ("org_id", None),
        ("app_id", 3),
        ("user_id", None),
        ("device_id", None),
        ("challenge_id", ""),
        ("detail", {}),
    ]:
        assert entry_digest(**{**BASE, name: other}) != digest, name


def test_field_boundaries_cannot_shift() -> None:
    one = entry_digest(**{**BASE, "event": "ab", "reason": "c"})
    other = entry_digest(**{**BASE, "event": "a", "reason": "bc"})
    assert one != other


def test_prev_hash_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        entry_digest(**{**BASE, "prev_hash": b"short"})


def test_canonical_at_rounds_to_microseconds_and_refuses_non_finite() -> None:
    assert canonical_at(1.23456789) == 1.234568
    assert canonical_at(5) == 5.0
    assert canonical_at(canonical_at(1_700_000_000.1234567)) == canonical_at(1_700_000_000.1234567)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            canonical_at(bad)


def test_canonical_detail_is_what_json_reads_back() -> None:
    assert canonical_detail(None) == {}
    assert canonical_detail({"b": (1, 2), "a": {"x": 1.5}}) == {"a": {"x": 1.5}, "b": [1, 2]}
    with pytest.raises(ValueError):
        canonical_detail({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical_detail({"x": b"raw bytes"})
    with pytest.raises(ValueError, match="secret"):
        canonical_detail({"outer": [{"new_password": "x"}]})
    with pytest.raises(ValueError, match="larger"):
        canonical_detail({"x": "y" * 10_000})


def test_empty_chain() -> None:
    assert verify_chain([]).ok
    assert verify_chain([], head=(0, GENESIS)).ok
    report = verify_chain([], head=(3, b"\x01" * 32))
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "head_mismatch", 1)


def _plain(n: int) -> list[dict[str, Any]]:
    # Everything but prev_hash and seq, which build_chain assigns.
    fields = {k: v for k, v in BASE.items() if k not in ("prev_hash", "seq")}
    return [{**fields, "event": f"e{i}", "detail": {"i": i}} for i in range(n)]


def test_specific_problem_codes() -> None:
    chain = build_chain(_plain(6))
    head = head_of(chain)
    report = verify_chain(chain, head=head)
    assert report.ok and report.checked == 6

    edited = [*chain]
    edited[2] = dataclasses.replace(chain[2], reason="edited")
    assert _outcome(edited, head) == ("hash_mismatch", 3)

    assert _outcome(chain[:3] + chain[4:], head) == ("gap", 4)
    assert _outcome([*chain[:2], chain[3], chain[2], *chain[4:]], head) == ("order", 3)
    assert _outcome([*chain[:3], chain[2], *chain[3:]], head) == ("order", 4)
    assert _outcome(chain[:-1], head) == ("head_mismatch", 6)
    assert _outcome(chain, (6, b"\x02" * 32)) == ("head_mismatch", 6)
    # Re-chaining a forged entry all the way down still cannot match the recorded head.
    forged = build_chain([*_plain(5), {**_plain(6)[5], "reason": "forged"}])
    assert _outcome(forged, head) == ("head_mismatch", 6)


def _outcome(chain: list[AuditRecord], head: tuple[int, bytes]) -> tuple[str | None, int | None]:
    report = verify_chain(chain, head=head)
    assert not report.ok
    return report.problem, report.first_bad_seq


# --- property: every single tampering is detected ---------------------------------------

ids = st.none() | st.integers(min_value=0, max_value=2**31 - 1)
short_text = st.text(max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | short_text
details = st.dictionaries(st.text(alphabet="abcxyz", max_size=6), json_scalars, max_size=3)
entry_fields = st.fixed_dictionaries(
    {
        "at": st.floats(min_value=0, max_value=4e9, allow_nan=False).map(canonical_at),
        "event": st.text(min_size=1, max_size=12),
        "reason": short_text,
        "scheme": st.sampled_from(["", "A", "B", "C"]),
        "org_id": ids,
        "app_id": ids,
        "user_id": ids,
        "device_id": st.none() | st.text(max_size=8),
        "challenge_id": st.none() | st.text(max_size=8),
        "detail": details,
    }
)
chains = st.lists(entry_fields, min_size=1, max_size=12).map(build_chain)
EDITABLE = [
    "at",
    "event",
    "reason",
    "scheme",
    "org_id",
    "app_id",
    "user_id",
    "device_id",
    "challenge_id",
    "detail",
    "prev_hash",
    "hash",
]


@given(chain=chains)
def test_untouched_chains_verify(chain: list[AuditRecord]) -> None:
    report = verify_chain(chain, head=head_of(chain))
    assert report.ok and report.checked == len(chain)


@given(chain=chains, data=st.data())
def test_any_single_edit_is_detected(chain: list[AuditRecord], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    name = data.draw(st.sampled_from(EDITABLE))
    special: dict[str, st.SearchStrategy[Any]] = {
        "at": st.floats(min_value=0, max_value=4e9, allow_nan=False),
        "prev_hash": st.binary(min_size=32, max_size=32),
        "hash": st.binary(min_size=32, max_size=32),
        "scheme": st.text(max_size=3),
    }
    strategy = special[name] if name in special else entry_fields.map(lambda f: f[name])
    value: Any = data.draw(strategy)
    tampered = [*chain]
    tampered[index] = dataclasses.replace(chain[index], **{name: value})
    assume(entry_fields_differ(chain[index], tampered[index]))
    report = verify_chain(tampered, head=head_of(chain))
    assert not report.ok
    assert report.problem == "hash_mismatch"
    assert report.first_bad_seq == index + 1


def entry_fields_differ(one: AuditRecord, other: AuditRecord) -> bool:
    # False == 0 compares equal but encodes differently, so a type change is an edit too.
    return dataclasses.astuple(one) != dataclasses.astuple(other) or any(
        type(a) is not type(b)
        for a, b in zip(dataclasses.astuple(one), dataclasses.astuple(other), strict=True)
    )


@given(chain=chains, data=st.data())
def test_any_single_removal_is_detected(chain: list[AuditRecord], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    report = verify_chain(chain[:index] + chain[index + 1 :], head=head_of(chain))
    assert not report.ok
    last = index == len(chain) - 1
    assert report.problem == ("head_mismatch" if last else "gap")
    assert report.first_bad_seq == index + 1


@given(chain=chains.filter(lambda c: len(c) >= 2), data=st.data())
def test_any_single_swap_is_detected(chain: list[AuditRecord], data: st.DataObject) -> None:
    first = data.draw(st.integers(0, len(chain) - 2))
    second = data.draw(st.integers(first + 1, len(chain) - 1))
    swapped = [*chain]
    swapped[first], swapped[second] = chain[second], chain[first]
    report = verify_chain(swapped, head=head_of(chain))
    assert not report.ok
    assert report.problem == "order"
    assert report.first_bad_seq == first + 1


@given(chain=chains.filter(lambda c: len(c) >= 2), data=st.data())
def test_any_content_swap_in_place_is_detected(
    chain: list[AuditRecord], data: st.DataObject
) -> None:
    """Swapping two rows' contents but not their seq (what UPDATE can do) is a mismatch."""
    first = data.draw(st.integers(0, len(chain) - 2))
    second = data.draw(st.integers(first + 1, len(chain) - 1))
    swapped = [*chain]
    swapped[first] = dataclasses.replace(chain[second], seq=chain[first].seq)
    swapped[second] = dataclasses.replace(chain[first], seq=chain[second].seq)
    report = verify_chain(swapped, head=head_of(chain))
    assert not report.ok
    assert report.problem == "hash_mismatch"
    assert report.first_bad_seq == first + 1
