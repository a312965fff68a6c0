"""Wire models of scheme E (``/v1/txsign``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from qrgate.core import inputs
from qrgate.http.schemas import BusinessId, CodeText, Id, Login, Strict

# Bounded so the challenge code, which carries the whole text, stays a scannable QR.
Words = Annotated[str, StringConstraints(max_length=200, pattern=inputs.TEXT_PATTERN)]
Response = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,10}$")]
# Exactly the suites a transaction-signing token may use (``txsign.tokens.check_suite``):
# QH64 questions, a counter and/or a time step (RFC 6287 §6, errata 3729), no PIN, no
# session part.
Suite = Annotated[str, StringConstraints(
    pattern=r"^OCRA-1:HOTP-SHA(1|256|512)-([4-9]|10):(C-)?QH64"
            r"(-T([1-9]|[1-5][0-9])[SM]|-T([1-9]|[1-3][0-9]|4[0-8])H)?$")]
HexQuestion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class TokenIn(Strict):
    login: Login
    suite: Suite | None = None


class TokenEnrolment(BaseModel):
    token_id: str
    suite: str
    code: str = Field(description="QR content carrying the token secret once (QG1:...)")
    qr_svg: str
    expires_at: float


class TokenActivateIn(Strict):
    response: Response = Field(description="OCRA response to the activation question")
    client_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")] | None = (
        Field(default=None, description="A random id the app keeps for this token: the same "
                                        "activation sent again with it (a lost reply) gets "
                                        "the same answer"))


class TokenOut(BaseModel):
    token_id: str
    suite: str
    status: str


class ResyncIn(Strict):
    questions: tuple[HexQuestion, HexQuestion]
    responses: tuple[Response, Response]


class TransactionIn(Strict):
    account: Login
    platform: BusinessId | None = Field(
        default=None,
        description="The transaction platform: the business id of one of the API key's "
                    "organisation's applications (default: the key's own application). "
                    "Signed into the transaction, so a chain shows which platform it used.")
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
    token_id: Id | None = None


class VerifyIn(Strict):
    code: CodeText


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
