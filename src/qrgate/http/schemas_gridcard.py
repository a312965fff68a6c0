"""Wire models of scheme A (``/v1/gridcard``): strict bodies, bounded strings."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, StrictInt, StringConstraints

from qrgate.core import inputs
from qrgate.core.gridcard_attempt import AttemptState, Risk
from qrgate.gridcard.cards import MAX_TTL_DAYS
from qrgate.http.schemas import (
    BusinessId,
    CodeText,
    Login,
    Password,
    Requester,
    Strict,
    _json_integer,
)

Slug = Annotated[str, StringConstraints(pattern=inputs.SLUG_PATTERN)]
Operation = Annotated[str, StringConstraints(min_length=1, max_length=32,
                                             pattern=r"^[a-z0-9_.-]+$")]
# What a scanned cell may be: the alphabet of QR alphanumeric mode, and short. Anything
# else is refused here; a well-formed cell is then checked by qrgate.core.gridcard.
CellText = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                            pattern=inputs.CODE_PATTERN)]
SerialPath = Annotated[str, StringConstraints(min_length=10, max_length=12,
                                              pattern=r"^[0-9A-Za-z-]+$")]


class SignInIn(Strict):
    organisation: Slug
    login: Login
    password: Password
    operation: Operation = "login"
    risk: Risk = Risk.NORMAL


class StartGridcardIn(Strict):
    login: Login
    password: Password
    operation: Operation = "login"
    risk: Risk = Risk.NORMAL
    business_id: BusinessId | None = None
    requester: Requester = Requester()


class JoinIn(Strict):
    code: CodeText


class AnswerIn(Strict):
    cell: CellText


class CardIn(Strict):
    login: Login
    days: Annotated[StrictInt, Field(ge=1, le=MAX_TTL_DAYS),
                    BeforeValidator(_json_integer)] | None = None


class AttemptOut(BaseModel):
    attempt_id: str
    state: AttemptState
    reason: str | None
    login: str
    organisation: str
    application: str | None
    operation: str
    serial: str
    position: str
    position_seq: int
    window_seconds: int
    position_expires_at: float
    reissues_left: int
    created_at: float
    expires_at: float
    decided_at: float | None


class AttemptStarted(AttemptOut):
    answer_token: str
    code: str | None
    links: dict[str, str]


class Service(BaseModel):
    organisation: str
    application: str | None
    business_id: str | None
    origin: str | None


class RequesterOut(BaseModel):
    ip: str
    user_agent: str
    place: str


class AttemptJoined(AttemptOut):
    answer_token: str
    service: Service
    requester: RequesterOut


class CardOut(BaseModel):
    serial: str
    status: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    cells: int
    used_cells: int | None
    near_exhaustion: bool


class Cards(BaseModel):
    items: list[CardOut]
