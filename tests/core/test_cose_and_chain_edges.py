"""Edges of COSE_Sign1 (``qrgate.core.cose``) and of the audit chain's canonical detail
(``qrgate.core.audit_chain``) that mutation testing (scripts/mutation.sh) found unpinned:
the exact header qrgate's own messages may carry, the low-S boundary, the Sig_structure
bytes, and the detail size limit."""

from __future__ import annotations

import json
from dataclasses import replace

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from qrgate.core.audit_chain import (
    GENESIS,
    MAX_DETAIL_BYTES,
    AuditRecord,
    canonical_detail,
    entry_digest,
    verify_chain,
)
from qrgate.core.cose import (
    P256_ORDER,
    parse_own_sign1,
    parse_sign1,
    sign1,
    to_be_signed,
    verify_sign1,
)
from qrgate.errors import QrgateError

KEY = ec.derive_private_key(11, ec.SECP256R1())
KID = b"kid-0001"


def envelope(protected_raw: bytes, *, unprotected: dict[int, object] | None = None,
             payload: bytes = b"payload", s: int | None = None, tagged: bool = True) -> bytes:
    """A COSE_Sign1 signed by KEY over whatever protected bytes it is given."""
    tbs = to_be_signed(protected_raw=protected_raw, payload=payload)
    r, signed_s = decode_dss_signature(KEY.sign(tbs, ec.ECDSA(hashes.SHA256())))
    signed_s = min(signed_s, P256_ORDER - signed_s) if s is None else s
    body = [protected_raw, unprotected or {}, payload,
            r.to_bytes(32, "big") + signed_s.to_bytes(32, "big")]
    return cbor2.dumps(cbor2.CBORTag(18, body) if tagged else body)


def refusal(raw: bytes) -> str:
    with pytest.raises(QrgateError) as error:
        parse_own_sign1(raw)
    return error.value.code


def test_the_sig_structure_is_rfc_9052s() -> None:
    assert to_be_signed(protected_raw=b"\xa1\x01\x26", payload=b"x") == cbor2.dumps(
        ["Signature1", b"\xa1\x01\x26", b"", b"x"])
    assert to_be_signed(protected_raw=b"\xa0", payload=b"x") == cbor2.dumps(
        ["Signature1", b"", b"", b"x"])


def test_an_empty_protected_header_with_alg_unprotected_parses_and_verifies() -> None:
    raw = envelope(b"", unprotected={1: -7, 4: KID}, tagged=False)
    message = parse_sign1(raw)
    assert message.protected == {} and message.kid == KID and not message.kid_is_protected
    verify_sign1(message, public_key=KEY.public_key())


def test_our_own_format_takes_exactly_alg_and_kid_protected() -> None:
    good = sign1(payload=b"payload", private_key=KEY, kid=KID)
    assert parse_own_sign1(good)[1] == KID
    extra = cbor2.dumps({1: -7, 4: KID, 16: 1}, canonical=True)
    assert refusal(envelope(extra)) == "malformed_code"
    kid_unprotected = cbor2.dumps({1: -7}, canonical=True)
    assert refusal(envelope(kid_unprotected, unprotected={4: KID})) == "malformed_code"


def test_a_kid_must_be_a_byte_string_wherever_it_is() -> None:
    with pytest.raises(QrgateError) as error:
        parse_sign1(envelope(cbor2.dumps({1: -7, 4: 5})))
    assert (error.value.code, error.value.detail) == ("malformed_code",
                                                      "kid must be a byte string")
    with pytest.raises(QrgateError) as error:
        parse_sign1(envelope(cbor2.dumps({1: -7}), unprotected={4: "kid"}))
    assert error.value.detail == "kid must be a byte string"


def test_a_header_that_is_not_a_map_is_named() -> None:
    with pytest.raises(QrgateError, match=r"^protected header is not a map$"):
        parse_sign1(envelope(cbor2.dumps([1, -7])))
    with pytest.raises(QrgateError, match=r"^unprotected header is not a map$"):
        parse_sign1(cbor2.dumps([cbor2.dumps({1: -7}), [], b"p", bytes(64)]))


def test_our_own_format_takes_only_the_canonical_protected_header() -> None:
    reordered = b"\xa2\x04" + cbor2.dumps(KID) + b"\x01\x26"
    assert cbor2.loads(reordered) == {1: -7, 4: KID}
    assert refusal(envelope(reordered)) == "malformed_code"


def test_the_low_s_boundary_is_half_the_order() -> None:
    protected = cbor2.dumps({1: -7, 4: KID}, canonical=True)
    # Parsing only: s = n // 2 is the largest low S; one more is high.
    parse_own_sign1(envelope(protected, s=P256_ORDER // 2))
    assert refusal(envelope(protected, s=P256_ORDER // 2 + 1)) == "malformed_code"


def test_a_detail_up_to_the_size_limit_is_kept() -> None:
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    at_limit = {"k": "v" * (MAX_DETAIL_BYTES - overhead)}
    assert canonical_detail(at_limit) == at_limit
    with pytest.raises(ValueError, match="larger"):
        canonical_detail({"k": "v" * (MAX_DETAIL_BYTES - overhead + 1)})
    # Measured compactly: 900 short keys fit although ", " and ": " would not.
    many = {f"{n:04d}": 1 for n in range(900)}
    assert len(json.dumps(many, separators=(",", ":"))) <= MAX_DETAIL_BYTES < len(
        json.dumps(many))
    assert canonical_detail(many) == many


# --- the audit chain's verification reports ----------------------------------------------------

ENTRY: dict[str, object] = {
    "at": 1_700_000_000.25, "event": "e", "reason": "ok", "scheme": "C", "org_id": 1,
    "app_id": 2, "user_id": 3, "device_id": None, "challenge_id": None, "detail": {},
}


def chain_of(count: int) -> list[AuditRecord]:
    chain: list[AuditRecord] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        fields = {**ENTRY, "event": f"e{seq}"}
        digest = entry_digest(prev_hash=prev, seq=seq, **fields)  # type: ignore[arg-type]
        chain.append(AuditRecord(seq=seq, prev_hash=prev, hash=digest, **fields))  # type: ignore[arg-type]
        prev = digest
    return chain


def test_the_entry_hash_does_not_depend_on_detail_key_order() -> None:
    # PostgreSQL's jsonb returns keys in its own order: the hash must survive that.
    one = entry_digest(prev_hash=GENESIS, seq=1, **{**ENTRY, "detail": {"b": 1, "a": 2}})  # type: ignore[arg-type]
    two = entry_digest(prev_hash=GENESIS, seq=1, **{**ENTRY, "detail": {"a": 2, "b": 1}})  # type: ignore[arg-type]
    assert one == two


def report_of(chain: list[AuditRecord], head: tuple[int, bytes] | None = None) -> tuple[
        bool, int, int | None, str | None]:
    report = verify_chain(chain, head=head)
    return report.ok, report.checked, report.first_bad_seq, report.problem


def test_failed_reports_count_what_verified_before_the_problem() -> None:
    chain = chain_of(5)
    assert report_of(chain[:2] + chain[3:]) == (False, 2, 3, "gap")
    assert report_of([*chain[:3], chain[2], *chain[3:]]) == (False, 3, 4, "order")
    assert report_of([*chain[:2], replace(chain[2], prev_hash=bytes(32))]) == (
        False, 2, 3, "hash_mismatch")
    assert report_of([*chain[:3], replace(chain[3], reason="edited")]) == (
        False, 3, 4, "hash_mismatch")
    assert report_of(chain[:4], head=(5, chain[4].hash)) == (False, 4, 5, "head_mismatch")
    assert report_of(chain, head=(5, bytes(32))) == (False, 5, 5, "head_mismatch")
    assert report_of([], head=(0, b"\x01" * 32)) == (False, 0, 1, "head_mismatch")


def test_a_duplicate_after_a_jump_is_a_gap() -> None:
    chain = chain_of(3)
    assert report_of([chain[0], chain[2], chain[2]]) == (False, 1, 2, "gap")
    assert report_of([chain[0], chain[2], chain[1]]) == (False, 1, 2, "order")


def test_stored_fields_that_cannot_be_encoded_are_a_hash_mismatch() -> None:
    chain = chain_of(2)
    assert report_of([chain[0], replace(chain[1], at="yesterday")]) == (
        False, 1, 2, "hash_mismatch")
