"""RFC 4226 (HOTP) and RFC 6238 (TOTP) published vectors through qrgate's own TOTP verifier,
:func:`qrgate.confirm.verifiers.verify_totp`, on a real user row of a real database (the
secret sealed by ``set_totp_secret``, the used time step kept in the row).

The verifier takes 6-digit HMAC-SHA-1 codes with 30 s steps, one step either side of now,
each step at most once. The vectors map onto it exactly:

* RFC 6238's SHA-1 rows are 8 digits; truncation is ``value mod 10^digits``, so the 6-digit
  code is the row's last 6 digits, accepted at the row's time and nowhere else.
* RFC 4226's HOTP at counter ``c`` is TOTP at ``T = c``, i.e. at time ``c * 30``.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from qrgate.accounts import directory
from qrgate.confirm.verifiers import set_totp_secret, verify_totp
from qrgate.core.aead import SecretBox
from qrgate.errors import BadCredentials, Replayed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
HOTP_DOC = json.loads((VECTORS / "rfc4226_hotp.json").read_text())
TOTP_DOC = json.loads((VECTORS / "rfc6238_totp.json").read_text())
SHA1_ROWS = [v for v in TOTP_DOC["vectors"] if v["mode"] == "SHA1"]
OTHER_ROWS = [v for v in TOTP_DOC["vectors"] if v["mode"] != "SHA1"]
HOTP = {v["count"]: v["hotp"] for v in HOTP_DOC["vectors"]}
# What the verifier promises (README, qrgate.confirm.verifiers): RFC 6238's 30 s step, and
# one step either side of now. Stated here, not imported, so a change of either fails.
STEP = 30
WINDOW = 1


def b32(secret_hex: str) -> str:
    # Secrets are kept as Base32, the form otpauth:// URIs carry.
    return base64.b32encode(bytes.fromhex(secret_hex)).decode("ascii")


@dataclass(frozen=True)
class TotpUser:
    engine: Engine
    box: SecretBox
    user_id: int

    def set_secret(self, secret_hex: str) -> None:
        """A fresh setup: the secret sealed into the row, no time step used yet."""
        with self.engine.begin() as conn:
            set_totp_secret(conn, box=self.box, user_id=self.user_id, secret=b32(secret_hex))

    def verify(self, otp: str, *, now: float) -> int:
        with self.engine.begin() as conn:
            return verify_totp(conn, box=self.box, user_id=self.user_id, otp=otp, now=now)

    def refusal(self, otp: str, *, now: float) -> str:
        with pytest.raises((BadCredentials, Replayed)) as caught:
            self.verify(otp, now=now)
        return caught.value.code


@pytest.fixture
def user(engine: Engine) -> TotpUser:
    with engine.begin() as conn:
        org_id = directory.create_org(conn, slug="vectors", name="RFC vectors", now=0.0)
        user_id = directory.create_user(conn, org_id=org_id, login="rfc", now=0.0)
    return TotpUser(engine=engine, box=SecretBox(os.urandom(32)), user_id=user_id)


def test_vector_files() -> None:
    assert "RFC 4226" in HOTP_DOC["source"] and "Appendix D" in HOTP_DOC["source"]
    assert "RFC 6238" in TOTP_DOC["source"] and "Appendix B" in TOTP_DOC["source"]
    assert bytes.fromhex(HOTP_DOC["secret_hex"]).decode() == HOTP_DOC["secret_ascii"]
    assert [v["count"] for v in HOTP_DOC["vectors"]] == list(range(10))
    assert len(TOTP_DOC["vectors"]) == 18 and len(SHA1_ROWS) == 6
    assert {m: len(bytes.fromhex(s)) for m, s in TOTP_DOC["seeds"].items()} == {
        "SHA1": 20, "SHA256": 32, "SHA512": 64}
    assert TOTP_DOC["time_step"] == STEP and TOTP_DOC["t0"] == 0
    # The tables' own columns agree: HOTP = truncated value mod 10^6, T = time // 30.
    for v in HOTP_DOC["vectors"]:
        assert int(v["truncated_hex"], 16) == v["truncated_decimal"]
        assert f"{v['truncated_decimal'] % 10**6:06d}" == v["hotp"]
    for v in TOTP_DOC["vectors"]:
        assert v["time"] // STEP == int(v["T_hex"], 16)
    # Both RFCs use the same SHA-1 secret, and T = 1 is counter 1.
    assert TOTP_DOC["seeds"]["SHA1"] == HOTP_DOC["secret_hex"]
    assert SHA1_ROWS[0]["time"] // STEP == 1
    assert SHA1_ROWS[0]["totp"][-6:] == HOTP[1]


@pytest.mark.parametrize("v", SHA1_ROWS, ids=lambda v: f"t={v['time']}")
def test_rfc6238_sha1_rows(user: TotpUser, v: dict[str, Any]) -> None:
    step = v["time"] // STEP
    code = v["totp"][-6:]
    user.set_secret(v["seed"])
    assert user.refusal(v["totp"], now=v["time"]) == "wrong_otp"  # 8 digits: not our format
    assert user.verify(code, now=v["time"]) == step
    # Each step once: the same code again, even at the same second, is a replay.
    assert user.refusal(code, now=v["time"]) == "otp_replayed"


@pytest.mark.parametrize("v", SHA1_ROWS, ids=lambda v: f"t={v['time']}")
def test_rfc6238_window_edges(user: TotpUser, v: dict[str, Any]) -> None:
    """A code is good from the first second of the step before its own to the last second
    of the step after it, and not one second outside."""
    step = v["time"] // STEP
    code = v["totp"][-6:]
    first = (step - WINDOW) * STEP
    last = (step + WINDOW + 1) * STEP - 1
    user.set_secret(v["seed"])
    assert user.refusal(code, now=first - 1) == "wrong_otp"
    assert user.refusal(code, now=last + 1) == "wrong_otp"
    for now in (first, last):
        user.set_secret(v["seed"])
        assert user.verify(code, now=now) == step


@pytest.mark.parametrize("v", OTHER_ROWS, ids=lambda v: f"{v['mode']}-t={v['time']}")
def test_rfc6238_sha256_and_sha512_rows_are_not_accepted(user: TotpUser,
                                                         v: dict[str, Any]) -> None:
    """The verifier is HMAC-SHA-1 only (what the otpauth URI it hands out promises)."""
    user.set_secret(v["seed"])
    assert user.refusal(v["totp"][-6:], now=v["time"]) == "wrong_otp"


@pytest.mark.parametrize("v", HOTP_DOC["vectors"], ids=lambda v: f"count={v['count']}")
def test_rfc4226_hotp_is_totp_at_count_times_30(user: TotpUser, v: dict[str, Any]) -> None:
    start = v["count"] * STEP
    for now in (start, start + STEP - 1):  # the whole step, first and last second
        user.set_secret(HOTP_DOC["secret_hex"])
        assert user.verify(v["hotp"], now=now) == v["count"]


def test_each_step_once_and_never_an_earlier_one(user: TotpUser) -> None:
    user.set_secret(HOTP_DOC["secret_hex"])
    now = 5 * STEP  # the window holds steps 4, 5 and 6
    assert user.verify(HOTP[5], now=now) == 5
    assert user.refusal(HOTP[5], now=now) == "otp_replayed"
    # Step 4 is inside the window, but older than a step already used.
    assert user.refusal(HOTP[4], now=now) == "otp_replayed"
    # A later step is still good, once.
    assert user.verify(HOTP[6], now=now) == 6
    assert user.refusal(HOTP[6], now=now + 1) == "otp_replayed"
    assert user.refusal(HOTP[5], now=now + 1) == "otp_replayed"
    # Outside the window a code is simply wrong, used or not.
    assert user.refusal(HOTP[3], now=now) == "wrong_otp"
    assert user.refusal(HOTP[7], now=now) == "wrong_otp"
    # A new setup of the same secret starts afresh.
    user.set_secret(HOTP_DOC["secret_hex"])
    assert user.verify(HOTP[4], now=now) == 4
