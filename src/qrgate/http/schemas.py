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
    model_validator,
)

from qrgate.core import inputs
from qrgate.core.codes import MAX_CODE_CHARS
from qrgate.core.confirm import ConfirmState, Decision
from qrgate.core.policy import VerifierKind
from qrgate.http.schemas_app_lock import UnlockIn


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
    unlock_required: bool = Field(False, description=(
        "The application's policy requires the app lock: an approval carries `unlock`"))


class DecisionIn(Strict):
    decision: Decision
    number: Annotated[StrictInt, Field(ge=0, le=99), BeforeValidator(_json_integer)] | None = (
        None)
    unlock: UnlockIn | None = Field(None, description=(
        "App lock: the PIN's or platform authenticator's proof over this decision "
        "(README, App lock); required to approve when the scan said `unlock_required`"))
    report: StrictBool = Field(False, description=(
        "With deny only: \"I did not start this\". Records a report, ends the user's other "
        "open challenges and pauses new ones (QRGATE_REPORT_BLOCK_SECONDS)"))

    @model_validator(mode="after")
    def _report_only_with_deny(self) -> DecisionIn:
        if self.report and self.decision != Decision.DENY:
            raise ValueError("report goes with decision deny only")
        return self


class OtpIn(Strict):
    otp: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class OfflineCodeIn(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")] = Field(
        description="The 8-digit code the phone showed when it could not reach the server")


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
    blocked_until: float | None = Field(
        None, description="After a \"this wasn't me\" report: no new challenge before this "
                          "Unix time (user_blocked)")


class ReportIn(Strict):
    """What the user says they did not start: one of the two, or neither (the user called
    the help desk about a request they cannot name)."""

    challenge_id: Annotated[str, StringConstraints(pattern=inputs.ID_PATTERN)] | None = None
    transaction_id: Annotated[str, StringConstraints(pattern=inputs.ID_PATTERN)] | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> ReportIn:
        if self.challenge_id is not None and self.transaction_id is not None:
            raise ValueError("name a challenge or a transaction, not both")
        return self


class ReportOut(BaseModel):
    report_id: str
    login: str
    scheme: str
    challenge_id: str | None
    transaction_id: str | None
    created_at: float
    blocked_until: float


class PreferenceIn(Strict):
    preferred_verifier: VerifierKind | None


class EnrolmentOut(BaseModel):
    enrolment_id: str
    code: str
    confirm_code: str = Field(description="Show once to the user; the phone must type it")
    expires_at: float
    qr_svg: str


# A temporary access pass as people type it: 16 Crockford base32 characters, any case,
# with spaces or dashes (qrgate.accounts.access_passes normalises it).
AccessPassText = Annotated[str, StringConstraints(min_length=16, max_length=40,
                                                  pattern=r"^[0-9A-Za-z -]+$")]


class AccessPassIn(Strict):
    ttl_seconds: Annotated[StrictInt, Field(ge=300, le=604_800),
                           BeforeValidator(_json_integer)] | None = Field(
        default=None, description="How long the pass lives; QRGATE_ACCESS_PASS_TTL when null")
    revoke_devices: StrictBool = Field(
        default=True, description="The phone enrolled with the pass replaces (unbinds) the "
                                  "user's other devices")


class AccessPassOut(BaseModel):
    access_pass_id: str
    access_pass: str = Field(description="Shown once; give it to the user by a trusted way")
    expires_at: float
    revoke_devices: bool


class DeviceEnrolIn(Strict):
    code: CodeText | None = Field(default=None, description="The enrolment QR's content; "
                                                            "or access_pass")
    access_pass: AccessPassText | None = Field(
        default=None, description="A temporary access pass (lost phone) instead of code")
    public_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{87}=?$")] = Field(
        description="base64url of the uncompressed P-256 point (65 bytes)"
    )
    client_app_id: BusinessId = "qrgate-phone"
    name: Annotated[str, _line(100)] = ""
    password: Password | None = None
    confirm_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")] | None = None

    @model_validator(mode="after")
    def _code_or_access_pass(self) -> DeviceEnrolIn:
        if (self.code is None) == (self.access_pass is None):
            raise ValueError("give exactly one of code and access_pass")
        if self.access_pass is not None and (self.password is not None
                                             or self.confirm_code is not None):
            raise ValueError("an access pass needs no password or confirm_code")
        return self


class DeviceOut(BaseModel):
    device_id: str
    name: str
    client_app_id: str
    status: str
    created_at: float


class DeviceEnrolled(DeviceOut):
    login: str
    org_id: int = Field(description="The user's organisation (codes name it)")
    issuer: str = Field(description="The server's issuer name (codes carry it)")
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
