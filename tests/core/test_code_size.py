"""Size budget: a scheme C confirmation code stays at QR version 10 or lower at ECC M.

Version 10-M holds 311 alphanumeric characters: "QG1:" plus 307 Base45 characters, i.e. at
most 204 bytes of COSE_Sign1. The code is built by the real scheme C core, with the longest
values a typical bank operation has; the sizes are printed in every assertion message.
"""

from __future__ import annotations

import os

import base45
import cbor2

from qrgate.core.codes import PREFIX
from qrgate.core.confirm import ChallengeView, ConfirmState, issue_code
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.qrimage import decode_image, qr_version, render_png

NOW = 1_700_000_000


def typical_code(ring: KeyRing) -> str:
    challenge = ChallengeView(
        challenge_id=os.urandom(16), state=ConfirmState.PENDING, org_id=1234, user_id=1,
        business_id="web-banking", login="alice.smith@example.com", operation="transfer",
        amount="1250.00 EUR", url=None, number=42, verification_code=os.urandom(8),
        device_id=None, expires_at=NOW + 300,
    )
    return issue_code(challenge=challenge, number_matching=True, issuer="qrgate", now=NOW,
                      ttl=30, keyring=ring)


def test_confirm_code_fits_version_10_at_ecc_m() -> None:
    ring = KeyRing(active=SigningKey.generate(now=NOW))
    code = typical_code(ring)
    cose = base45.b45decode(code[len(PREFIX):])
    payload = cbor2.loads(cose).value[2]
    found = decode_image(render_png(code, ecc="M"))
    sizes = (
        f"claims {len(payload)} B, COSE {len(cose)} B, Base45 {len(code) - len(PREFIX)} chars, "
        f"code {len(code)} chars, QR version {found[0].version if found else '?'} at ECC M"
    )
    assert [qr.text for qr in found] == [code], sizes
    assert found[0].ec_level == "M", sizes
    assert found[0].version == qr_version(code, ecc="M") <= 10, sizes
    assert len(cose) <= 204, sizes


def test_same_rotation_gives_the_same_code() -> None:
    """Deterministic ES256 (RFC 6979): re-issuing a rotation's code yields identical text."""
    ring = KeyRing(active=SigningKey.generate(now=NOW))
    challenge = ChallengeView(
        challenge_id=bytes(16), state=ConfirmState.PENDING, org_id=1, user_id=1,
        business_id="web", login="alice", operation="login", amount=None, url=None,
        number=None, verification_code=bytes(8), device_id=None, expires_at=NOW + 300,
    )
    first, second = (issue_code(challenge=challenge, number_matching=False, issuer="qrgate",
                                now=NOW, ttl=30, keyring=ring) for _ in range(2))
    assert first == second
