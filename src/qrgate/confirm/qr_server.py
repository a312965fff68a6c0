"""The QR server (SPEC step 604): turns a challenge into the signed code on screen, rotates
it while the page waits, and renders it. Rendering is off the hot path: the start response
carries the code text, and images are made only when a page asks for one.
"""

from __future__ import annotations

from sqlalchemy import Connection

from qrgate.confirm import repository
from qrgate.confirm.repository import ChallengeRow
from qrgate.core.confirm import VERIFICATION_CODE_BYTES, issue_code, new_verification_code
from qrgate.core.policy import VerifierKind
from qrgate.errors import Expired, Rejected
from qrgate.qrimage import render_png, render_svg
from qrgate.runtime import Runtime


def code_for(rt: Runtime, row: ChallengeRow) -> str:
    """The code of the challenge's current rotation. Re-issuing gives the same claims, so a
    page that reloads its image shows the code that is valid now."""
    return issue_code(
        challenge=row.view(),
        number_matching=row.number is not None,
        issuer=rt.settings.issuer,
        now=int(row.code_expires_at) - rt.settings.code_ttl,
        ttl=rt.settings.code_ttl,
        keyring=rt.keyring,
    )


def rotate(rt: Runtime, conn: Connection, *, row: ChallengeRow, now: float) -> ChallengeRow:
    """A new verification code for a waiting page; the old code dies with this update."""
    if row.verifier != VerifierKind.QR:
        raise Rejected("this challenge is not confirmed by scanning a code",
                       code="wrong_verifier")
    if row.effective_state(now) != "pending":
        if row.effective_state(now) == "expired":
            raise Expired("challenge expired")
        raise Rejected("only a waiting challenge rotates its code", code="not_pending")
    rotated = repository.rotate(
        conn,
        challenge_id=row.id,
        code_nonce=new_verification_code(rt.random(VERIFICATION_CODE_BYTES)),
        code_expires_at=min(int(now) + rt.settings.code_ttl, row.expires_at),
        now=now,
    )
    if rotated is None:
        raise Rejected("challenge is no longer waiting", code="not_pending")
    return rotated


def render(code: str, *, image_format: str) -> tuple[bytes, str]:
    if image_format == "svg":
        return render_svg(code, ecc="M").encode(), "image/svg+xml"
    return render_png(code, ecc="M", scale=6), "image/png"
