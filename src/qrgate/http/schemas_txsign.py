"""Wire models of scheme E (``/v1/txsign``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from qrgate.http.schemas import CodeText, Strict

Line = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Bounded so the challenge code, which carries the whole text, stays a scannable QR.
Words = Annotated[str, StringConstraints(max_length=200)]
Response = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,10}$")]
Suite = Annotated[str, StringConstraints(min_length=8, max_length=64)]


class TokenIn(Strict):
    login: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    suite: Suite | None = None


class TokenEnrolment(BaseModel):
    token_id: str
    suite: str
    code: str = Field(description="QR content carrying the token secret once (QG1:...)")
    qr_svg: str
    expires_at: float


class TokenActivateIn(Strict):
    response: Response = Field(description="OCRA response to the activation question")


class TokenOut(BaseModel):
    token_id: str
    suite: str
    status: str


class ResyncIn(Strict):
    questions: tuple[Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")],
                     Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]]
    responses: tuple[Response, Response]


class TransactionIn(Strict):
    account: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    platform: Line
    demand: Words
    comment: Words = ""
    parent_code: CodeText | None = Field(
        default=None, description="The scanned chain code this transaction continues")


class LinkOut(BaseModel):
    transaction_id: str
    account: str
    platform: str
    demand: str
    comment: str
    response: str
    verified_at: int
    text_digest: str
    text_in_qr: bool


class TransactionOut(BaseModel):
    transaction_id: str
    state: str
    reason: str | None
    account: str
    platform: str
    demand: str
    comment: str
    created_at: float
    expires_at: float
    parent_id: str | None
    verified_at: int | None
    chain_code: str | None


class TransactionStarted(TransactionOut):
    question: str = Field(description="S1: OCRA hex question, the transaction's SHA-256")
    suite: str
    challenge_code: str = Field(description="Signed QR content the token scans (QG1:...)")
    parent_links: list[LinkOut]


class RespondIn(Strict):
    response: Response
    token_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None


class VerifyIn(Strict):
    code: Annotated[str, StringConstraints(min_length=4, max_length=4096)]


class ChainOut(BaseModel):
    valid: bool
    issuer: str
    issued_at: int
    links: list[LinkOut]


class TextOut(BaseModel):
    account: str
    platform: str
    demand: str
    comment: str
    text_digest: str
