"""Device request signatures (``qrgate.core.device_auth``) without a server: what the
signature binds, the clock-skew window at its edges, and the low-S rule."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from qrgate.core.cose import P256_ORDER
from qrgate.core.device_auth import (
    load_public_key,
    public_key_bytes,
    request_target,
    sign_request,
    signing_input,
    verify_request,
)
from qrgate.errors import QrgateError

KEY = ec.derive_private_key(0x5EED, ec.SECP256R1())
OTHER = ec.derive_private_key(0xFEED, ec.SECP256R1())
NOW = 1_800_000_000
SKEW = 30
REQUEST = {"method": "POST", "path": "/v1/confirm/scan", "timestamp": NOW,
           "device_id": "d" * 32, "body": b'{"code": "QG1:X"}'}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(**changes: object) -> str:
    values = {**REQUEST, **changes}
    return sign_request(private_key=KEY, **values)  # type: ignore[arg-type]


def verify(signature: str, *, key: ec.EllipticCurvePrivateKey = KEY, now: float = NOW,
           **changes: object) -> None:
    values = {**REQUEST, **changes}
    verify_request(public_key=key.public_key(), signature=signature, now=now,
                   max_skew=SKEW, **values)  # type: ignore[arg-type]


def refusal(signature: str, **kwargs: object) -> str:
    with pytest.raises(QrgateError) as error:
        verify(signature, **kwargs)  # type: ignore[arg-type]
    return error.value.code


def test_the_target_is_the_path_plus_the_raw_query() -> None:
    assert request_target("/v1/devices", "") == "/v1/devices"
    assert request_target("/v1/devices", "a=1&b=2") == "/v1/devices?a=1&b=2"


def test_the_signing_input_is_the_documented_text() -> None:
    body = b'{"x": 1}'
    assert signing_input(method="post", path="/p?q=1", timestamp=NOW, device_id="dev",
                         body=body) == (
        b"QGDEV1\nPOST\n/p?q=1\n" + str(NOW).encode() + b"\ndev\n"
        + hashlib.sha256(body).hexdigest().encode())


def test_a_signature_is_unpadded_base64url_of_r_and_s() -> None:
    signature = signed()
    assert len(signature) == 86 and "=" not in signature
    assert set(signature) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_")


def test_a_signature_verifies_with_the_device_key() -> None:
    verify(signed())
    verify(signed(method="post"), method="POST")


@pytest.mark.parametrize("changes", [
    {"method": "PUT"},
    {"path": "/v1/confirm/decision"},
    {"path": "/v1/confirm/scan?x=1"},
    {"timestamp": NOW + 1},
    {"device_id": "e" * 32},
    {"body": b'{"code": "QG1:Y"}'},
    {"body": b""},
])
def test_a_signature_does_not_move_to_another_request(changes: dict[str, object]) -> None:
    assert refusal(signed(), **changes) == "bad_signature"


def test_another_key_does_not_verify() -> None:
    assert refusal(signed(), key=OTHER) == "bad_signature"


@pytest.mark.parametrize("offset", [-SKEW, -1, 0, 1, SKEW])
def test_requests_inside_the_skew_window_pass(offset: int) -> None:
    verify(signed(timestamp=NOW + offset), timestamp=NOW + offset)
    verify(signed(), now=NOW + offset)


@pytest.mark.parametrize("offset", [-SKEW - 1, SKEW + 1, 10 * SKEW])
def test_requests_outside_the_skew_window_are_stale(offset: int) -> None:
    assert refusal(signed(), now=NOW + offset) == "stale_request"
    assert refusal(signed(timestamp=NOW + offset), timestamp=NOW + offset) == "stale_request"


def test_a_fractional_clock_counts_at_the_edge() -> None:
    assert refusal(signed(), now=NOW + SKEW + 0.5) == "stale_request"
    verify(signed(), now=NOW + SKEW - 0.5)


def test_signatures_are_written_low_s() -> None:
    for n in range(40):
        raw = base64.urlsafe_b64decode(signed(timestamp=NOW + n) + "==")
        assert int.from_bytes(raw[32:], "big") <= P256_ORDER // 2


def high_s_twin(signature: str) -> str:
    raw = base64.urlsafe_b64decode(signature + "==")
    s = int.from_bytes(raw[32:], "big")
    return b64url(raw[:32] + (P256_ORDER - s).to_bytes(32, "big"))


def test_the_high_s_twin_is_refused() -> None:
    assert refusal(high_s_twin(signed())) == "bad_signature"


def low_s_signature_with_s_above(fraction: int) -> str:
    """A valid low-S signature whose s lies above n // fraction (found by signing)."""
    message = signing_input(**REQUEST)  # type: ignore[arg-type]
    for _ in range(500):
        r, s = decode_dss_signature(KEY.sign(message, ec.ECDSA(hashes.SHA256())))
        s = min(s, P256_ORDER - s)
        if s > P256_ORDER // fraction:
            return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    raise AssertionError("no such signature in 500 tries")


def test_every_low_s_signature_passes() -> None:
    # s up to n/2 is accepted, not a smaller bound: about a third of signatures have s > n/3.
    verify(low_s_signature_with_s_above(3))


@pytest.mark.parametrize("signature", [
    "",
    "!!!!",
    b64url(bytes(63)),
    b64url(bytes(65)),
    b64url(bytes(64)),
])
def test_malformed_signatures_are_refused(signature: str) -> None:
    assert refusal(signature) == "bad_signature"


def test_a_signature_with_padding_still_verifies() -> None:
    good = signed()
    verify(good + "=" * (-len(good) % 4))


def test_device_keys_load_from_their_uncompressed_point() -> None:
    point = public_key_bytes(KEY.public_key())
    assert len(point) == 65 and point[0] == 4
    assert load_public_key(point).public_numbers() == KEY.public_key().public_numbers()
    for bad in (b"", point[:-1], b"\x04" + bytes(64)):
        with pytest.raises(QrgateError) as error:
            load_public_key(bad)
        assert error.value.code == "bad_public_key"
