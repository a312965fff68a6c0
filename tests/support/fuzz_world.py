"""A small qrgate world for the fuzzer to find its way around: real ids, codes and answers.

Random ids only ever reach "not found". So before fuzzing, the relying party, a phone, a
browser, an OCRA token and printed grid cards do the README's walk-throughs against the
running stack, and what they leave behind (challenges in several states, a bound device,
enrolment codes, tokens, transactions pending and signed, grid card attempts and cells,
their codes and correct answers) is offered to the fuzzer as schemathesis dictionaries.
Schemathesis mixes those values into the data it generates, and only into positive cases
(a dictionary value that the schema would reject is used only for negative ones), so real
values reach the handlers while every other case stays as random as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.core import ocra
from qrgate.core.gridcard import Layout, format_serial
from qrgate.core.keyring import PublicKeySet
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.txsign.tokens import DEFAULT_SUITE, activation_question, read_enrolment_code
from support.fuzz_callers import Credentials, encoded_public_key
from support.stack import PASSWORD, Stack
from support.txsign import Platform, server_keys

LOGINS = ("alice", "bob", "carol")
# The business id of the stack's one application (``support.stack``); scheme E's platform.
BUSINESS_ID = "web"
# Fresh device keys offered for enrolment; more than the enrolment codes, so that some
# enrolments fail on a used code rather than all on an unknown key.
NEW_DEVICE_KEYS = 6


@dataclass(frozen=True)
class World:
    stack: Stack
    credentials: Credentials
    # schemathesis dictionary name -> values; ``BINDINGS`` says where each goes.
    dictionaries: dict[str, list[str]]

    def replace_unbound(self, device_id: str) -> None:
        """Bind a new phone in place of one of the harness's devices that the fuzzer has
        just unbound (the relying party may unbind any device, the phone itself too), so
        device requests keep reaching their handlers instead of ending in 401s."""
        credentials = self.credentials
        if device_id not in (credentials.device_id, credentials.spare_device_id):
            return
        try:
            phone = self.stack.enrolled_phone("alice" if device_id == credentials.device_id
                                              else "bob")
        except ApiError:
            # The fuzzer may have left the user unable to enrol (frozen, say); the outcome
            # table of the summary then shows the device requests failing.
            return
        assert phone.device_id is not None
        if device_id == credentials.device_id:
            credentials.device_id, credentials.device_key = phone.device_id, phone.private_key
        else:
            credentials.spare_device_id = phone.device_id
            credentials.spare_device_key = phone.private_key


# Where each dictionary goes (schemathesis ``[parameters]`` bindings) and how often a real
# value replaces a generated one. Ids are used more often than body fields: without a real
# id nothing behind the lookup is reached at all.
BINDINGS: dict[str, tuple[str, float]] = {
    "path.challenge_id": ("challenge_ids", 0.7),
    "path.transaction_id": ("transaction_ids", 0.7),
    "path.token_id": ("token_ids", 0.7),
    "path.device_id": ("device_ids", 0.5),
    "path.login": ("logins", 0.7),
    "query.login": ("logins", 0.3),
    "body.login": ("logins", 0.5),
    "body.account": ("logins", 0.5),
    "body.business_id": ("business_ids", 0.5),
    "body.platform": ("business_ids", 0.5),
    "body.suite": ("ocra_suites", 0.5),
    "body.code": ("codes", 0.6),
    "body.parent_code": ("chain_codes", 0.5),
    "body.public_key": ("new_device_public_keys", 0.7),
    "body.password": ("passwords", 0.5),
    "body.confirm_code": ("confirm_codes", 0.5),
    "body.otp": ("otps", 0.5),
    "body.response": ("ocra_responses", 0.5),
    "body.token_id": ("token_ids", 0.5),
    "path.event_id": ("event_ids", 0.7),
    "body.url": ("webhook_urls", 0.5),
    "path.attempt_id": ("attempt_ids", 0.7),
    "path.serial": ("card_serials", 0.7),
    "body.organisation": ("org_slugs", 0.7),
    "body.cell": ("cells", 0.6),
}


# Bindings of one operation, replacing the global ones for the same parameter.
OPERATION_BINDINGS: dict[str, dict[str, tuple[str, float]]] = {
    "POST /v1/confirm/scan": {"body.code": ("scan_codes", 0.6)},
    "POST /v1/confirm/challenges/{challenge_id}/decision": {
        "path.challenge_id": ("decision_challenge_ids", 0.7)},
    "POST /v1/gridcard/scan": {"body.code": ("gridcard_codes", 0.6)},
    "POST /v1/gridcard/attempts/{attempt_id}/cancel": {
        "path.attempt_id": ("cancel_attempt_ids", 0.7)},
}


# Where the bank's webhook points: a name that never resolves (RFC 6761), so its events
# stay pending, each with one failed attempt, whatever the fuzzer does with them.
WEBHOOK_URL = "https://hooks.bank.invalid/qrgate"


def build_world(stack: Stack) -> World:
    rp, clock = stack.rp, stack.clock
    rp.set_webhook(WEBHOOK_URL)
    # First, as it moves the clock on: everything seeded after it starts at the new time.
    gridcard = seed_gridcard(stack)

    # Bound phones (alice's, and bob's spare that unbinds itself), and challenges in
    # several states, each with its browser token. Scanning and deciding get challenges of
    # their own (see OPERATION_BINDINGS): in the shared pool the fuzzer cancels, rotates or
    # decides them long before those operations' turn comes.
    phone = stack.enrolled_phone("alice")
    spare = stack.enrolled_phone("bob", name="spare")
    assert phone.device_id is not None and spare.device_id is not None
    pending, _ = stack.start("alice")
    cancelled, _ = stack.start("alice", operation="password_change")
    rp.cancel(cancelled["challenge_id"])
    totp = pyotp.parse_uri(rp.setup_totp("bob")["uri"])
    by_totp, _ = stack.start("bob", verifier="totp")
    to_scan = [stack.start("alice", amount=amount)[0] for amount in ("7.50", "12.00")]
    to_decide = [stack.start("alice", operation="login")[0] for _ in range(2)]
    for challenge in to_decide:
        phone.scan_text(challenge["code"])
    challenges = (pending, cancelled, by_totp, *to_scan, *to_decide)

    # Enrolment codes for phones still to come, and keys the harness can sign with.
    enrolments = [rp.start_enrolment(login) for login in ("bob", "carol", "carol")]
    new_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(NEW_DEVICE_KEYS)]

    # Scheme E: alice's active token, a pending and a signed transaction; bob's token
    # enrolled but not activated yet, with the answer that would activate it.
    platform = Platform(stack)
    keys = server_keys(stack)
    token_code = rp.enrol_token("alice")["code"]
    token = SoftToken.enrol(token_code, server_keys=keys, clock=clock)
    signed = rp.start_transaction("alice", platform=BUSINESS_ID, demand="buy 10 ACME",
                                  comment="pension")
    rp.submit_response(signed["transaction_id"], token.sign(signed["challenge_code"]))
    chain_code = platform.call("GET", f"/v1/txsign/transactions/{signed['transaction_id']}")[
        "chain_code"]
    pending_tx = rp.start_transaction("alice", platform=BUSINESS_ID, demand="sell 5 ACME")
    pending_tx_answer = token.sign(pending_tx["challenge_code"])
    dormant = rp.enrol_token("bob")
    dormant_answer = _activation_answer(dormant["code"], keys=keys, now=clock())

    credentials = Credentials(
        api_key=stack.api_key, device_id=phone.device_id, device_key=phone.private_key,
        spare_device_id=spare.device_id, spare_device_key=spare.private_key, clock=clock,
        browser_tokens={c["challenge_id"]: c["browser_token"] for c in challenges},
        new_device_keys={encoded_public_key(key): key for key in new_keys},
        attempt_tokens=dict(gridcard.tokens),
    )
    dictionaries = {
        "challenge_ids": [c["challenge_id"] for c in (pending, cancelled, by_totp)],
        "decision_challenge_ids": [c["challenge_id"] for c in to_decide],
        "scan_codes": [c["code"] for c in to_scan],
        "transaction_ids": [signed["transaction_id"], pending_tx["transaction_id"]],
        "token_ids": [token.token_id, dormant["token_id"]],
        "device_ids": [phone.device_id, spare.device_id],
        "logins": list(LOGINS),
        "business_ids": [BUSINESS_ID],
        "ocra_suites": [DEFAULT_SUITE, "OCRA-1:HOTP-SHA256-8:QH64-T1M"],
        "codes": [pending["code"], chain_code, pending_tx["challenge_code"],
                  *(e["code"] for e in enrolments)],
        "chain_codes": [chain_code],
        "new_device_public_keys": list(credentials.new_device_keys),
        "passwords": [PASSWORD],
        "confirm_codes": [e["confirm_code"] for e in enrolments],
        "otps": [totp.at(int(clock()))],
        "ocra_responses": [pending_tx_answer, dormant_answer],
        "event_ids": [d["event_id"] for d in rp.webhook_deliveries()],
        "webhook_urls": [WEBHOOK_URL, "https://hooks.bank.invalid/v2?tenant=7"],
        **gridcard.dictionaries,
    }
    return World(stack=stack, credentials=credentials, dictionaries=dictionaries)


# Scheme A: users of the bank with a password and a card of their own, each holding one
# seeded attempt. Not in LOGINS, so the fuzzer's own sign-ins (alice's and bob's, who have
# cards too) do not supersede these attempts: one card, one pending attempt at a time.
LATE, TO_ANSWER, TO_SCAN, TO_CANCEL = "dave", "erin", "frank", "gina"


@dataclass(frozen=True)
class GridcardSeed:
    # attempt id -> answer token
    tokens: dict[str, str]
    dictionaries: dict[str, list[str]]


def seed_gridcard(stack: Stack) -> GridcardSeed:
    """Grid cards for alice, bob and carol (alice and bob have the password the fuzzer
    knows, so its sign-ins succeed), and four users with an attempt each: ``LATE``'s,
    started by the relying party and past its position's window (the clock moves on here),
    so that reissue succeeds once and answers are late; ``TO_ANSWER``'s, started in the app
    alone, with the right cell among the cells offered; ``TO_SCAN``'s, started by the
    relying party, whose code the scan gets; ``TO_CANCEL``'s, for cancel alone (in the
    shared pool it would end the others long before their operations' turn)."""
    def issue(login: str) -> IssuedCard:
        return cards.run_issue(stack.rt, org_slug="bank", login=login, layout=Layout(),
                               ttl_days=365, issuer="operator", actor="fuzz world")

    known = {login: issue(login) for login in LOGINS}
    for login in (LATE, TO_ANSWER, TO_SCAN, TO_CANCEL):
        stack.rp.create_user(login, password=PASSWORD)
    held = {login: issue(login) for login in (LATE, TO_ANSWER, TO_SCAN, TO_CANCEL)}
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        def started(login: str, *, by_relying_party: bool) -> dict[str, Any]:
            credentials = {"password": PASSWORD, "login": login}
            response = (http.post("/v1/gridcard/attempts", json=credentials,
                                  headers={"Authorization": f"Bearer {stack.api_key}"})
                        if by_relying_party else
                        http.post("/v1/gridcard/sign-in",
                                  json={"organisation": "bank", **credentials}))
            assert response.status_code == 201, response.text
            body: dict[str, Any] = response.json()
            return body

        late = started(LATE, by_relying_party=True)
        stack.clock.advance(late["window_seconds"] + 1)
        to_answer = started(TO_ANSWER, by_relying_party=False)
        to_scan = started(TO_SCAN, by_relying_party=True)
        to_cancel = started(TO_CANCEL, by_relying_party=False)
    answering = held[TO_ANSWER]
    asked = to_answer["position"]
    right = _cell(answering, asked)
    elsewhere = next(c for c in answering.card.cells if c.position.label != asked)
    serial = answering.record.serial
    attempts = (late, to_answer, to_scan, to_cancel)
    return GridcardSeed(
        tokens={a["attempt_id"]: a["answer_token"] for a in attempts},
        dictionaries={
            "attempt_ids": [a["attempt_id"] for a in (late, to_answer, to_scan)],
            "cancel_attempt_ids": [to_cancel["attempt_id"]],
            "gridcard_codes": [to_scan["code"], late["code"]],
            # The right one, one of the same card at another position (wrong_cell), one of
            # another card (wrong_card) and a forgery of the right one (bad_signature).
            "cells": [right, elsewhere.content, _cell(known["alice"], asked),
                      f"QGA1:{serial}:{asked}:{'0' * 24}"],
            # Carol has no password: revoking her card takes nothing from the sign-ins. As
            # printed and as typed without the dash.
            "card_serials": [format_serial(known["carol"].record.serial),
                             known["carol"].record.serial],
            "org_slugs": ["bank", stack.other.slug],
        })


def _cell(card: IssuedCard, label: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label == label)


def _activation_answer(code: str, *, keys: PublicKeySet, now: float) -> str:
    """What the phone would answer to activate the token of this enrolment code."""
    enrolment = read_enrolment_code(code, keys=keys, now=now)
    suite = ocra.parse_suite(enrolment.suite)
    return ocra.respond(
        suite=suite, key=enrolment.secret, question=activation_question(enrolment.token_id),
        counter=enrolment.counter if suite.uses_counter else None,
        time_step=int(now) // suite.time_step if suite.time_step else None,
    )


# Mixed into every string parameter now and then. Random generation almost never produces
# these, and each has broken a server somewhere: NUL (PostgreSQL text cannot hold it),
# percent-escapes and dot segments that a path handler might decode twice, quotes for
# injection, markup, a right-to-left override that disguises what a user approves, and
# over-long values for columns of bounded size.
HOSTILE_STRINGS = [
    "\x00", "nul\x00inside", "%00", "../../etc/passwd", "' OR '1'='1", '"; --',
    "<script>alert(1)</script>", "\u202egnp.exe", "\ufeff", "9" * 40, "a" * 300,
]
HOSTILE_PROBABILITY = 0.1


def schemathesis_dictionaries(world: World) -> dict[str, Any]:
    """The ``[dictionaries]`` and ``[parameters]`` tables of a schemathesis config."""
    dictionaries = {name: {"values": values} for name, values in world.dictionaries.items()}
    dictionaries["hostile"] = {"values": HOSTILE_STRINGS}
    return {"dictionaries": dictionaries, "parameters": parameter_bindings(BINDINGS)}


def parameter_bindings(bindings: dict[str, tuple[str, float]]) -> dict[str, Any]:
    return {key: {"dictionary": name, "probability": probability}
            for key, (name, probability) in bindings.items()}


def hostile_strings_binding() -> dict[str, Any]:
    return {"string": {"dictionary": "hostile", "probability": HOSTILE_PROBABILITY}}


