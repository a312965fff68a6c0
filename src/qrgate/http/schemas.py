"""Wire models: request bodies are strict (unknown fields refused, every string bounded)."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from qrgate.core import inputs
from qrgate.core.codes import MAX_CODE_CHARS
from qrgate.core.confirm import ConfirmState, Decision
from qrgate.core.policy import VerifierKind


def _line(max_length: int, *, min_length: int = 0) -> object:
    return StringConstraints(min_length=min_length, max_length=max_length,
                             pattern=inputs.LINE_PATTERN)


Id = Annotated[str, StringConstraints(pattern=inputs.ID_PATTERN)]
Login = Annotated[str, StringConstraints(pattern=inputs.LOGIN_PATTERN)]
BusinessId = Annotated[str, StringConstraints(pattern=inputs.BUSINESS_ID_PATTERN)]
Line = Annotated[str, _line(200)]
Text = Annotated[str, StringConstraints(max_length=500, pattern=inputs.TEXT_PATTERN)]
Url = Annotated[str, StringConstraints(max_length=200, pattern=r"^https?://[!-~]+$")]
Amount = Annotated[str, StringConstraints(max_length=20, pattern=r"^[0-9]+(\.[0-9]{1,8})?$")]
CodeText = Annotated[str, StringConstraints(min_length=4, max_length=MAX_CODE_CHARS,
                                            pattern=inputs.CODE_PATTERN)]
Password = Annotated[str, _line(200, min_length=1)]
# Where the relying party saw the request come from: an IP address, or nothing.
IpAddress = IPv4Address | IPv6Address | Literal[""]

# Path and query parameters, refused before any handler runs.
IdPath = Annotated[str, Path(pattern=inputs.ID_PATTERN)]
LoginPath = Annotated[str, Path(pattern=inputs.LOGIN_PATTERN)]
LoginQuery = Annotated[str | None, Query(pattern=inputs.LOGIN_PATTERN)]
SearchQuery = Annotated[str | None, Query(max_length=100, pattern=inputs.LINE_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=200)]


def _json_integer(value: object) -> object:
    """JSON Schema's integer: 75 and 75.0 alike, but not "75" nor true."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value



class Strict(BaseModel):
    """Request bodies: unknown fields refused. Numbers and booleans are ``StrictInt`` /
    ``StrictBool`` (no "12" for 12, no "yes" for true); strings are validated by pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Requester(Strict):
    ip: IpAddress = ""
    user_agent: Annotated[str, _line(300)] = ""


class Scene(Strict):
    operation: Annotated[str, StringConstraints(min_length=1, max_length=32,
                                                pattern=r"^[a-z0-9_.-]+$")]
    source: Annotated[str, _line(100)] = ""
    amount: Amount | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    content: Text = ""


class StartConfirm(Strict):
    login: Login
    scene: Scene
    business_id: BusinessId | None = None
    url: Url | None = None
    requester: Requester = Requester()
    verifier: VerifierKind | None = None
    number_matching: StrictBool = False


class ChallengeOut(BaseModel):
    challenge_id: str
    state: ConfirmState
    reason: str | None
    verifier: VerifierKind
    login: str
    business_id: str
    scene: dict[str, str | None]
    created_at: float
    expires_at: float
    decided_at: float | None
    number: int | None = Field(
        default=None, description="Shown by the browser for number matching; never to the phone"
    )


class Started(ChallengeOut):
    code: str | None = Field(description="QR content (QG1:...); render it or fetch qr.png/qr.svg")
    code_expires_at: float
    browser_token: str = Field(description="Give only to the browser that started; binds the "
                               "result stream to it")
    links: dict[str, str]


class RotatedCode(BaseModel):
    code: str
    code_expires_at: float


class ScanIn(Strict):
    code: CodeText


class ScanOut(BaseModel):
    challenge_id: str
    service: dict[str, str | None]
    operation: str
    scene: dict[str, str | None]
    login: str
    requester: dict[str, str]
    number_matching: bool
    expires_at: float


class DecisionIn(Strict):
    decision: Decision
    number: Annotated[StrictInt, Field(ge=0, le=99), BeforeValidator(_json_integer)] | None = (
        None)


class OtpIn(Strict):
    otp: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class UserIn(Strict):
    login: Login
    display_name: Line = ""
    password: Annotated[str, _line(200, min_length=8)] | None = None


class UserOut(BaseModel):
    login: str
    display_name: str
    preferred_verifier: VerifierKind | None
    has_password: bool
    has_totp: bool
    frozen: bool


class PreferenceIn(Strict):
    preferred_verifier: VerifierKind | None


class EnrolmentOut(BaseModel):
    enrolment_id: str
    code: str
    confirm_code: str = Field(description="Show once to the user; the phone must type it")
    expires_at: float
    qr_svg: str


class DeviceEnrolIn(Strict):
    code: CodeText
    public_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{87}=?$")] = Field(
        description="base64url of the uncompressed P-256 point (65 bytes)"
    )
    client_app_id: BusinessId = "qrgate-phone"
    name: Annotated[str, _line(100)] = ""
    password: Password | None = None
    confirm_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")] | None = None


class DeviceOut(BaseModel):
    device_id: str
    name: str
    client_app_id: str
    status: str
    created_at: float


class DeviceEnrolled(DeviceOut):
    login: str
    keys: Mapping[str, object] = Field(description="JWKS of the server's code-signing keys")
    offline_secret: str = Field(
        description="base64url of the 32-byte secret the phone derives offline approval "
                    "codes from; given once, kept by the phone as a non-exportable key")


class TotpOut(BaseModel):
    uri: str
    qr_svg: str


class HistoryItem(BaseModel):
    challenge_id: str
    state: ConfirmState
    reason: str | None
    login: str
    business_id: str
    scene: dict[str, str | None]
    created_at: float
    decided_at: float | None


class History(BaseModel):
    items: list[HistoryItem]


StateFilter = Literal["pending", "scanned", "approved", "denied", "rejected", "expired"]
