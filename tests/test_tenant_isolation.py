"""Tenant isolation: another organisation's credentials reach nothing of this one.

Every stack holds two organisations (``support.stack``): the bank, which the tests talk to,
and ``stack.other``, a rival shop whose users have the bank's logins (alice, bob, carol) and
whose alice has a bound phone. ``test_the_rival_reaches_nothing_of_the_bank`` reads
``/openapi.json`` from the running server and calls every operation in it as the rival: with
its API key, its alice's request signature (made as ``qrgate.clients.phone`` makes it: method,
path and query, time, device id, SHA-256 of the body, low S), the browser token of a
challenge it started, or the answer token of a grid card attempt it started, naming the
bank's things. An operation added tomorrow is walked
tomorrow; one the walk cannot call (a path parameter, a body field named like an id, or a
required body field it has no value for) fails the test and says what to add here.

How each operation is called
    Each place in a request that names something an organisation owns is a *slot*: the path
    parameters ``challenge_id``, ``transaction_id``, ``token_id``, ``device_id``,
    ``event_id`` (a webhook event), ``attempt_id`` (a grid card attempt), ``serial`` (a
    grid card) and ``login``; the query parameter ``login``; the body fields
    ``login``/``account``, ``business_id``/``platform``, ``token_id`` and ``parent_code``,
    the scanned ``code`` of ``POST /v1/confirm/scan`` and ``POST /v1/gridcard/scan``, the
    ``password``/``confirm_code`` of a phone enrolment, and the scanned ``cell`` of a grid
    card answer. The ``login`` of a grid card start goes with a password, and an unknown
    login is refused exactly like a wrong password (``bad_credentials``: no login is
    confirmed to exist), so that is its refusal there.
    Each slot of an operation is probed on its own, the other slots holding the rival's own
    things, so the probed slot decides the answer.

    The bank's value is the one in the state in which the bank's own call would succeed, so
    that a missing check acts or leaks instead of failing on the state: a pending QR
    challenge (its TOTP-routed one for ``/otp``, with the current one-time password; one its
    alice's phone scanned for ``/decision``), a signed transaction (a pending one, with the
    bank's alice's correct OCRA answer, for ``/response`` and the challenge images), the
    bank's alice's active token and bound phone, a login only the bank has (``dora``; ``erin``
    for ``POST /v1/users``, which creates it at the rival), the bank's business id ``web``, a
    chain code of the bank, its alice's password and the confirmation code of one of its
    enrolments, an event its webhook delivered (to a receiver the test runs), and for grid
    cards: ``dora``'s card and her pending attempt, started by the bank's relying party
    (another one, past its position's window, for ``/reissue``), and her card's cell at the
    position the rival's own attempt asks (with the password the bank's users have, a
    start for ``dora`` would succeed at the bank).

    The same request naming a thing of the same shape that exists nowhere (32 random hex
    digits; a login and a business id nobody has; a confirmation or chain code signed by this
    very server for a challenge or transaction it never stored; a password and confirmation
    code nobody has; a card serial never drawn and a well-formed cell of such a card) must
    get exactly the same status and problem ``code``, lists the same body. That answer must
    itself be the slot's refusal (``challenge_not_found``, ``user_not_found``,
    ``unknown_parent``...; for ``POST /v1/users`` a creation, for the history an empty list),
    which proves that the probe reached the lookup it tests.

    Operations without a slot (the rival's history, its phone's own endpoints, creating a
    user...) are called once. No answer to the rival, public operations aside, may contain
    one of the bank's canaries: its ids, its organisation's name, the words of its challenges
    and transactions (unless the request itself carried it). And once the walk is over, every
    row of the bank in ``challenges``, ``transactions``, ``tokens``, ``users``, ``devices``,
    ``enrolments``, ``gridcards``, ``gridcard_cells`` and ``gridcard_attempts`` is as it was
    before.

The namesakes
    Both organisations have an alice; the rival must act on its own. Its ``GET`` shows an alice
    without a password, TOTP and preferences it sets do not reach the bank's alice (the rows
    above), a phone it enrols for alice is bound to its alice and refuses the bank's alice's
    password, it enrols a token for alice while the bank's alice holds one, a transaction for
    alice finds no token (the bank's alice's is not hers), and a challenge it starts for alice
    is refused to the bank's alice's phone exactly like an unknown one, yet stays scannable and
    approvable by its own alice's phone. A grid card it issues for alice goes to its alice (the
    bank's alice keeps hers: issuing revokes the user's previous card), and its list of
    alice's cards shows that one alone.

The browser token
    The token is a capability for one challenge, not an organisation's credential: any token
    but the right one gets ``wrong_browser`` (403) for an existing challenge, whichever
    organisation's browser holds it, while an id that exists nowhere gets
    ``challenge_not_found`` (404). So the rival's token is compared with a token of another of
    the bank's own challenges on the same id: it must get exactly that refusal, nothing more.
    (The 403/404 difference tells whoever holds a challenge id that it exists; the id is 128
    random bits shown only in the QR and the waiting page's URL, whose holder knows it.)

    A grid card attempt's answer token is the same kind of capability: any token but the
    attempt's own gets ``wrong_attempt_token`` (403), an id that exists nowhere
    ``attempt_not_found`` (404). The rival's token is compared with the token of another of
    the bank's attempts on the same id. (The 403/404 difference tells whoever holds an
    attempt id that it exists; the id is 128 random bits, handed out with the token.)

Public by design
    Each is called on the bank's things with the rival's API key and with no credential at
    all, and both answers must be identical: a credential neither opens nor closes anything.

    - ``/healthz``, ``/readyz``: nothing of any organisation.
    - ``GET /v1/keys``: the JWKS, the public keys that phones and anyone verify codes with.
    - ``POST /v1/txsign/verify``: verifies any chain code this server signed, whichever
      organisation's transactions it links, and returns its links (account, platform,
      demand, comment, response, times). All of that is in the code itself or behind the
      link's text URL: a chain code is a signed receipt made to be checked by whoever is
      handed it (the next user of the chain, an auditor), offline or here. It reveals
      nothing the code does not carry.
    - ``GET /v1/txsign/transactions/{id}/text``: a signed link's text, for chain codes too long
      to carry it. The link names the URL, so whoever holds the chain holds the URL; the id is
      128 random bits found only in chain codes. Only signed transactions answer: the bank's
      pending transaction is answered exactly like an unknown id (checked), so nothing that
      was not signed into a chain is readable.
    - ``POST /v1/txsign/tokens/{id}/activate``: proven by the OCRA answer itself; the token id
      and its secret travel together in the enrolment QR, so whoever could send a wrong
      answer (which counts against the token) could as well activate it. The walk names the
      bank's active token, so it spends none of the bank's attempts.
    - ``POST /v1/gridcard/sign-in``: the phone app signs in alone; the password is the proof
      and the body names the organisation. The walk names the rival's own organisation with
      the bank's login and the bank's users' password: a lookup that forgot the organisation
      would start an attempt of the bank's ``dora`` (rows checked); the right answer is
      ``bad_credentials``. (Naming the bank would start one for real, or count a wrong
      password against the bank's user, as anyone may.)
    - ``POST /v1/gridcard/scan``: the signed code the relying party's page shows is the
      credential, as with ``/v1/confirm/scan`` for a bound phone; it names the attempt, and
      whoever holds it joins the attempt (its answer token), the card still to be shown.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from qrgate.accounts import directory
from qrgate.clients.token import SoftToken
from qrgate.core.confirm import ChallengeView, ConfirmState, issue_code, read_code
from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_target,
    sign_request,
)
from qrgate.core.gridcard import (
    SECRET_LENGTH,
    SERIAL_RANDOM_BYTES,
    Layout,
    format_serial,
    parse_cell,
    serial_from_random,
)
from qrgate.core.policy import VerifierKind
from qrgate.core.txsign import issue_chain_code, read_chain_code
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.http.auth import BROWSER_HEADER
from qrgate.http.routes_gridcard import ATTEMPT_HEADER
from qrgate.storage.models import (
    challenges,
    devices,
    enrolments,
    gridcard_attempts,
    gridcard_cells,
    gridcards,
    tokens,
    transactions,
    users,
    webhook_events,
    webhooks,
)
from support.fuzz_callers import encoded_public_key
from support.stack import PASSWORD, Stack, clock, stack_factory
from support.txsign import Platform, server_keys
from support.webhook_receiver import Receiver, wait_until

__all__ = ["clock", "stack_factory"]

Label = str  # "METHOD /path/{template}", as in the OpenAPI document


# --- slots ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotKind:
    """What a slot names, and how a request naming one that exists nowhere is refused."""

    name: str
    refusal: str


CHALLENGE = SlotKind("challenge id", "challenge_not_found")
TRANSACTION = SlotKind("transaction id", "transaction_not_found")
TOKEN = SlotKind("token id", "token_not_found")
DEVICE = SlotKind("device id", "device_not_found")
LOGIN = SlotKind("login", "user_not_found")
BUSINESS = SlotKind("business id", "app_not_found")
PARENT = SlotKind("parent chain code", "unknown_parent")
SCANNED = SlotKind("scanned confirmation code", "challenge_not_found")
PASSWORD_SLOT = SlotKind("password", "bad_credentials")
CONFIRM_CODE = SlotKind("enrolment confirmation code", "bad_credentials")
EVENT = SlotKind("webhook event id", "event_not_found")
ATTEMPT = SlotKind("grid card attempt id", "attempt_not_found")
CARD = SlotKind("grid card serial", "not_found")
JOIN_CODE = SlotKind("grid card attempt's code", "attempt_not_found")
CELL = SlotKind("grid card cell", "wrong_card")
# A grid card start's login goes with a password: an unknown one is a wrong password.
SIGN_IN = SlotKind("login signing in with a password", "bad_credentials")

PATH_SLOTS = {"challenge_id": CHALLENGE, "transaction_id": TRANSACTION, "token_id": TOKEN,
              "event_id": EVENT, "attempt_id": ATTEMPT, "serial": CARD,
              "device_id": DEVICE, "login": LOGIN}
QUERY_SLOTS = {"login": LOGIN}
BODY_SLOTS = {"login": LOGIN, "account": LOGIN, "business_id": BUSINESS, "platform": BUSINESS,
              "token_id": TOKEN, "parent_code": PARENT}
# Fields whose meaning depends on the operation.
OPERATION_BODY_SLOTS: dict[Label, dict[str, SlotKind]] = {
    "POST /v1/confirm/scan": {"code": SCANNED},
    "POST /v1/devices": {"password": PASSWORD_SLOT, "confirm_code": CONFIRM_CODE},
    # What a "this wasn't me" report names: the reported user's own request only.
    "POST /v1/users/{login}/reports": {"challenge_id": CHALLENGE,
                                       "transaction_id": TRANSACTION},
    "POST /v1/gridcard/sign-in": {"login": SIGN_IN},
    "POST /v1/gridcard/attempts": {"login": SIGN_IN},
    "POST /v1/gridcard/scan": {"code": JOIN_CODE},
    "POST /v1/gridcard/attempts/{attempt_id}/answer": {"cell": CELL},
}
# Fields named like ids that name nothing an organisation owns.
NOT_SLOTS = {
    "client_app_id": "the phone app's own name (POST /v1/devices)",
    "client_id": "a random id the phone app keeps for its token (POST .../activate)",
}
# Where a thing nobody has is not refused: the rival creates it, or lists nothing.
ACCEPTED_UNKNOWN: dict[tuple[Label, SlotKind], int] = {
    ("POST /v1/users", LOGIN): 201,
    ("GET /v1/confirm/challenges", LOGIN): 200,
}


@dataclass(frozen=True)
class Slot:
    where: str  # path, query or body
    name: str
    kind: SlotKind

    def __str__(self) -> str:
        return f"{self.where} {self.name}"


# --- callers --------------------------------------------------------------------------------


class Caller(StrEnum):
    PUBLIC = "no credential"
    API_KEY = "API key"
    DEVICE = "phone signature"
    NEW_DEVICE = "new phone's signature"
    BROWSER = "browser token"
    ATTEMPT = "attempt token"


# Signed by the key being bound (``Qrgate-Device: new``), not by a bound phone.
NEW_DEVICE_OPERATIONS = {"POST /v1/devices"}
# Body fields of which the request needs one (a validator says so, not the schema's
# "required"): the walk sends the first.
ONE_OF_REQUIRED: dict[Label, list[str]] = {"POST /v1/devices": ["code"]}  # or access_pass


def callers_of(label: Label, security: list[dict[str, list[str]]]) -> list[Caller]:
    schemes = {scheme for requirement in security for scheme in requirement}
    if not schemes:
        return [Caller.PUBLIC]
    callers = []
    if "ApiKey" in schemes:
        callers.append(Caller.API_KEY)
    if "DeviceSignature" in schemes:
        callers.append(Caller.NEW_DEVICE if label in NEW_DEVICE_OPERATIONS else Caller.DEVICE)
    # The cookie carries the same secret as the header; the header stands for both.
    if "BrowserToken" in schemes:
        callers.append(Caller.BROWSER)
    if "AttemptToken" in schemes:
        callers.append(Caller.ATTEMPT)
    return callers


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    # The key whose public half the body offers for binding: it signs as ``new``.
    new_device_key: ec.EllipticCurvePrivateKey | None = None

    def carries(self, text: str) -> bool:
        return text in self.path or text in json.dumps([self.query, self.body])


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None
    text: str

    @property
    def verdict(self) -> tuple[int, str | None]:
        return self.status, self.code

    def __str__(self) -> str:
        return f"{self.status} {self.code}" if self.code else str(self.status)


@dataclass(frozen=True)
class Phone:
    device_id: str
    key: ec.EllipticCurvePrivateKey


class Client:
    """Sends a request as one caller, signing as the phone does, over the exact bytes sent."""

    def __init__(self, base_url: str, clock: Callable[[], float]) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.clock = clock

    def close(self) -> None:
        self.http.close()

    def send(self, request: Request, *, api_key: str | None = None, phone: Phone | None = None,
             browser_token: str | None = None, attempt_token: str | None = None) -> Answer:
        raw = b"" if request.body is None else json.dumps(request.body).encode()
        headers = {"content-type": "application/json"} if request.body is not None else {}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        if browser_token is not None:
            headers[BROWSER_HEADER] = browser_token
        if attempt_token is not None:
            headers[ATTEMPT_HEADER] = attempt_token
        built = self.http.build_request(request.method, request.path, params=request.query,
                                        content=raw, headers=headers)
        if phone is not None:
            timestamp = int(self.clock())
            built.headers[DEVICE_HEADER] = phone.device_id
            built.headers[TIMESTAMP_HEADER] = str(timestamp)
            built.headers[SIGNATURE_HEADER] = sign_request(
                private_key=phone.key, method=request.method,
                path=request_target(built.url.path, built.url.query.decode()),
                timestamp=timestamp, device_id=phone.device_id, body=raw)
        response = self.http.send(built, stream=True)
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                # An open event stream never ends; its status says all.
                return Answer(response.status_code, None, "")
            response.read()
        finally:
            response.close()
        code = None
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = response.json().get("code")
        return Answer(response.status_code, code, response.text)


# --- the two organisations' things ----------------------------------------------------------


BANK_CANARY = "bankcanary" + secrets.token_hex(4)


@dataclass
class Bank:
    """The first organisation's things, made through its own API."""

    org_name: str
    only_login: str
    login_to_create: str
    pending_challenge: str
    totp_challenge: str
    totp_now: Callable[[], str]
    scanned_challenge: str
    scan_code: str
    another_browser_token: str
    alice: Phone
    token_id: str
    signed_transaction: str
    pending_transaction: str
    pending_answer: str
    chain_code: str
    confirm_code: str
    event_id: str
    gridcard: BankGridcard
    business_id: str = "web"
    # The offline approval code of alice's phone for the pending challenge.
    pending_offline_code: str = ""

    def canaries(self) -> list[str]:
        return [self.org_name, BANK_CANARY, self.pending_challenge, self.totp_challenge,
                self.scanned_challenge, self.alice.device_id, self.token_id,
                self.signed_transaction, self.pending_transaction, self.event_id,
                *self.gridcard.canaries()]


@dataclass
class BankGridcard:
    """The bank's grid card things: ``dora``'s card and her pending attempt, started by the
    relying party (with a code for its page); another user's attempt past its position's
    window, which a reissue would move on; and the bank's alice's card."""

    serial: str
    attempt: str
    attempt_token: str
    attempt_code: str
    late_attempt: str
    late_attempt_token: str
    # dora's card's cell at the position the rival's own attempt asks.
    cell: str
    alice_serial: str

    def canaries(self) -> list[str]:
        return [self.serial, format_serial(self.serial), self.attempt, self.attempt_token,
                self.late_attempt, self.late_attempt_token, self.alice_serial,
                format_serial(self.alice_serial)]


@dataclass
class Rival:
    """The second organisation's credentials and its own things, the fillers of the slots
    not under probe."""

    api_key: str
    alice: Phone
    spare: Phone
    challenge: str
    browser_token: str
    transaction: str
    token_id: str
    business_id: str
    new_enrolment: Callable[[], dict[str, Any]]
    org_slug: str
    # Its user with a password and a grid card (none of its alice, bob and carol has a
    # password), and that user's pending attempt.
    gridcard_login: str
    attempt: str
    attempt_token: str
    # The right cell of the rival's card for the position the attempt asks.
    cell: str


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """The bank's webhook goes to a receiver on this machine."""
    return stack_factory(webhook_allow_loopback=True)


def issue_card(stack: Stack, org_slug: str, login: str) -> IssuedCard:
    return cards.run_issue(stack.rt, org_slug=org_slug, login=login, layout=Layout(),
                           ttl_days=365, issuer="operator", actor="tenant isolation test")


def cell_at(card: IssuedCard, label: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label == label)


def gridcard_attempt(stack: Stack, api_key: str, login: str) -> dict[str, Any]:
    """A grid card attempt the organisation of ``api_key`` starts for its ``login``."""
    response = httpx.post(f"{stack.base_url}/v1/gridcard/attempts",
                          json={"login": login, "password": PASSWORD},
                          headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


def seed(stack: Stack) -> tuple[Bank, Rival]:
    rp, rival_rp, clock = stack.rp, stack.other.rp, stack.clock
    scene = {"content": f"to {BANK_CANARY}"}
    receiver = Receiver().start()
    stack.closers.append(receiver.stop)
    rp.set_webhook(receiver.url)

    # Grid cards first: the clock moves past the first attempt's window, and everything
    # seeded after starts at the new time.
    rp.create_user("dora", display_name=f"Dora {BANK_CANARY}", password=PASSWORD)
    rp.create_user("hugo", password=PASSWORD)
    doras_card = issue_card(stack, "bank", "dora")
    issue_card(stack, "bank", "hugo")
    late = gridcard_attempt(stack, stack.api_key, "hugo")
    clock.advance(late["window_seconds"] + 1)
    doras = gridcard_attempt(stack, stack.api_key, "dora")
    rival_rp.create_user("rita", password=PASSWORD)
    ritas_card = issue_card(stack, stack.other.slug, "rita")
    ritas = gridcard_attempt(stack, stack.other.api_key, "rita")
    gridcard = BankGridcard(
        serial=doras_card.record.serial, attempt=doras["attempt_id"],
        attempt_token=doras["answer_token"], attempt_code=doras["code"],
        late_attempt=late["attempt_id"], late_attempt_token=late["answer_token"],
        cell=cell_at(doras_card, ritas["position"]),
        alice_serial=issue_card(stack, "bank", "alice").record.serial)

    rp.create_user("erin")
    totp = pyotp.parse_uri(rp.setup_totp("dora")["uri"])
    alice_phone = stack.enrolled_phone("alice")
    assert alice_phone.device_id is not None
    pending, _ = stack.start("alice", **scene)
    by_totp, _ = stack.start("dora", verifier="totp", **scene)
    to_scan, _ = stack.start("alice", operation="login", **scene)
    scanned, _ = stack.start("alice", operation="password_change", **scene)
    alice_phone.scan_text(scanned["code"])

    keys = server_keys(stack)
    token = SoftToken.enrol(rp.enrol_token("alice")["code"], server_keys=keys, clock=clock)
    signed = rp.start_transaction("alice", demand=f"buy 10 {BANK_CANARY}")
    rp.submit_response(signed["transaction_id"], token.sign(signed["challenge_code"]))
    chain_code = Platform(stack).call(
        "GET", f"/v1/txsign/transactions/{signed['transaction_id']}")["chain_code"]
    pending_tx = rp.start_transaction("alice", demand=f"sell 5 {BANK_CANARY}")

    bank = Bank(
        org_name="Example Bank", only_login="dora", login_to_create="erin",
        pending_challenge=pending["challenge_id"], totp_challenge=by_totp["challenge_id"],
        totp_now=lambda: str(totp.at(int(clock()))), scanned_challenge=scanned["challenge_id"],
        scan_code=to_scan["code"], another_browser_token=to_scan["browser_token"],
        alice=Phone(alice_phone.device_id, alice_phone.private_key), token_id=token.token_id,
        signed_transaction=signed["transaction_id"],
        pending_transaction=pending_tx["transaction_id"],
        pending_answer=token.sign(pending_tx["challenge_code"]), chain_code=chain_code,
        confirm_code=rp.start_enrolment("alice")["confirm_code"],
        event_id=delivered_events(stack)[0],
        pending_offline_code=alice_phone.offline_code(pending["code"],
                                                      number=pending["number"]),
        gridcard=gridcard,
    )

    other = stack.other
    spare = other.enrolled_phone("carol", name="rival's spare")
    assert spare.device_id is not None
    started, _ = other.start("alice")
    # The rival's own history is not empty, so that its lists are read, not just empty.
    scanned_by_rival, _ = other.start("alice", operation="login")
    other.phone().scan_text(scanned_by_rival["code"])
    bob_token = SoftToken.enrol(rival_rp.enrol_token("bob")["code"], server_keys=keys,
                                clock=clock)
    rival_tx = rival_rp.start_transaction("bob", demand="rival's own order")
    rival = Rival(
        api_key=other.api_key, alice=Phone(other.alice_device_id, other.alice_device_key),
        spare=Phone(spare.device_id, spare.private_key), challenge=started["challenge_id"],
        browser_token=started["browser_token"], transaction=rival_tx["transaction_id"],
        token_id=bob_token.token_id, business_id=other.business_id,
        new_enrolment=lambda: other.rp.start_enrolment("alice"),
        org_slug=other.slug, gridcard_login="rita", attempt=ritas["attempt_id"],
        attempt_token=ritas["answer_token"], cell=cell_at(ritas_card, ritas["position"]),
    )
    return bank, rival


def delivered_events(stack: Stack) -> list[str]:
    """The bank's webhook events, once every one was delivered: their rows then stay as
    they are, so the walk's end can tell whether the rival moved one."""
    def settled() -> bool:
        deliveries = stack.rp.webhook_deliveries(limit=200)
        return bool(deliveries) and {d["state"] for d in deliveries} == {"delivered"}

    wait_until(settled, what="the bank's webhook events delivered")
    return [d["event_id"] for d in stack.rp.webhook_deliveries(limit=200)]


def bank_value(bank: Bank, kind: SlotKind, label: Label) -> str:
    """The bank's thing for this slot, in the state in which the bank's own call succeeds."""
    if kind is CHALLENGE:
        return {"POST /v1/confirm/challenges/{challenge_id}/otp": bank.totp_challenge,
                "POST /v1/confirm/challenges/{challenge_id}/decision": bank.scanned_challenge,
                }.get(label, bank.pending_challenge)
    if kind is TRANSACTION:
        waiting = label.endswith(("/response", "/challenge.png", "/challenge.svg"))
        return bank.pending_transaction if waiting else bank.signed_transaction
    if kind is LOGIN:
        return bank.login_to_create if label == "POST /v1/users" else bank.only_login
    if kind is ATTEMPT:
        return (bank.gridcard.late_attempt if label.endswith("/reissue")
                else bank.gridcard.attempt)
    return {TOKEN: bank.token_id, DEVICE: bank.alice.device_id, BUSINESS: bank.business_id,
            PARENT: bank.chain_code, SCANNED: bank.scan_code, PASSWORD_SLOT: PASSWORD,
            CONFIRM_CODE: bank.confirm_code, EVENT: bank.event_id,
            SIGN_IN: bank.only_login, CARD: format_serial(bank.gridcard.serial),
            JOIN_CODE: bank.gridcard.attempt_code, CELL: bank.gridcard.cell}[kind]


def other_bank_attempt_token(bank: Bank, attempt_id: str) -> str:
    """The answer token of another of the bank's attempts than ``attempt_id``."""
    gridcard = bank.gridcard
    return (gridcard.late_attempt_token if attempt_id == gridcard.attempt
            else gridcard.attempt_token)


def unknown_value(stack: Stack, bank: Bank, kind: SlotKind) -> str:
    """A thing of the same shape that exists nowhere."""
    if kind in (CHALLENGE, TRANSACTION, TOKEN, DEVICE, EVENT, ATTEMPT):
        return secrets.token_hex(16)
    if kind in (LOGIN, SIGN_IN):
        return f"nobody{secrets.token_hex(4)}"
    if kind is CARD:
        return format_serial(never_drawn_serial(stack))
    if kind is CELL:
        # Well-formed, of a card never drawn, at the position the rival's attempt asks.
        position = parse_cell(bank.gridcard.cell).position.label
        secret = "".join(secrets.choice(CROCKFORD) for _ in range(SECRET_LENGTH))
        return f"QGA1:{never_drawn_serial(stack)}:{position}:{secret}"
    if kind is BUSINESS:
        return f"nowhere{secrets.token_hex(4)}"
    if kind is SCANNED:
        return never_stored_challenge_code(stack, bank.scan_code)
    if kind is PARENT:
        return never_stored_chain_code(stack, bank.chain_code)
    if kind is PASSWORD_SLOT:
        return "nobody's password"
    if kind is CONFIRM_CODE:
        code = bank.confirm_code
        while code == bank.confirm_code:
            code = f"{secrets.randbelow(10**8):08d}"
        return code
    raise AssertionError(f"no unknown value for {kind.name}")


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def never_drawn_serial(stack: Stack) -> str:
    """A well-formed card serial (check symbol and all) that no card of any organisation has."""
    with stack.rt.read() as conn:
        taken = set(conn.execute(select(gridcards.c.serial)).scalars())
    while (serial := serial_from_random(os.urandom(SERIAL_RANDOM_BYTES))) in taken:
        pass
    return serial


def never_stored_challenge_code(stack: Stack, code_text: str) -> str:
    """The same confirmation code, signed by this server, for a challenge it never stored."""
    code = read_code(code_text, keys=stack.rt.keyring.verifier, now=stack.clock())
    view = ChallengeView(
        challenge_id=os.urandom(16), state=ConfirmState.PENDING, org_id=code.org_id,
        user_id=0, business_id=code.business_id, login=code.login, operation=code.operation,
        amount=code.amount, url=code.url, number=None, verification_code=os.urandom(8),
        device_id=None, expires_at=code.expires_at, verifier=VerifierKind.QR)
    return issue_code(challenge=view, number_matching=code.number_matching, issuer=code.issuer,
                      now=code.issued_at, ttl=code.expires_at - code.issued_at,
                      keyring=stack.rt.keyring)


def never_stored_chain_code(stack: Stack, chain_text: str) -> str:
    """The same chain, signed by this server, whose last link is a transaction it never
    stored."""
    chain = read_chain_code(chain_text, keys=stack.rt.keyring.verifier, now=stack.clock())
    links = [*chain.links[:-1], replace(chain.last, transaction_id=os.urandom(16))]
    return issue_chain_code(links=links, issuer=chain.issuer, now=chain.issued_at,
                            keyring=stack.rt.keyring, fits=lambda _: True)


def rival_value(rival: Rival, kind: SlotKind, label: Label) -> str | None:
    """The rival's own thing, for a slot not under probe."""
    if kind is LOGIN:
        # Its bob holds the active token a transaction needs; its alice the bound phone.
        return "bob" if label == "POST /v1/txsign/transactions" else "alice"
    return {CHALLENGE: rival.challenge, TRANSACTION: rival.transaction, TOKEN: rival.token_id,
            DEVICE: rival.alice.device_id, BUSINESS: rival.business_id,
            SIGN_IN: rival.gridcard_login, ATTEMPT: rival.attempt, CELL: rival.cell}.get(kind)


def body_fields(bank: Bank, rival: Rival, label: Label, *,
                new_key: ec.EllipticCurvePrivateKey | None) -> dict[str, Callable[[], Any]]:
    """Values for required body fields that are not slots, the one a missing check would
    accept where there is one (the bank's one-time password, its OCRA answer)."""
    fields: dict[str, Callable[[], Any]] = {
        "scene": lambda: {"operation": "transfer", "content": "probe"},
        "demand": lambda: "probe",
        "otp": bank.totp_now,
        "decision": lambda: "approve",
        "preferred_verifier": lambda: "qr",
        "response": lambda: bank.pending_answer,
        "questions": lambda: ["0" * 64, "1" * 64],
        "responses": lambda: ["00000000", "00000001"],
        "url": lambda: "https://hooks.rival.invalid/qrgate",
        # App lock (/v1/devices/me/lock): the rival's phone locks itself, naming nothing.
        "key": lambda: "A" * 43,
        "unlock": lambda: {"method": "pin", "proof": "A" * 43},
        "credential": lambda: {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {
            "clientDataJSON": "e30", "attestationObject": "oA"}},
        # A grid card start: the password the bank's users have; the app alone names the
        # rival's own organisation (see "Public by design").
        "password": lambda: PASSWORD,
        "organisation": lambda: rival.org_slug,
    }
    if new_key is not None:
        fields["public_key"] = lambda: encoded_public_key(new_key)
    codes = {
        "POST /v1/devices": lambda: rival.new_enrolment()["code"],
        "POST /v1/txsign/verify": lambda: bank.chain_code,
        "POST /v1/confirm/challenges/{challenge_id}/offline-code":
            lambda: bank.pending_offline_code,
    }
    if label in codes:
        fields["code"] = codes[label]
    return fields


# --- the walk -------------------------------------------------------------------------------


@dataclass
class Operation:
    label: Label
    callers: list[Caller]
    slots: list[Slot]
    required: list[str]
    problems: list[str]

    @property
    def method(self) -> str:
        return self.label.split(" ", 1)[0]

    @property
    def template(self) -> str:
        return self.label.split(" ", 1)[1]


def operations_of(document: dict[str, Any], fields: Callable[[Label], dict[str, Any]]
                  ) -> Iterator[Operation]:
    """``fields``: the values the walk has for an operation's body fields."""
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, spec in item.items():
            label = f"{method.upper()} {path}"
            slots, problems = [], []
            for parameter in spec.get("parameters", []):
                known = {"path": PATH_SLOTS, "query": QUERY_SLOTS}.get(parameter["in"], {})
                if parameter["name"] in known:
                    slots.append(Slot(parameter["in"], parameter["name"],
                                      known[parameter["name"]]))
                elif parameter["in"] == "path" or parameter["name"].endswith("_id"):
                    problems.append(f"{parameter['in']} parameter {parameter['name']!r} names "
                                    "something the walk has no slot for")
            body = spec.get("requestBody", {}).get("content", {}).get("application/json")
            required: list[str] = []
            if body is not None:
                schema = schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]
                required = [*schema.get("required", []), *ONE_OF_REQUIRED.get(label, [])]
                by_name = {**BODY_SLOTS, **OPERATION_BODY_SLOTS.get(label, {})}
                for name in schema["properties"]:
                    if name in by_name:
                        slots.append(Slot("body", name, by_name[name]))
                    elif (name.endswith(("_id", "_code")) or name == "code") and (
                            name not in NOT_SLOTS and name not in fields(label)):
                        problems.append(f"body field {name!r} looks like an id: say in "
                                        "BODY_SLOTS, NOT_SLOTS or body_fields what it names")
            yield Operation(label, callers_of(label, spec.get("security", [])), slots,
                            required, problems)


@dataclass
class Walk:
    stack: Stack
    bank: Bank
    rival: Rival
    client: Client
    findings: list[str] = field(default_factory=list)
    sent: Counter[Label] = field(default_factory=Counter)

    def fail(self, where: str, message: str) -> None:
        self.findings.append(f"{where}: {message}")

    # --- building requests --------------------------------------------------------------

    def request(self, operation: Operation, values: dict[Slot, str]) -> Request | None:
        """The operation's request with ``values`` in their slots, the rival's own things in
        the other slots the request must fill, and the required body fields."""
        new_key = ec.generate_private_key(ec.SECP256R1())
        path, query, body = operation.template, {}, {}
        fillers = body_fields(self.bank, self.rival, operation.label, new_key=new_key)
        for slot in operation.slots:
            value = values.get(slot)
            if value is None and (slot.where == "path" or slot.name in operation.required):
                value = rival_value(self.rival, slot.kind, operation.label)
                if value is None:
                    self.fail(operation.label, f"the rival has no {slot.kind.name} for {slot}: "
                                               "add one to rival_value")
                    return None
            if value is None:
                continue
            if slot.where == "path":
                path = path.replace("{" + slot.name + "}", value)
            else:
                (query if slot.where == "query" else body)[slot.name] = value
        for name in operation.required:
            if name in body:
                continue
            if name not in fillers:
                self.fail(operation.label, f"required body field {name!r} has no value: add "
                                           "one to body_fields")
                return None
            body[name] = fillers[name]()
        has_body = any(s.where == "body" for s in operation.slots) or operation.required
        return Request(operation.method, path, query, body if has_body else None,
                       new_device_key=new_key if "public_key" in body else None)

    def send(self, operation: Operation, caller: Caller, request: Request, *,
             browser_token: str | None = None, attempt_token: str | None = None) -> Answer:
        self.sent[operation.label] += 1
        if caller is Caller.API_KEY:
            return self.client.send(request, api_key=self.rival.api_key)
        if caller is Caller.DEVICE:
            phone = (self.rival.spare if operation.label == "DELETE /v1/devices/me"
                     else self.rival.alice)
            return self.client.send(request, phone=phone)
        if caller is Caller.NEW_DEVICE:
            assert request.new_device_key is not None
            return self.client.send(request, phone=Phone("new", request.new_device_key))
        if caller is Caller.BROWSER:
            return self.client.send(request, browser_token=browser_token or
                                    self.rival.browser_token)
        if caller is Caller.ATTEMPT:
            return self.client.send(request, attempt_token=attempt_token or
                                    self.rival.attempt_token)
        return self.client.send(request)

    # --- checks ---------------------------------------------------------------------------

    def leaks(self, where: str, request: Request, answer: Answer) -> None:
        for canary in self.bank.canaries():
            if canary in answer.text and not request.carries(canary):
                self.fail(where, f"the answer ({answer}) carries the bank's {canary!r}")

    def walk(self, operation: Operation) -> None:
        for problem in operation.problems:
            self.fail(operation.label, problem)
        for caller in operation.callers:
            if caller is Caller.PUBLIC:
                self.public(operation)
            elif caller not in (Caller.BROWSER, Caller.ATTEMPT) and all(
                    slot.where != "path" and slot.name not in operation.required
                    for slot in operation.slots):
                self.without_slot(operation, caller)
            for slot in operation.slots:
                if caller is Caller.BROWSER:
                    self.browser_probe(operation, slot)
                elif caller is Caller.ATTEMPT and slot.kind is ATTEMPT:
                    self.attempt_probe(operation, slot)
                elif caller is not Caller.PUBLIC:
                    self.probe(operation, caller, slot)

    def probe(self, operation: Operation, caller: Caller, slot: Slot) -> None:
        where = f"{operation.label} as the rival ({caller}), {slot}"
        bank_thing = bank_value(self.bank, slot.kind, operation.label)
        unknown = unknown_value(self.stack, self.bank, slot.kind)
        answers = []
        for value in (unknown, bank_thing):
            request = self.request(operation, {slot: value})
            if request is None:
                return
            answers.append(answer := self.send(operation, caller, request))
            self.leaks(where, request, answer)
        unknown_answer, bank_answer = answers
        accepted = ACCEPTED_UNKNOWN.get((operation.label, slot.kind))
        expected = (accepted, None) if accepted else (unknown_answer.status, slot.kind.refusal)
        if unknown_answer.verdict != expected:
            self.fail(where, f"a {slot.kind.name} that exists nowhere got {unknown_answer}, "
                             f"expected {expected[0]} {expected[1] or ''}: the probe does not "
                             "reach the lookup it tests")
        same = bank_answer.verdict == unknown_answer.verdict and (
            accepted != 200 or bank_answer.text == unknown_answer.text)
        if not same:
            self.fail(where, f"the bank's {slot.kind.name} got {bank_answer}, one that exists "
                             f"nowhere got {unknown_answer}")

    def browser_probe(self, operation: Operation, slot: Slot) -> None:
        where = f"{operation.label} as the rival's browser, {slot}"
        request = self.request(operation, {slot: bank_value(self.bank, slot.kind,
                                                             operation.label)})
        assert request is not None
        rival = self.send(operation, Caller.BROWSER, request)
        bank_stranger = self.send(operation, Caller.BROWSER, request,
                                  browser_token=self.bank.another_browser_token)
        self.leaks(where, request, rival)
        if bank_stranger.verdict != (403, "wrong_browser"):
            self.fail(where, f"a token of another of the bank's challenges got {bank_stranger},"
                             " expected 403 wrong_browser")
        if rival.verdict != bank_stranger.verdict:
            self.fail(where, f"the rival's token got {rival}, a token of another of the bank's "
                             f"challenges got {bank_stranger}")

    def attempt_probe(self, operation: Operation, slot: Slot) -> None:
        """The rival's answer token on the bank's attempt: refused exactly as the token of
        another of the bank's own attempts is."""
        where = f"{operation.label} as the rival's attempt token holder, {slot}"
        attempt_id = bank_value(self.bank, slot.kind, operation.label)
        request = self.request(operation, {slot: attempt_id})
        assert request is not None
        rival = self.send(operation, Caller.ATTEMPT, request)
        bank_stranger = self.send(operation, Caller.ATTEMPT, request,
                                  attempt_token=other_bank_attempt_token(self.bank, attempt_id))
        self.leaks(where, request, rival)
        if bank_stranger.verdict != (403, "wrong_attempt_token"):
            self.fail(where, f"a token of another of the bank's attempts got {bank_stranger}, "
                             "expected 403 wrong_attempt_token")
        if rival.verdict != bank_stranger.verdict:
            self.fail(where, f"the rival's token got {rival}, a token of another of the bank's "
                             f"attempts got {bank_stranger}")

    def public(self, operation: Operation) -> None:
        values = {slot: bank_value(self.bank, slot.kind, operation.label)
                  for slot in operation.slots}
        request = self.request(operation, values)
        if request is None:
            return
        anonymous = self.send(operation, Caller.PUBLIC, request)
        with_key = self.send(operation, Caller.API_KEY, request)
        if (with_key.status, with_key.text) != (anonymous.status, anonymous.text):
            self.fail(f"{operation.label} (public)",
                      f"with the rival's API key {with_key}, without {anonymous}")
        if operation.label == "GET /v1/txsign/transactions/{transaction_id}/text":
            self.unsigned_text_is_unknown(operation)

    def unsigned_text_is_unknown(self, operation: Operation) -> None:
        pending, unknown = (
            self.client.send(Request("GET", operation.template.format(transaction_id=value)))
            for value in (self.bank.pending_transaction, secrets.token_hex(16)))
        if pending.verdict != unknown.verdict or unknown.code != "transaction_not_found":
            self.fail(f"{operation.label} (public)",
                      f"a pending transaction got {pending}, an unknown id {unknown}")

    def without_slot(self, operation: Operation, caller: Caller) -> None:
        request = self.request(operation, {})
        if request is None:
            return
        answer = self.send(operation, caller, request)
        where = f"{operation.label} as the rival ({caller})"
        if answer.status >= 500:
            self.fail(where, f"got {answer}")
        self.leaks(where, request, answer)


# --- the namesakes --------------------------------------------------------------------------


def namesakes(walk: Walk) -> None:
    """Both organisations have an alice: the rival acts on its own."""
    stack, bank, other, fail = walk.stack, walk.bank, walk.stack.other, walk.fail

    def as_rival(method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        return walk.client.send(Request(method, path, body=body), api_key=other.api_key)

    if json.loads(as_rival("GET", "/v1/users/alice").text)["has_password"]:
        fail("GET /v1/users/alice as the rival", "shows the bank's alice (with a password)")
    other.rp.setup_totp("alice")
    other.rp.set_preferred_verifier("alice", "totp")
    rival_alice = json.loads(as_rival("GET", "/v1/users/alice").text)
    if not rival_alice["has_totp"] or rival_alice["preferred_verifier"] != "totp":
        fail("POST /v1/users/alice/totp, PUT .../preferences as the rival",
             f"did not reach the rival's alice: {rival_alice}")

    # The walk offered the bank's alice's password to such an enrolment; its own
    # confirmation code binds the phone, to the rival's alice.
    newcomer = other.enrolled_phone("alice", name="rival's new phone")
    listed = {device["device_id"] for device in other.rp.list_devices("alice")}
    if newcomer.device_id not in listed:
        fail("POST /v1/devices with the rival's enrolment for alice",
             "the phone is not among the rival's alice's devices")

    token = as_rival("POST", "/v1/txsign/tokens", {"login": "alice"})
    if token.status != 201:
        fail("POST /v1/txsign/tokens as the rival for alice",
             f"got {token} (the bank's alice holds an active token, the rival's none)")
    transaction = as_rival("POST", "/v1/txsign/transactions",
                           {"account": "alice", "demand": "namesake"})
    if transaction.verdict != (404, "no_token"):
        fail("POST /v1/txsign/transactions as the rival for alice",
             f"got {transaction}: the rival's alice has no active token, and the bank's "
             "alice's is not hers")

    # A challenge the rival starts for alice: the bank's alice's phone is refused as for a
    # challenge never stored, and the rival's alice's phone still scans and approves it.
    started, _ = other.start("alice", operation="login", verifier="qr")
    foreign, unknown = (
        walk.client.send(Request("POST", "/v1/confirm/scan", body={"code": code}),
                         phone=bank.alice)
        for code in (started["code"], never_stored_challenge_code(stack, started["code"])))
    if foreign.verdict != unknown.verdict or unknown.code != "challenge_not_found":
        fail("POST /v1/confirm/scan by the bank's alice of the rival's challenge for alice",
             f"got {foreign}, a challenge never stored got {unknown}")
    own = other.phone()
    own.scan_text(started["code"])
    if own.decide(started["challenge_id"], approve=True)["state"] != "approved":
        fail("the rival's alice's phone", "could not approve the rival's own challenge")

    # A grid card the rival issues for alice is its alice's: the bank's alice keeps hers
    # (issuing revokes the user's previous card; the bank's rows are checked after the walk).
    issued = walk.client.http.post("/v1/gridcard/cards", json={"login": "alice"},
                                   headers={"Authorization": f"Bearer {other.api_key}"})
    to_list = Request("GET", "/v1/gridcard/cards", {"login": "alice"})
    cards_listed = walk.client.send(to_list, api_key=other.api_key)
    serials = [card["serial"] for card in json.loads(cards_listed.text)["items"]]
    if issued.status_code != 201 or serials != [issued.headers["qrgate-card-serial"]]:
        fail("POST /v1/gridcard/cards as the rival for alice, then GET .../cards?login=alice",
             f"issued {issued.status_code}, the rival's alice's cards are {serials}")
    walk.leaks("GET /v1/gridcard/cards?login=alice as the rival", to_list, cards_listed)


# --- the bank's rows ------------------------------------------------------------------------


def bank_rows(stack: Stack, org_id: int) -> dict[str, list[dict[str, Any]]]:
    own_users = select(users.c.id).where(users.c.org_id == org_id)
    own_cards = select(gridcards.c.id).where(gridcards.c.org_id == org_id)
    queries = {
        "users": select(users).where(users.c.org_id == org_id).order_by(users.c.id),
        "challenges": select(challenges).where(challenges.c.org_id == org_id)
        .order_by(challenges.c.id),
        "transactions": select(transactions).where(transactions.c.org_id == org_id)
        .order_by(transactions.c.id),
        "tokens": select(tokens).where(tokens.c.org_id == org_id).order_by(tokens.c.id),
        "devices": select(devices).where(devices.c.user_id.in_(own_users))
        .order_by(devices.c.id),
        "enrolments": select(enrolments).where(enrolments.c.user_id.in_(own_users))
        .order_by(enrolments.c.id),
        "webhooks": select(webhooks).where(webhooks.c.org_id == org_id),
        "webhook_events": select(webhook_events).where(webhook_events.c.org_id == org_id)
        .order_by(webhook_events.c.id),
        "gridcards": select(gridcards).where(gridcards.c.org_id == org_id)
        .order_by(gridcards.c.id),
        "gridcard_cells": select(gridcard_cells).where(gridcard_cells.c.card_id.in_(own_cards))
        .order_by(gridcard_cells.c.card_id, gridcard_cells.c.position),
        "gridcard_attempts": select(gridcard_attempts)
        .where(gridcard_attempts.c.org_id == org_id).order_by(gridcard_attempts.c.id),
    }
    with stack.rt.read() as conn:
        return {table: [dict(row._mapping) for row in conn.execute(query)]
                for table, query in queries.items()}


def clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def changed_rows(before: dict[str, list[dict[str, Any]]],
                 after: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    for table, rows in before.items():
        if len(after[table]) != len(rows):
            yield f"{table}: {len(rows)} rows before, {len(after[table])} after"
            continue
        for old, new in zip(rows, after[table], strict=True):
            moved = [f"{column} {clip(old[column])} -> {clip(new[column])}" for column in old
                     if old[column] != new[column]]
            if moved:
                name = old.get("id", f"{old.get('card_id')} {old.get('position')}")
                yield f"{table} row {name}: {', '.join(moved)}"


# --- the test -------------------------------------------------------------------------------


def test_the_rival_reaches_nothing_of_the_bank(stack: Stack) -> None:
    bank, rival = seed(stack)
    client = Client(stack.base_url, stack.clock)
    stack.closers.append(client.close)
    document = httpx.get(f"{stack.base_url}/openapi.json").json()
    with stack.rt.read() as conn:
        bank_org = directory.org_id_by_slug(conn, "bank")
    before = bank_rows(stack, bank_org)

    walk = Walk(stack, bank, rival, client)
    walked = []
    fields = functools.partial(body_fields, bank, rival, new_key=None)
    for operation in operations_of(document, fields):
        walk.walk(operation)
        walked.append(operation.label)
    namesakes(walk)
    walk.findings.extend(f"the bank's rows moved: {change}"
                         for change in changed_rows(before, bank_rows(stack, bank_org)))

    walk.findings.extend(f"{label}: never called" for label in walked if not walk.sent[label])
    if walk.findings:
        pytest.fail(f"{len(walk.findings)} findings over {len(walked)} operations:\n"
                    + "\n".join(walk.findings), pytrace=False)
