"""Device enrolment codes (scheme C registration, patent claims 3 and 12).

The enrolment QR carries a one-time secret; the phone answers it with a fresh ES256 public
key, signs that answer with the new key (proof of possession), and confirms with the user's
password or a code shown once. Pure: no I/O, time is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.keyring import KeyRing, PublicKeySet
from qrgate.errors import MalformedCode


class EnrolClaim(IntEnum):
    ENROLMENT = 10
    SECRET = 11
    ORG = 12
    LOGIN = 13
    SERVER = 14


@dataclass(frozen=True, kw_only=True)
class EnrolCode:
    enrolment_id: str
    secret: str
    org_id: int
    login: str
    server_url: str
    issuer: str
    expires_at: int


def issue_enrol_code(
    *,
    enrolment_id: str,
    secret: str,
    org_id: int,
    login: str,
    server_url: str,
    issuer: str,
    now: int,
    expires_at: int,
    keyring: KeyRing,
) -> str:
    return encode_code(
        code_type=CodeType.ENROL,
        code_id=bytes.fromhex(enrolment_id),
        issued_at=now,
        expires_at=expires_at,
        issuer=issuer,
        claims={
            EnrolClaim.ENROLMENT: enrolment_id,
            EnrolClaim.SECRET: secret,
            EnrolClaim.ORG: org_id,
            EnrolClaim.LOGIN: login,
            EnrolClaim.SERVER: server_url,
        },
        keyring=keyring,
    )


def read_enrol_code(
    text: str,
    *,
    keys: KeyRing | PublicKeySet | Mapping[bytes, EllipticCurvePublicKey],
    now: float,
) -> EnrolCode:
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.ENROL)
    claims = verified.claims
    values = (
        claims.get(EnrolClaim.ENROLMENT), claims.get(EnrolClaim.SECRET),
        claims.get(EnrolClaim.ORG), claims.get(EnrolClaim.LOGIN), claims.get(EnrolClaim.SERVER),
    )
    enrolment_id, secret, org_id, login, server = values
    if not (
        isinstance(enrolment_id, str) and isinstance(secret, str) and isinstance(login, str)
        and isinstance(server, str) and isinstance(org_id, int) and not isinstance(org_id, bool)
    ):
        raise MalformedCode("enrolment code claims are missing or ill-typed")
    return EnrolCode(
        enrolment_id=enrolment_id, secret=secret, org_id=org_id, login=login,
        server_url=server, issuer=verified.issuer, expires_at=verified.expires_at,
    )
