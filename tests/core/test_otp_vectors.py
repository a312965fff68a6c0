"""RFC 4226 (HOTP) and RFC 6238 (TOTP) published vectors through pyotp, which qrgate's TOTP
verifier uses: a pyotp upgrade that changed truncation, digest or time stepping fails here."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
HOTP_DOC = json.loads((VECTORS / "rfc4226_hotp.json").read_text())
TOTP_DOC = json.loads((VECTORS / "rfc6238_totp.json").read_text())

DIGESTS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


def b32(secret_hex: str) -> str:
    # pyotp takes the secret as Base32, the form otpauth:// URIs carry.
    return base64.b32encode(bytes.fromhex(secret_hex)).decode("ascii")


def test_vector_files() -> None:
    assert "RFC 4226" in HOTP_DOC["source"] and "Appendix D" in HOTP_DOC["source"]
    assert "RFC 6238" in TOTP_DOC["source"] and "Appendix B" in TOTP_DOC["source"]
    assert bytes.fromhex(HOTP_DOC["secret_hex"]).decode() == HOTP_DOC["secret_ascii"]
    assert [v["count"] for v in HOTP_DOC["vectors"]] == list(range(10))
    assert len(TOTP_DOC["vectors"]) == 18
    assert {m: len(bytes.fromhex(s)) for m, s in TOTP_DOC["seeds"].items()} == {
        "SHA1": 20, "SHA256": 32, "SHA512": 64}


@pytest.mark.parametrize("v", HOTP_DOC["vectors"], ids=lambda v: f"count={v['count']}")
def test_rfc4226_hotp(v: dict[str, Any]) -> None:
    hotp = pyotp.HOTP(b32(HOTP_DOC["secret_hex"]), digits=6, digest=hashlib.sha1)
    assert hotp.at(v["count"]) == v["hotp"]
    assert hotp.verify(v["hotp"], v["count"])
    # The table's own columns agree with each other: HOTP = truncated value mod 10^6.
    assert int(v["truncated_hex"], 16) == v["truncated_decimal"]
    assert f"{v['truncated_decimal'] % 10**6:06d}" == v["hotp"]


@pytest.mark.parametrize("v", TOTP_DOC["vectors"], ids=lambda v: f"{v['mode']}-t={v['time']}")
def test_rfc6238_totp(v: dict[str, Any]) -> None:
    totp = pyotp.TOTP(b32(v["seed"]), digits=TOTP_DOC["digits"], digest=DIGESTS[v["mode"]],
                      interval=TOTP_DOC["time_step"])
    assert totp.at(v["time"]) == v["totp"]
    assert totp.verify(v["totp"], for_time=v["time"])
    assert v["time"] // TOTP_DOC["time_step"] == int(v["T_hex"], 16)
