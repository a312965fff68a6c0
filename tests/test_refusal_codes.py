"""Every refusal code qrgate can emit, provoked where it comes from.

``THROUGH_THE_API`` maps a code to a scenario that drives a running deployment over real
HTTP and returns the answer carrying the code; the test checks that answer's status, media
type and code. ``NOT_FROM_THE_API`` maps every other code to where it comes from and why no
request can meet it; each is provoked there (the command line through click's CliRunner, a
core or service function called directly). The meta-tests keep ``ERROR_CODES`` and the two
tables equal, and every listed code raised somewhere in the source.

The scenarios of one database share one deployment per module (per xdist worker). Each
makes its own users, phones and tokens (``support.fresh``), so none depends on another or
on their order; the one clock they share only moves forward.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url

import qrgate
from qrgate.accounts import directory
from qrgate.accounts.access_passes import new_access_pass
from qrgate.accounts.access_passes import shown as shown_pass
from qrgate.cli.main import cli
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.token import SoftToken
from qrgate.confirm import operations, repository, verification
from qrgate.core import ocra
from qrgate.core.app_lock import LockChange, change_message, decision_message
from qrgate.core.codes import Claim, CodeType, decode_code, encode_code
from qrgate.core.confirm import issue_code
from qrgate.core.device_auth import public_key_bytes
from qrgate.core.gridcard import Layout
from qrgate.core.keyring import KeyRing, PublicKeySet, SigningKey
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.core.txsign import MAX_CHAIN_LINKS, ChainClaim, LinkKey
from qrgate.errors import ERROR_CODES, Conflict, QrgateError
from qrgate.freeze import set_user_frozen
from qrgate.gridcard import cards
from qrgate.gridcard.cards import IssuedCard
from qrgate.http.auth import authenticate_app
from qrgate.http.problems import PROBLEM_MEDIA_TYPE
from qrgate.storage.models import (
    access_passes,
    devices,
    enrolments,
    gridcard_cells,
    gridcards,
    transactions,
)
from qrgate.txsign.tokens import DEFAULT_SUITE, activation_question, read_enrolment_code
from support import fresh
from support.authenticator import SoftAuthenticator, b64u, pin_unlock
from support.deployment import POSTGRESQL_NOT_SET, Deployment, fresh_database
from support.stack import PASSWORD, Clock, Stack
from support.tcp_proxy import proxied
from support.txsign import Platform, enrolled_token, server_keys

# A token answering by the clock: its activation spends the current time step.
TIME_SUITE = "OCRA-1:HOTP-SHA1-6:QH64-T30S"


class World:
    """A module's deployment as the scenarios see it: its first node, the relying party's
    raw HTTP (with its API key), and the transaction platform."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.stack = deployment.first
        self.platform = Platform(self.stack)
        self.api = self.platform.http

    @property
    def clock(self) -> Clock:
        return self.stack.clock

    def cli_env(self, **extra: str) -> dict[str, str]:
        """What an operator's shell would hold to run ``qrgate`` against this deployment."""
        settings = self.stack.rt.settings
        return {"QRGATE_DATA_DIR": str(settings.data_dir),
                "QRGATE_DATABASE_URL": settings.resolved_database_url, **extra}


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One deployment per database for the whole module: the scenarios make their own
    users, so sharing it saves a server start each."""
    kind: str = request.param
    postgresql_url = request.config.getoption("--qrgate-test-database-url")
    if kind == "postgresql" and not postgresql_url:
        pytest.skip(POSTGRESQL_NOT_SET)
    directory = tmp_path_factory.mktemp(f"refusals-{kind}")
    with fresh_database(kind, directory, postgresql_url) as database_url:
        deployment = Deployment(directory=directory, database_url=database_url, clock=Clock())
        try:
            yield World(deployment)
        finally:
            deployment.close()


# --- small steps the scenarios share --------------------------------------------------------


def random_id() -> str:
    return secrets.token_hex(16)


def wrong(answer: str) -> str:
    """Another string of digits as long as ``answer``."""
    return str((int(answer) + 1) % 10 ** len(answer)).zfill(len(answer))


def start_request(world: World, login: str, **extra: Any) -> httpx.Response:
    """601/602 as the relying party sends it."""
    return world.api.post("/v1/confirm/challenges", json={
        "login": login, "scene": {"operation": "transfer", "amount": "25.00", "currency": "EUR"},
        **extra})


def scan(phone: PhoneSimulator, code: str) -> httpx.Response:
    # Straight to the server: the phone's own offline check would refuse some codes first.
    return phone._signed("POST", "/v1/confirm/scan", {"code": code})


def decide(phone: PhoneSimulator, challenge_id: str, *, number: int | None = None
           ) -> httpx.Response:
    body: dict[str, Any] = {"decision": "approve"}
    if number is not None:
        body["number"] = number
    return phone._signed("POST", f"/v1/confirm/challenges/{challenge_id}/decision", body)


def another_number(number: int) -> int:
    """A two-digit number other than ``number``."""
    return number % 89 + 10


def token_for(world: World, login: str, *, suite: str = DEFAULT_SUITE) -> SoftToken:
    return enrolled_token(world.stack, world.platform, login, suite=suite)


def signed(platform: Platform, token: SoftToken, *, parent_code: str | None = None,
           **text: str) -> dict[str, Any]:
    """S1-S5: a transaction of the token's account, started, signed and answered."""
    started = platform.start(token.login, parent_code=parent_code, **text)
    return dict(platform.respond(started["transaction_id"],
                                 token.sign(started["challenge_code"])))


def verify_request(world: World, code: str) -> httpx.Response:
    return httpx.post(f"{world.stack.base_url}/v1/txsign/verify", json={"code": code})


def resigned_chain(stack: Stack, chain_code: str,
                   edit: Callable[[list[dict[int, Any]]], list[dict[int, Any]]]) -> str:
    """The deployment's own chain code with its links edited, signed again with its own
    key: what only a holder of that key (a buggy or compromised signer) could issue."""
    verified = decode_code(chain_code, keys=stack.rt.keyring, now=stack.clock(),
                           expected_type=CodeType.TXSIGN_CHAIN)
    links = verified.claims[ChainClaim.LINKS]
    assert isinstance(links, list)
    return encode_code(code_type=CodeType.TXSIGN_CHAIN, code_id=verified.code_id,
                       issued_at=verified.issued_at, expires_at=verified.expires_at,
                       issuer=verified.issuer, claims={ChainClaim.LINKS: edit(links)},
                       keyring=stack.rt.keyring)


def stranger_keyring() -> KeyRing:
    return KeyRing(active=SigningKey.generate(now=0))


def edit_database(stack: Stack, statement: Any) -> None:
    """Change a row behind qrgate's back, as whoever can write to its database could."""
    with stack.rt.engine.begin() as conn:
        conn.execute(statement)


@contextlib.contextmanager
def every_update_refused(stack: Stack, *, table: str, row_id: str) -> Iterator[None]:
    """A fault planted in the database: each update of one row fails in the driver, as a
    broken constraint or trigger would make it (see review 3)."""
    sqlite = stack.rt.engine.dialect.name == "sqlite"
    with stack.rt.engine.begin() as conn:
        conn.execute(text(
            f"CREATE TRIGGER planted_fault BEFORE UPDATE ON {table} WHEN OLD.id = '{row_id}' "
            "BEGIN SELECT RAISE(ABORT, 'planted fault'); END" if sqlite else
            f"ALTER TABLE {table} ADD CONSTRAINT planted_fault CHECK (id <> '{row_id}') "
            "NOT VALID"))
    try:
        yield
    finally:
        with stack.rt.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER planted_fault" if sqlite else
                              f"ALTER TABLE {table} DROP CONSTRAINT planted_fault"))


# --- codes answered through the API ---------------------------------------------------------


@dataclass(frozen=True)
class ThroughTheApi:
    status: int
    provoke: Callable[[World], httpx.Response]


# malformed or oversized input


def a_code_that_is_not_base45(world: World) -> httpx.Response:
    return verify_request(world, "QG1:AAAA")


def a_code_of_a_future_format(world: World) -> httpx.Response:
    return verify_request(world, "QG2:AAAA")


def a_body_over_the_limit(world: World) -> httpx.Response:
    limit = world.stack.rt.settings.max_body_bytes
    body = b'{"login": "' + b"a" * limit + b'"}'
    return world.api.post("/v1/users", content=body,
                          headers={"content-type": "application/json"})


def headers_over_the_limit(world: World) -> httpx.Response:
    limit = world.stack.rt.settings.max_header_bytes
    return httpx.get(f"{world.stack.base_url}/healthz", headers={"X-Padding": "a" * limit})


def a_body_that_is_not_json(world: World) -> httpx.Response:
    # Refused as not matching the schema: FastAPI reads a body of another media type as
    # bytes and never answers 415, so qrgate has no unsupported_media_type to give.
    return world.api.post("/v1/users", content=b"login=alice",
                          headers={"content-type": "application/x-www-form-urlencoded"})


def a_device_key_off_the_curve(world: World) -> httpx.Response:
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    # The length and encoding of an uncompressed P-256 point, but (0, 0) is not on the curve.
    not_a_point = base64.urlsafe_b64encode(b"\x04" + bytes(64)).rstrip(b"=").decode()
    # Unsigned: the key is read before any signature could be checked with it.
    return httpx.post(f"{world.stack.base_url}/v1/devices", json={
        "code": enrolment["code"], "public_key": not_a_point,
        "confirm_code": enrolment["confirm_code"]})


def a_time_token_asked_to_resync(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack), suite=TIME_SUITE)
    # Resynchronisation moves a counter; a token that answers by the clock has none.
    return world.api.post(f"/v1/txsign/tokens/{token.token_id}/resync", json={
        "questions": ["1" * 64, "2" * 64], "responses": ["123456", "654321"]})


def a_chain_with_a_link_never_verified(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    chain = signed(world.platform, token)["chain_code"]

    def unverified(links: list[dict[int, Any]]) -> list[dict[int, Any]]:
        return [{**links[0], LinkKey.RESULT: "refused"}]

    return verify_request(world, resigned_chain(world.stack, chain, unverified))


def a_webhook_to_the_cloud_metadata_service(world: World) -> httpx.Response:
    # Link-local: where a cloud's metadata service (and its credentials) answers.
    return world.api.put("/v1/webhook",
                         json={"url": "https://169.254.169.254/latest/meta-data/"})


# cryptographic failures


def a_device_request_signed_with_another_key(world: World) -> httpx.Response:
    _, phone = fresh.user_with_phone(world.stack)
    # The bound phone's id, with a key of its own.
    thief = PhoneSimulator(world.stack.base_url, device_id=phone.device_id,
                           clock=world.clock)
    world.stack.closers.append(thief.close)
    return thief._signed("GET", "/v1/devices/me")


def a_code_signed_by_a_key_never_published(world: World) -> httpx.Response:
    now = int(world.clock())
    forged = encode_code(code_type=CodeType.TXSIGN_CHAIN, code_id=bytes.fromhex(random_id()),
                         issued_at=now, expires_at=now + 60, issuer="qrgate",
                         claims={ChainClaim.LINKS: []}, keyring=stranger_keyring())
    return verify_request(world, forged)


def an_enrolment_code_sent_as_a_chain(world: World) -> httpx.Response:
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    return verify_request(world, enrolment["code"])


def a_node_with_another_kek(world: World) -> httpx.Response:
    """A node started with a KEK of its own (a deployment mistake): the secrets the
    others sealed do not open. Its signing key comes from a file, the one way such a node
    starts at all (the database's signing keys are sealed too)."""
    enrolment = world.platform.call("POST", "/v1/txsign/tokens",
                                    json={"login": fresh.user(world.stack)})
    home = world.deployment.directory / f"stranger-{secrets.token_hex(4)}"
    home.mkdir()
    key_file = home / "signing.pem"
    key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with world.deployment.node(home=home,
                               env={"QRGATE_SIGNING_KEY_FILE": str(key_file)}) as stranger:
        return httpx.post(f"{stranger.base_url}/v1/txsign/tokens/{enrolment['token_id']}"
                          "/activate", json={"response": "12345678"})


# callers


def no_api_key(world: World) -> httpx.Response:
    return httpx.get(f"{world.stack.base_url}/v1/confirm/challenges")


def an_api_key_with_a_wrong_secret(world: World) -> httpx.Response:
    prefix = "_".join(world.stack.api_key.split("_", 2)[:2])
    return httpx.get(f"{world.stack.base_url}/v1/confirm/challenges",
                     headers={"Authorization": f"Bearer {prefix}_{'A' * 43}"})


def a_device_request_without_signature(world: World) -> httpx.Response:
    return httpx.get(f"{world.stack.base_url}/v1/devices/me")


def a_challenge_read_with_neither_token_nor_key(world: World) -> httpx.Response:
    # Who asks is settled before whether the challenge exists.
    return httpx.get(f"{world.stack.base_url}/v1/confirm/challenges/{random_id()}")


def a_device_nobody_bound(world: World) -> httpx.Response:
    stranger = PhoneSimulator(world.stack.base_url, device_id=random_id(), clock=world.clock)
    world.stack.closers.append(stranger.close)
    return stranger._signed("GET", "/v1/devices/me")


def a_phone_that_unbound_itself(world: World) -> httpx.Response:
    _, phone = fresh.user_with_phone(world.stack)
    phone.unbind()
    return phone._signed("GET", "/v1/devices/me")


def a_device_clock_far_behind(world: World) -> httpx.Response:
    _, phone = fresh.user_with_phone(world.stack)
    skew = world.stack.rt.settings.device_clock_skew
    late = PhoneSimulator(world.stack.base_url, private_key=phone.private_key,
                          device_id=phone.device_id, clock=lambda: world.clock() - skew - 60)
    world.stack.closers.append(late.close)
    return late._signed("GET", "/v1/devices/me")


def a_wrong_confirmation_code(world: World) -> httpx.Response:
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    return fresh.enrolment_request(world.stack.phone(), enrolment["code"],
                                   confirm_code=wrong(enrolment["confirm_code"]))


def another_browsers_token(world: World) -> httpx.Response:
    login, _ = fresh.user_with_phone(world.stack)
    mine, _ = world.stack.start(login)
    theirs, _ = world.stack.start(login)
    return httpx.get(f"{world.stack.base_url}/v1/confirm/challenges/{mine['challenge_id']}",
                     headers={"Qrgate-Browser-Token": theirs["browser_token"]})


# lookups and conflicts


def a_path_nobody_serves(world: World) -> httpx.Response:
    return httpx.get(f"{world.stack.base_url}/v1/nothing-here")


def an_unknown_challenge(world: World) -> httpx.Response:
    return world.api.get(f"/v1/confirm/challenges/{random_id()}")


def an_unknown_transaction(world: World) -> httpx.Response:
    return world.api.get(f"/v1/txsign/transactions/{random_id()}")


def an_unknown_token_activated(world: World) -> httpx.Response:
    return httpx.post(f"{world.stack.base_url}/v1/txsign/tokens/{random_id()}/activate",
                      json={"response": "12345678"})


def an_unknown_user(world: World) -> httpx.Response:
    return world.api.get(f"/v1/users/{fresh.login('nobody')}")


def a_device_the_user_does_not_have(world: World) -> httpx.Response:
    return world.api.delete(f"/v1/users/{fresh.user(world.stack)}/devices/{random_id()}")


def an_unknown_business_id(world: World) -> httpx.Response:
    return start_request(world, fresh.user(world.stack), business_id="no-such-app")


def an_enrolment_the_database_forgot(world: World) -> httpx.Response:
    """The database was restored from a backup taken before the enrolment started: its
    signed code still verifies, but names nothing."""
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    edit_database(world.stack, delete(enrolments).where(
        enrolments.c.id == enrolment["enrolment_id"]))
    return fresh.enrolment_request(world.stack.phone(), enrolment["code"],
                                   confirm_code=enrolment["confirm_code"])


def pass_request(phone: PhoneSimulator, access_pass: str) -> httpx.Response:
    """The request ``phone.enrol_with_pass`` sends, answered as it is."""
    public_key = base64.urlsafe_b64encode(public_key_bytes(phone.private_key.public_key()))
    return phone._signed("POST", "/v1/devices", {
        "access_pass": access_pass, "public_key": public_key.rstrip(b"=").decode(),
        "name": phone.name}, device_id="new")


def an_access_pass_never_issued(world: World) -> httpx.Response:
    return pass_request(world.stack.phone(), shown_pass(new_access_pass()))


def an_access_pass_past_its_time(world: World) -> httpx.Response:
    issued = world.stack.rp.issue_access_pass(fresh.user(world.stack))
    # As if its time had passed (the scenarios' shared clock only moves forward a little).
    edit_database(world.stack, update(access_passes).where(
        access_passes.c.id == issued["access_pass_id"]).values(expires_at=world.clock()))
    return pass_request(world.stack.phone(), issued["access_pass"])


def an_access_pass_used_by_a_second_phone(world: World) -> httpx.Response:
    issued = world.stack.rp.issue_access_pass(fresh.user(world.stack))
    world.stack.phone().enrol_with_pass(issued["access_pass"])
    return pass_request(world.stack.phone(), issued["access_pass"])


def a_webhook_never_configured(world: World) -> httpx.Response:
    # The rival's application: no scenario gives it a webhook.
    return httpx.get(f"{world.stack.base_url}/v1/webhook",
                     headers={"Authorization": f"Bearer {world.stack.other.api_key}"})


def an_unknown_webhook_event_replayed(world: World) -> httpx.Response:
    return world.api.post(f"/v1/webhook/deliveries/{random_id()}/replay")


def a_method_the_path_does_not_serve(world: World) -> httpx.Response:
    return httpx.delete(f"{world.stack.base_url}/v1/confirm/scan")


def a_login_created_twice(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    return world.api.post("/v1/users", json={"login": login})


def a_second_token_for_one_user(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    token_for(world, login)
    return world.api.post("/v1/txsign/tokens", json={"login": login})


# challenge lifecycle and checks


def a_code_scanned_after_its_rotation_ended(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    world.clock.advance(world.stack.rt.settings.code_ttl + 10)  # past the 5 s leeway too
    return scan(phone, started["code"])


def a_code_from_a_node_whose_clock_runs_ahead(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    with world.deployment.node(clock=Clock(world.clock() + 600)) as ahead:
        enrolment = ahead.rp.start_enrolment(login)
    return fresh.enrolment_request(world.stack.phone(), enrolment["code"],
                                   confirm_code=enrolment["confirm_code"])


def an_enrolment_code_used_by_a_second_phone(world: World) -> httpx.Response:
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    world.stack.phone("first").enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
    return fresh.enrolment_request(world.stack.phone("second"), enrolment["code"],
                                   confirm_code=enrolment["confirm_code"])


def a_challenge_cancelled_twice(world: World) -> httpx.Response:
    login, _ = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    world.stack.rp.cancel(started["challenge_id"])
    return world.api.post(f"/v1/confirm/challenges/{started['challenge_id']}/cancel")


def one_code_scanned_by_two_phones(world: World) -> httpx.Response:
    login, first = fresh.user_with_phone(world.stack)
    second = fresh.bound_phone(world.stack, login, "tablet")
    started, _ = world.stack.start(login)
    first.scan_text(started["code"])
    return scan(second, started["code"])


def a_time_response_in_the_step_activation_used(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack), suite=TIME_SUITE)
    # The clock has not moved since activation: each time step answers once.
    started = world.platform.start(token.login)
    return world.api.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                          json={"response": token.sign(started["challenge_code"])})


def a_one_time_password_used_twice(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    authenticator = fresh.totp(world.stack, login)
    otp = authenticator.at(world.clock())
    first = start_request(world, login, verifier="totp").json()["challenge_id"]
    world.stack.rp.submit_otp(first, otp)
    second = start_request(world, login, verifier="totp").json()["challenge_id"]
    return world.api.post(f"/v1/confirm/challenges/{second}/otp", json={"otp": otp})


def a_token_activated_twice(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    return httpx.post(f"{world.stack.base_url}/v1/txsign/tokens/{token.token_id}/activate",
                      json={"response": "12345678"})


def a_code_the_page_already_rotated(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, browser = world.stack.start(login)
    browser.rotate()
    return scan(phone, started["code"])


def a_decision_from_the_phone_that_did_not_scan(world: World) -> httpx.Response:
    login, scanner = fresh.user_with_phone(world.stack)
    other = fresh.bound_phone(world.stack, login, "tablet")
    started, _ = world.stack.start(login)
    scanner.scan_text(started["code"])
    return decide(other, started["challenge_id"])


def a_phone_of_another_user(world: World) -> httpx.Response:
    login, _ = fresh.user_with_phone(world.stack)
    _, someone_elses = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    return scan(someone_elses, started["code"])


def a_wrong_number(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login, number_matching=True)
    phone.scan_text(started["code"])
    return decide(phone, started["challenge_id"], number=another_number(started["number"]))


def an_approval_without_the_number(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login, number_matching=True)
    phone.scan_text(started["code"])
    return decide(phone, started["challenge_id"])


def an_enrolment_after_too_many_wrong_codes(world: World) -> httpx.Response:
    enrolment = world.stack.rp.start_enrolment(fresh.user(world.stack))
    phone = world.stack.phone()
    for _ in range(world.stack.rt.settings.max_failures):
        fresh.enrolment_request(phone, enrolment["code"],
                                confirm_code=wrong(enrolment["confirm_code"]))
    # Even the right code: the enrolment is spent.
    return fresh.enrolment_request(phone, enrolment["code"],
                                   confirm_code=enrolment["confirm_code"])


def a_user_after_too_many_wrong_numbers(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    for _ in range(world.stack.rt.settings.user_max_failures):
        started, _ = world.stack.start(login, number_matching=True)
        phone.scan_text(started["code"])
        decide(phone, started["challenge_id"], number=another_number(started["number"]))
    return start_request(world, login)


def a_user_who_reported_a_request(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=False, report=True)
    return start_request(world, login)


# App lock: challenges of an application whose policy requires it (made once per deployment).
LOCKED_APP = "locked-app"


def a_challenge_of_a_locked_app(world: World) -> tuple[PhoneSimulator, str]:
    """A fresh user's phone, with a challenge of ``LOCKED_APP`` scanned."""
    try:
        with world.stack.rt.engine.begin() as conn:
            directory.create_app(
                conn, org_id=directory.org_id_by_slug(conn, "bank"), business_id=LOCKED_APP,
                name="Locked banking", origin="https://bank.example", now=world.clock(),
                policy=AppPolicy(number_matching=NumberMatching.OFF, require_app_lock=True))
    except Conflict:
        pass  # made by an earlier scenario
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login, business_id=LOCKED_APP)
    phone.scan_text(started["code"])
    return phone, started["challenge_id"]


def approve_unlocked(phone: PhoneSimulator, challenge_id: str,
                     unlock: dict[str, Any] | None) -> httpx.Response:
    body: dict[str, Any] = {"decision": "approve", "unlock": unlock}
    return phone._signed("POST", f"/v1/confirm/challenges/{challenge_id}/decision", body)


def approve_with_pin(phone: PhoneSimulator, challenge_id: str, key: bytes) -> httpx.Response:
    message = decision_message(challenge_id=challenge_id, decision="approve", number=None)
    return approve_unlocked(phone, challenge_id, pin_unlock(key, message))


def with_a_pin(world: World) -> tuple[PhoneSimulator, bytes]:
    _, phone = fresh.user_with_phone(world.stack)
    key = secrets.token_bytes(32)  # the server sees only the key the PIN derives
    phone.call("PUT", "/v1/devices/me/lock/pin", {"key": b64u(key)})
    return phone, key


def an_unlocked_app_approving_for_a_locked_service(world: World) -> httpx.Response:
    phone, challenge_id = a_challenge_of_a_locked_app(world)
    return approve_unlocked(phone, challenge_id, None)


def a_pin_unlock_from_a_phone_without_a_pin(world: World) -> httpx.Response:
    phone, challenge_id = a_challenge_of_a_locked_app(world)
    return approve_with_pin(phone, challenge_id, secrets.token_bytes(32))


def a_pin_guessed(phone: PhoneSimulator) -> httpx.Response:
    """Someone holding the phone tries to replace its PIN, guessing the old one."""
    return phone._signed("PUT", "/v1/devices/me/lock/pin", {
        "key": b64u(secrets.token_bytes(32)),
        "unlock": pin_unlock(secrets.token_bytes(32), b"guessed")})


def a_wrong_pin(world: World) -> httpx.Response:
    phone, _ = with_a_pin(world)
    return a_pin_guessed(phone)


def a_right_pin_after_too_many_wrong_ones(world: World) -> httpx.Response:
    phone, key = with_a_pin(world)
    for _ in range(world.stack.rt.settings.max_pin_failures):
        a_pin_guessed(phone)
    message = change_message(device_id=str(phone.device_id), change=LockChange.TURN_OFF)
    return phone._signed("POST", "/v1/devices/me/lock/off",
                         {"unlock": pin_unlock(key, message)})


def an_assertion_without_user_verification(world: World) -> httpx.Response:
    phone, key = with_a_pin(world)
    authenticator = SoftAuthenticator(origin=world.stack.rt.settings.public_url)
    options = phone.call("POST", "/v1/devices/me/lock/webauthn/options")
    message = change_message(device_id=str(phone.device_id), change=LockChange.ADD_WEBAUTHN,
                             material=authenticator.credential_id)
    phone.call("POST", "/v1/devices/me/lock/webauthn", {
        "credential": authenticator.create(options), "unlock": pin_unlock(key, message)})
    authenticator.user_verified = False  # touched, but no fingerprint or face
    message = change_message(device_id=str(phone.device_id), change=LockChange.TURN_OFF)
    return phone._signed("POST", "/v1/devices/me/lock/off",
                         {"unlock": authenticator.assert_(message)})


def a_token_after_too_many_wrong_activations(world: World) -> httpx.Response:
    enrolment = world.platform.call("POST", "/v1/txsign/tokens",
                                    json={"login": fresh.user(world.stack)})
    read = read_enrolment_code(enrolment["code"], keys=server_keys(world.stack),
                               now=world.clock())
    right = ocra.respond(suite=ocra.parse_suite(read.suite), key=read.secret,
                         question=activation_question(read.token_id), counter=read.counter)
    url = f"{world.stack.base_url}/v1/txsign/tokens/{read.token_id}/activate"
    for _ in range(world.stack.rt.settings.max_failures):
        httpx.post(url, json={"response": wrong(right)})
    return httpx.post(url, json={"response": right})


def a_user_frozen_by_an_operator(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    rt = world.stack.rt
    with rt.engine.begin() as conn:  # what `qrgate admin user freeze` does
        user = directory.find_user(conn, org_id=directory.org_id_by_slug(conn, "bank"),
                                   login=login)
        set_user_frozen(rt, conn, user_id=user.id, frozen=True, now=world.clock())
    return start_request(world, login)


def totp_for_a_user_without_it(world: World) -> httpx.Response:
    return start_request(world, fresh.user(world.stack), verifier="totp")


def a_password_for_a_challenge_decided_by_scanning(world: World) -> httpx.Response:
    login, _ = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    return world.api.post(f"/v1/confirm/challenges/{started['challenge_id']}/otp",
                          json={"otp": "123456"})


def a_code_from_a_node_with_another_issuer(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    with world.deployment.node(issuer="qrgate-staging") as misconfigured:
        started = misconfigured.rp.start_confirm(login, operation="transfer")
    return scan(phone, started["code"])


def a_code_signed_for_another_amount(world: World) -> httpx.Response:
    """A code with the deployment's signature that says another amount than the challenge
    (a forgery by a key holder, or an older release's encoding): see review 1."""
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    rt = world.stack.rt
    with rt.read() as conn:
        row = repository.load(conn, started["challenge_id"])
    forged = issue_code(challenge=dataclasses.replace(row.view(), amount="9999.00 EUR"),
                        number_matching=False, issuer=rt.settings.issuer,
                        now=int(world.clock()), ttl=rt.settings.code_ttl, keyring=rt.keyring)
    return scan(phone, forged)


def the_qr_of_a_cancelled_challenge(world: World) -> httpx.Response:
    login, _ = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    world.stack.rp.cancel(started["challenge_id"])
    return httpx.get(
        f"{world.stack.base_url}/v1/confirm/challenges/{started['challenge_id']}/qr.png",
        headers={"Qrgate-Browser-Token": started["browser_token"]})


def a_decision_before_any_scan(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    return decide(phone, started["challenge_id"])


def the_chain_of_an_unsigned_transaction(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    started = world.platform.start(token.login)
    return world.api.get(f"/v1/txsign/transactions/{started['transaction_id']}/chain.png")


def a_wrong_one_time_password(world: World) -> httpx.Response:
    login = fresh.user(world.stack)
    authenticator = fresh.totp(world.stack, login)
    # None of the codes the window around now accepts.
    accepted = {authenticator.at(world.clock() + 30 * step) for step in range(-2, 3)}
    otp = next(code for code in ("000000", "111111", "222222") if code not in accepted)
    challenge_id = start_request(world, login, verifier="totp").json()["challenge_id"]
    return world.api.post(f"/v1/confirm/challenges/{challenge_id}/otp", json={"otp": otp})


def an_offline_code_made_with_another_number(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, browser = world.stack.start(login, number_matching=True)
    code = phone.offline_code(started["code"], number=another_number(started["number"]))
    return browser._http.post(f"/v1/confirm/challenges/{started['challenge_id']}/offline-code",
                              json={"code": code})


def an_offline_code_for_a_phone_enrolled_before_offline_secrets(
        world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    edit_database(world.stack, update(devices).where(devices.c.id == phone.device_id)
                  .values(offline_secret_enc=None))
    started, browser = world.stack.start(login)
    return browser._http.post(f"/v1/confirm/challenges/{started['challenge_id']}/offline-code",
                              json={"code": "12345678"})


def a_wrong_token_response(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    started = world.platform.start(token.login)
    return world.api.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                          json={"response": wrong(token.sign(started["challenge_code"]))})


def a_resync_with_a_wrong_response(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    questions = ["1" * 64, "2" * 64]
    first, second = (token._respond(question) for question in questions)
    return world.api.post(f"/v1/txsign/tokens/{token.token_id}/resync", json={
        "questions": questions, "responses": [wrong(first), second]})


def a_resync_of_a_token_never_activated(world: World) -> httpx.Response:
    enrolment = world.platform.call("POST", "/v1/txsign/tokens",
                                    json={"login": fresh.user(world.stack)})
    return world.api.post(f"/v1/txsign/tokens/{enrolment['token_id']}/resync", json={
        "questions": ["1" * 64, "2" * 64], "responses": ["12345678", "12345678"]})


def a_transaction_for_a_user_without_a_token(world: World) -> httpx.Response:
    return world.api.post("/v1/txsign/transactions", json={
        "account": fresh.user(world.stack), "demand": "pay 10.00 EUR"})


def a_chain_another_organisation_signed(world: World) -> httpx.Response:
    other = world.stack.other
    rival = Platform(world.stack)
    rival.http.headers["Authorization"] = f"Bearer {other.api_key}"
    rivals_user = fresh.login("rival")
    other.rp.create_user(rivals_user)
    rivals_chain = signed(rival, enrolled_token(world.stack, rival, rivals_user))["chain_code"]
    ours = token_for(world, fresh.user(world.stack))
    return world.api.post("/v1/txsign/transactions", json={
        "account": ours.login, "demand": "co-sign", "parent_code": rivals_chain})


def a_chain_whose_transaction_was_edited_since(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    first = signed(world.platform, token)
    edit_database(world.stack, update(transactions).where(
        transactions.c.id == first["transaction_id"]).values(demand="pay 9999.00 EUR"))
    return world.api.post("/v1/txsign/transactions", json={
        "account": token.login, "demand": "co-sign", "parent_code": first["chain_code"]})


def one_link_more_than_a_chain_holds(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    chain: str | None = None
    for _ in range(MAX_CHAIN_LINKS):
        chain = signed(world.platform, token, parent_code=chain)["chain_code"]
    return world.api.post("/v1/txsign/transactions", json={
        "account": token.login, "demand": "one link too many", "parent_code": chain})


def a_chain_whose_second_link_has_no_parent(world: World) -> httpx.Response:
    token = token_for(world, fresh.user(world.stack))
    chain = signed(world.platform, token)["chain_code"]
    return verify_request(world, resigned_chain(world.stack, chain, lambda links: links * 2))


def a_chain_whose_stored_text_was_edited(world: World) -> httpx.Response:
    """Texts too long for the QR travel as digests and URLs; the server's copy of one was
    edited after signing."""
    token = token_for(world, fresh.user(world.stack))
    long_text = {"demand": "d" * 200, "comment": "c" * 200}
    first = signed(world.platform, token, **long_text)
    second = signed(world.platform, token, parent_code=first["chain_code"], **long_text)
    edit_database(world.stack, update(transactions).where(
        transactions.c.id == first["transaction_id"]).values(demand="e" * 200))
    return verify_request(world, second["chain_code"])


# scheme A: grid cards


ATTEMPT_TOKEN = "Qrgate-Attempt-Token"


def card_holder(world: World) -> tuple[str, IssuedCard]:
    """A fresh user with a password and a printed grid card (its cells in clear)."""
    login = fresh.user(world.stack, password=PASSWORD)
    card = cards.run_issue(world.stack.rt, org_slug="bank", login=login, layout=Layout(),
                           ttl_days=365, issuer="operator", actor="refusal codes")
    return login, card


def cell_at(card: IssuedCard, position: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label == position)


def a_cell_elsewhere(card: IssuedCard, position: str) -> str:
    return next(c.content for c in card.card.cells if c.position.label != position)


def sign_in(world: World, login: str, *, organisation: str = "bank",
            **extra: Any) -> httpx.Response:
    """The phone app alone: organisation, login and password."""
    return httpx.post(f"{world.stack.base_url}/v1/gridcard/sign-in", json={
        "organisation": organisation, "login": login, "password": PASSWORD, **extra})


def attempt_of(world: World, login: str, **extra: Any) -> dict[str, Any]:
    response = sign_in(world, login, **extra)
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


def answer_cell(world: World, attempt: dict[str, Any], cell: str, *,
                token: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{world.stack.base_url}/v1/gridcard/attempts/{attempt['attempt_id']}/answer",
        json={"cell": cell}, headers={ATTEMPT_TOKEN: token or attempt["answer_token"]})


def ask_another_position(world: World, attempt: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{world.stack.base_url}/v1/gridcard/attempts/{attempt['attempt_id']}/reissue",
        headers={ATTEMPT_TOKEN: attempt["answer_token"]})


def a_sign_in_at_an_organisation_nobody_created(world: World) -> httpx.Response:
    login, _ = card_holder(world)
    return sign_in(world, login, organisation=f"nowhere-{secrets.token_hex(4)}")


def an_unknown_attempt(world: World) -> httpx.Response:
    return world.api.get(f"/v1/gridcard/attempts/{random_id()}")


def another_attempts_token(world: World) -> httpx.Response:
    mine, theirs = (attempt_of(world, card_holder(world)[0]) for _ in range(2))
    return httpx.get(f"{world.stack.base_url}/v1/gridcard/attempts/{mine['attempt_id']}",
                     headers={ATTEMPT_TOKEN: theirs["answer_token"]})


def a_sign_in_without_a_card(world: World) -> httpx.Response:
    return sign_in(world, fresh.user(world.stack, password=PASSWORD))


def a_cell_of_a_card_revoked_meanwhile(world: World) -> httpx.Response:
    login, card = card_holder(world)
    attempt = attempt_of(world, login)
    revoked = world.api.post(f"/v1/gridcard/cards/{attempt['serial']}/revoke")
    assert revoked.status_code == 200, revoked.text
    return answer_cell(world, attempt, cell_at(card, attempt["position"]))


def a_card_past_its_time(world: World) -> httpx.Response:
    login, card = card_holder(world)
    # As if its time had passed (the scenarios' shared clock only moves forward a little).
    edit_database(world.stack, update(gridcards).where(gridcards.c.id == card.record.id)
                  .values(expires_at=world.clock() - 1))
    return sign_in(world, login)


def a_card_with_every_cell_used(world: World) -> httpx.Response:
    login, card = card_holder(world)
    # As if all but one of its cells had been answered before; the last one is, now.
    last = card.card.cells[-1].position.label
    edit_database(world.stack, update(gridcard_cells).where(
        gridcard_cells.c.card_id == card.record.id, gridcard_cells.c.position != last)
        .values(used_at=world.clock()))
    attempt = attempt_of(world, login)
    assert attempt["position"] == last
    assert answer_cell(world, attempt, cell_at(card, last)).status_code == 200
    return sign_in(world, login)


def a_cell_of_another_position(world: World) -> httpx.Response:
    login, card = card_holder(world)
    attempt = attempt_of(world, login)
    return answer_cell(world, attempt, a_cell_elsewhere(card, attempt["position"]))


def a_cell_of_another_users_card(world: World) -> httpx.Response:
    login, _ = card_holder(world)
    _, someone_elses = card_holder(world)
    attempt = attempt_of(world, login)
    return answer_cell(world, attempt, cell_at(someone_elses, attempt["position"]))


def a_cell_answered_twice(world: World) -> httpx.Response:
    login, card = card_holder(world)
    first = attempt_of(world, login)
    used = cell_at(card, first["position"])
    assert answer_cell(world, first, used).status_code == 200
    # Used cells are never asked again: the second attempt asks another position.
    return answer_cell(world, attempt_of(world, login), used)


def a_cell_after_its_window(world: World) -> httpx.Response:
    login, card = card_holder(world)
    attempt = attempt_of(world, login)
    world.clock.advance(attempt["window_seconds"] + 1)
    return answer_cell(world, attempt, cell_at(card, attempt["position"]))


def another_position_asked_too_early(world: World) -> httpx.Response:
    login, _ = card_holder(world)
    return ask_another_position(world, attempt_of(world, login))


def one_position_more_than_an_attempt_allows(world: World) -> httpx.Response:
    login, _ = card_holder(world)
    # High risk: the shortest windows, so the shared clock moves on the least.
    attempt = attempt_of(world, login, risk="high")
    while attempt["reissues_left"]:
        world.clock.advance(attempt["window_seconds"] + 1)
        moved = ask_another_position(world, attempt)
        assert moved.status_code == 200, moved.text
        attempt = {**attempt, **moved.json()}
    world.clock.advance(attempt["window_seconds"] + 1)
    return ask_another_position(world, attempt)


# the server itself


def a_statement_the_database_refuses(world: World) -> httpx.Response:
    login, phone = fresh.user_with_phone(world.stack)
    started, _ = world.stack.start(login)
    with every_update_refused(world.stack, table="challenges",
                              row_id=started["challenge_id"]):
        return scan(phone, started["code"])


def a_database_out_of_reach(world: World) -> httpx.Response:
    """PostgreSQL: the connection is cut (every socket reset, new ones refused). SQLite:
    another program holds the write lock past busy_timeout (a backup, a stuck script)."""
    url = make_url(world.deployment.database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            return world.api.post("/v1/users", json={"login": fresh.login()}, timeout=30)
        finally:
            holder.rollback()
            holder.close()
    with proxied(str(url.host), int(url.port or 5432)) as proxy, world.deployment.node(
            via=url.set(port=proxy.port).render_as_string(hide_password=False)) as node:
        proxy.cut()
        return httpx.get(f"{node.base_url}/v1/confirm/challenges",
                         headers={"Authorization": f"Bearer {node.api_key}"})


THROUGH_THE_API: dict[str, ThroughTheApi] = {
    "malformed_code": ThroughTheApi(400, a_code_that_is_not_base45),
    "unsupported_version": ThroughTheApi(400, a_code_of_a_future_format),
    "payload_too_large": ThroughTheApi(413, a_body_over_the_limit),
    "headers_too_large": ThroughTheApi(431, headers_over_the_limit),
    "invalid_request": ThroughTheApi(422, a_body_that_is_not_json),
    "bad_public_key": ThroughTheApi(400, a_device_key_off_the_curve),
    "bad_ocra_suite": ThroughTheApi(422, a_time_token_asked_to_resync),
    "bad_chain": ThroughTheApi(403, a_chain_with_a_link_never_verified),
    "bad_webhook_url": ThroughTheApi(422, a_webhook_to_the_cloud_metadata_service),
    "bad_signature": ThroughTheApi(401, a_device_request_signed_with_another_key),
    "unknown_key": ThroughTheApi(401, a_code_signed_by_a_key_never_published),
    "wrong_code_type": ThroughTheApi(422, an_enrolment_code_sent_as_a_chain),
    "decryption_failed": ThroughTheApi(500, a_node_with_another_kek),
    "missing_api_key": ThroughTheApi(401, no_api_key),
    "bad_api_key": ThroughTheApi(401, an_api_key_with_a_wrong_secret),
    "missing_signature": ThroughTheApi(401, a_device_request_without_signature),
    "missing_credentials": ThroughTheApi(401, a_challenge_read_with_neither_token_nor_key),
    "unknown_device": ThroughTheApi(401, a_device_nobody_bound),
    "device_unbound": ThroughTheApi(401, a_phone_that_unbound_itself),
    "stale_request": ThroughTheApi(401, a_device_clock_far_behind),
    "bad_credentials": ThroughTheApi(401, a_wrong_confirmation_code),
    "wrong_browser": ThroughTheApi(403, another_browsers_token),
    "not_found": ThroughTheApi(404, a_path_nobody_serves),
    "challenge_not_found": ThroughTheApi(404, an_unknown_challenge),
    "transaction_not_found": ThroughTheApi(404, an_unknown_transaction),
    "token_not_found": ThroughTheApi(404, an_unknown_token_activated),
    "user_not_found": ThroughTheApi(404, an_unknown_user),
    "device_not_found": ThroughTheApi(404, a_device_the_user_does_not_have),
    "app_not_found": ThroughTheApi(404, an_unknown_business_id),
    # The phone app signing in alone names the organisation (POST /v1/gridcard/sign-in).
    "org_not_found": ThroughTheApi(404, a_sign_in_at_an_organisation_nobody_created),
    "enrolment_not_found": ThroughTheApi(404, an_enrolment_the_database_forgot),
    "access_pass_not_found": ThroughTheApi(404, an_access_pass_never_issued),
    "access_pass_expired": ThroughTheApi(410, an_access_pass_past_its_time),
    "access_pass_used": ThroughTheApi(409, an_access_pass_used_by_a_second_phone),
    "webhook_not_found": ThroughTheApi(404, a_webhook_never_configured),
    "event_not_found": ThroughTheApi(404, an_unknown_webhook_event_replayed),
    "method_not_allowed": ThroughTheApi(405, a_method_the_path_does_not_serve),
    "user_exists": ThroughTheApi(409, a_login_created_twice),
    "token_exists": ThroughTheApi(409, a_second_token_for_one_user),
    "expired": ThroughTheApi(410, a_code_scanned_after_its_rotation_ended),
    "not_yet_valid": ThroughTheApi(410, a_code_from_a_node_whose_clock_runs_ahead),
    "replayed": ThroughTheApi(409, an_enrolment_code_used_by_a_second_phone),
    "already_decided": ThroughTheApi(409, a_challenge_cancelled_twice),
    "scanned_twice": ThroughTheApi(409, one_code_scanned_by_two_phones),
    "response_replayed": ThroughTheApi(409, a_time_response_in_the_step_activation_used),
    "otp_replayed": ThroughTheApi(409, a_one_time_password_used_twice),
    "already_activated": ThroughTheApi(409, a_token_activated_twice),
    "code_superseded": ThroughTheApi(410, a_code_the_page_already_rotated),
    "wrong_device": ThroughTheApi(403, a_decision_from_the_phone_that_did_not_scan),
    "wrong_user": ThroughTheApi(403, a_phone_of_another_user),
    "number_mismatch": ThroughTheApi(403, a_wrong_number),
    "number_required": ThroughTheApi(403, an_approval_without_the_number),
    "locked": ThroughTheApi(423, an_enrolment_after_too_many_wrong_codes),
    "user_locked": ThroughTheApi(423, a_user_after_too_many_wrong_numbers),
    "user_blocked": ThroughTheApi(423, a_user_who_reported_a_request),
    "app_lock_required": ThroughTheApi(403, an_unlocked_app_approving_for_a_locked_service),
    "lock_not_set_up": ThroughTheApi(403, a_pin_unlock_from_a_phone_without_a_pin),
    "wrong_pin": ThroughTheApi(401, a_wrong_pin),
    "pin_locked": ThroughTheApi(423, a_right_pin_after_too_many_wrong_ones),
    "bad_unlock_proof": ThroughTheApi(403, an_assertion_without_user_verification),
    "token_locked": ThroughTheApi(423, a_token_after_too_many_wrong_activations),
    "frozen": ThroughTheApi(423, a_user_frozen_by_an_operator),
    "verifier_unavailable": ThroughTheApi(409, totp_for_a_user_without_it),
    "wrong_verifier": ThroughTheApi(403, a_password_for_a_challenge_decided_by_scanning),
    "wrong_issuer": ThroughTheApi(403, a_code_from_a_node_with_another_issuer),
    "field_mismatch": ThroughTheApi(403, a_code_signed_for_another_amount),
    "not_pending": ThroughTheApi(403, the_qr_of_a_cancelled_challenge),
    "not_scanned": ThroughTheApi(403, a_decision_before_any_scan),
    "not_signed": ThroughTheApi(403, the_chain_of_an_unsigned_transaction),
    "wrong_otp": ThroughTheApi(401, a_wrong_one_time_password),
    "wrong_offline_code": ThroughTheApi(401, an_offline_code_made_with_another_number),
    "offline_unavailable": ThroughTheApi(
        409, an_offline_code_for_a_phone_enrolled_before_offline_secrets),
    "wrong_response": ThroughTheApi(401, a_wrong_token_response),
    "resync_failed": ThroughTheApi(401, a_resync_with_a_wrong_response),
    "token_inactive": ThroughTheApi(403, a_resync_of_a_token_never_activated),
    "no_token": ThroughTheApi(404, a_transaction_for_a_user_without_a_token),
    "unknown_parent": ThroughTheApi(403, a_chain_another_organisation_signed),
    "tampered_chain": ThroughTheApi(403, a_chain_whose_transaction_was_edited_since),
    "chain_too_long": ThroughTheApi(403, one_link_more_than_a_chain_holds),
    "broken_chain": ThroughTheApi(403, a_chain_whose_second_link_has_no_parent),
    "text_mismatch": ThroughTheApi(403, a_chain_whose_stored_text_was_edited),
    "internal_error": ThroughTheApi(500, a_statement_the_database_refuses),
    "database_unavailable": ThroughTheApi(503, a_database_out_of_reach),
    "attempt_not_found": ThroughTheApi(404, an_unknown_attempt),
    "wrong_attempt_token": ThroughTheApi(403, another_attempts_token),
    "no_card": ThroughTheApi(409, a_sign_in_without_a_card),
    "card_revoked": ThroughTheApi(409, a_cell_of_a_card_revoked_meanwhile),
    "card_expired": ThroughTheApi(410, a_card_past_its_time),
    "card_exhausted": ThroughTheApi(409, a_card_with_every_cell_used),
    "wrong_cell": ThroughTheApi(401, a_cell_of_another_position),
    "wrong_card": ThroughTheApi(403, a_cell_of_another_users_card),
    "cell_used": ThroughTheApi(409, a_cell_answered_twice),
    "late_answer": ThroughTheApi(410, a_cell_after_its_window),
    "window_open": ThroughTheApi(409, another_position_asked_too_early),
    "reissue_limit": ThroughTheApi(409, one_position_more_than_an_attempt_allows),
}


# --- codes that cannot come from the API -----------------------------------------------------


@dataclass(frozen=True)
class Elsewhere:
    """``provoke`` raises the code where it comes from and returns the code it saw."""

    where: str
    why: str
    provoke: Callable[[], str]


@dataclass(frozen=True)
class ElsewhereOnADeployment:
    """The same, for the command line or a service acting on a running deployment."""

    where: str
    why: str
    provoke: Callable[[World], str]


def raised_code(action: Callable[[], object]) -> str:
    with pytest.raises(QrgateError) as caught:
        action()
    return caught.value.code


def command_line_refusal(args: list[str], *, env: dict[str, str], exit_code: int = 1) -> str:
    """The code in ``qrgate``'s one error line (``qrgate: error: CODE: detail``)."""
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    found = re.search(r"^qrgate: error: (?:NOT VERIFIED: )?([a-z_]+): ", result.stderr,
                      re.MULTILINE)
    assert found, result.stderr
    return found.group(1)


def a_checkpoint_file_that_is_no_export(world: World) -> str:
    garbage = world.deployment.directory / f"checkpoints-{secrets.token_hex(4)}.txt"
    garbage.write_text("these are not checkpoints\n")
    return command_line_refusal(["audit", "verify", "--checkpoints", str(garbage)],
                                env=world.cli_env(), exit_code=2)


def an_organisation_slug_outside_the_alphabet(world: World) -> str:
    return command_line_refusal(["admin", "org", "create", "Not A Slug", "--name", "X"],
                                env=world.cli_env())


def an_amount_that_is_no_number(world: World) -> str:
    rt = world.stack.rt
    app = authenticate_app(rt, {"authorization": f"Bearer {world.stack.api_key}"})
    request = operations.StartRequest(login=fresh.user(world.stack), operation="transfer",
                                      amount="NaN")
    return raised_code(lambda: operations.start(rt, app=app, request=request))


def a_picture_that_is_no_image(world: World) -> str:
    picture = world.deployment.directory / f"chain-{secrets.token_hex(4)}.png"
    picture.write_bytes(b"not a PNG at all")
    return command_line_refusal(["txsign", "verify-qr", str(picture),
                                 "--server", world.stack.base_url], env=world.cli_env())


def a_kek_file_of_the_wrong_size(world: World) -> str:
    kek = world.deployment.directory / f"kek-{secrets.token_hex(4)}"
    kek.write_bytes(b"sixteen bytes!!!")
    return command_line_refusal(["admin", "keys", "list"],
                                env=world.cli_env(QRGATE_KEK_FILE=str(kek)))


def a_p384_signing_key() -> str:
    return raised_code(lambda: SigningKey.from_private_key(
        ec.generate_private_key(ec.SECP384R1()), created_at=0))


def a_signing_key_named_after_another() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return raised_code(lambda: SigningKey(kid=bytes(8), private_key=key, created_at=0))


def a_jwks_without_a_key_list() -> str:
    return raised_code(lambda: PublicKeySet.from_jwks({"keys": "not a list"}))


def a_claim_in_the_common_range() -> str:
    return raised_code(lambda: encode_code(
        code_type=CodeType.TXSIGN_CHAIN, code_id=b"\x01" * 16, issued_at=0, expires_at=60,
        issuer="qrgate", claims={Claim.ISSUER: "someone else"}, keyring=stranger_keyring()))


def an_ocra_question_that_does_not_fit() -> str:
    return raised_code(lambda: ocra.respond(suite=ocra.parse_suite(DEFAULT_SUITE),
                                            key=b"\x01" * 32, question="not hex", counter=0))


def an_api_key_prefix_never_issued(world: World) -> str:
    return command_line_refusal(["admin", "apikey", "revoke", "nosuchprefix"],
                                env=world.cli_env())


def the_active_key_retired(world: World) -> str:
    active = world.stack.rt.keyring.active_kid.hex()
    return command_line_refusal(["admin", "keys", "retire", active], env=world.cli_env())


def an_organisation_created_twice(world: World) -> str:
    return command_line_refusal(["admin", "org", "create", "bank", "--name", "Again"],
                                env=world.cli_env())


def an_application_created_twice(world: World) -> str:
    return command_line_refusal(["admin", "app", "create", "--org", "bank",
                                 "--business-id", "web", "--name", "Again"],
                                env=world.cli_env())


def a_device_frozen_while_its_scan_runs(world: World) -> str:
    """The race made deterministic: the scan gets the device record authentication read,
    and the device is frozen before the deciding statement runs."""
    stack = world.stack
    login, phone = fresh.user_with_phone(stack)
    started, _ = stack.start(login)
    with stack.rt.read() as conn:
        authenticated = directory.get_device(conn, str(phone.device_id))
    with stack.rt.engine.begin() as conn:  # what `qrgate admin device freeze` does
        directory.set_device_frozen(conn, device_id=authenticated.id, frozen=True)
    return raised_code(lambda: verification.scan(stack.rt, code_text=started["code"],
                                                 device=authenticated))


NOT_FROM_THE_API: dict[str, Elsewhere | ElsewhereOnADeployment] = {
    "malformed": ElsewhereOnADeployment(
        "qrgate audit verify --checkpoints FILE (qrgate.core.audit_checkpoint)",
        "audit checkpoints are read by the command line only; no route takes one",
        a_checkpoint_file_that_is_no_export),
    "invalid_field": ElsewhereOnADeployment(
        "qrgate admin (qrgate.core.inputs), settings (qrgate.config), code issuing",
        "the API's wire types hold the same alphabets and bounds, so a request breaking one "
        "is refused first as invalid_request",
        an_organisation_slug_outside_the_alphabet),
    "invalid_amount": ElsewhereOnADeployment(
        "qrgate.confirm.operations.start",
        "the wire type Amount admits only non-negative decimals, and no other caller "
        "starts challenges today: the service's own guard",
        an_amount_that_is_no_number),
    "unreadable_image": ElsewhereOnADeployment(
        "qrgate txsign verify-qr and qrgate phone (qrgate.qrimage, the phone simulator)",
        "images are decoded by the camera side; the API takes code text, never an image",
        a_picture_that_is_no_image),
    "bad_key_material": ElsewhereOnADeployment(
        "start-up: the KEK and key files (qrgate.keystore, qrgate.keys)",
        "a node with bad key material does not start, so it answers nothing",
        a_kek_file_of_the_wrong_size),
    "unsupported_key": Elsewhere(
        "qrgate.core.cose.require_p256, building a key ring",
        "device keys arrive as P-256 points and key files are checked for P-256 before a "
        "ring is built; only a caller of the core could hand it another curve",
        a_p384_signing_key),
    "kid_mismatch": Elsewhere(
        "qrgate.core.keyring (SigningKey, PublicKeySet, KeyRing)",
        "kids are derived from the keys wherever qrgate builds a ring; a JWKS whose kid "
        "lies is bad_jwks",
        a_signing_key_named_after_another),
    "bad_jwks": Elsewhere(
        "qrgate.core.keyring.PublicKeySet.from_jwks: the phone reading /v1/keys",
        "parsing a JWKS is the client's side; the server only publishes its own",
        a_jwks_without_a_key_list),
    "reserved_claim": Elsewhere(
        "qrgate.core.codes.encode_code: issuing a code",
        "the server issues codes from fixed claim sets; no request chooses claim keys",
        a_claim_in_the_common_range),
    "bad_ocra_input": Elsewhere(
        "qrgate.core.ocra (respond, verify_response, resync)",
        "the API's wire types admit only questions and responses the suites fit (hex "
        "digests, 4-10 digits), and stored tokens carry valid state",
        an_ocra_question_that_does_not_fit),
    "api_key_not_found": ElsewhereOnADeployment(
        "qrgate admin apikey revoke", "API keys are managed by operators only",
        an_api_key_prefix_never_issued),
    "conflict": ElsewhereOnADeployment(
        "qrgate admin keys rotate|retire (qrgate.keys)",
        "signing keys are managed by operators only",
        the_active_key_retired),
    "org_exists": ElsewhereOnADeployment(
        "qrgate admin org create", "organisations are created by operators only",
        an_organisation_created_twice),
    "app_exists": ElsewhereOnADeployment(
        "qrgate admin app create", "applications are created by operators only",
        an_application_created_twice),
    "not_bound": ElsewhereOnADeployment(
        "qrgate.confirm.verification: a device unbound or frozen between its "
        "authentication and the deciding statement",
        "authentication refuses a device already unbound or frozen (device_unbound, "
        "frozen); only one that changes mid-request meets this, a race",
        a_device_frozen_while_its_scan_runs),
}


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", THROUGH_THE_API)
def test_each_code_is_answered_through_the_api(code: str, world: World) -> None:
    refusal = THROUGH_THE_API[code]
    answer = refusal.provoke(world)
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE, answer.text
    assert (answer.status_code, answer.json()["code"]) == (refusal.status, code), answer.text


@pytest.mark.parametrize("code", [code for code, source in NOT_FROM_THE_API.items()
                                  if isinstance(source, ElsewhereOnADeployment)])
def test_each_code_off_the_api_is_raised_on_a_deployment(code: str, world: World) -> None:
    source = NOT_FROM_THE_API[code]
    assert isinstance(source, ElsewhereOnADeployment)
    assert source.provoke(world) == code


@pytest.mark.parametrize("code", [code for code, source in NOT_FROM_THE_API.items()
                                  if isinstance(source, Elsewhere)])
def test_each_code_off_the_api_is_raised_by_the_core(code: str) -> None:
    source = NOT_FROM_THE_API[code]
    assert isinstance(source, Elsewhere)
    assert source.provoke() == code


def test_the_tables_hold_exactly_the_codes_qrgate_can_emit() -> None:
    through, elsewhere = set(THROUGH_THE_API), set(NOT_FROM_THE_API)
    assert not through & elsewhere, f"in both tables: {sorted(through & elsewhere)}"
    listed = set(ERROR_CODES)
    assert not listed - through - elsewhere, (
        f"codes without a scenario: {sorted(listed - through - elsewhere)}")
    assert not (through | elsewhere) - listed, (
        f"scenarios for codes no longer in ErrorCode: {sorted((through | elsewhere) - listed)}")


def test_every_listed_code_is_raised_somewhere_in_the_source() -> None:
    dead = set(ERROR_CODES) - codes_raised_in(Path(qrgate.__file__).parent)
    assert not dead, f"listed in ErrorCode but raised nowhere: {sorted(dead)}"


def codes_raised_in(source: Path) -> set[str]:
    """The codes some statement of ``source`` can raise or answer with:

    * a ``code="..."`` argument, or the default of a parameter named ``code``;
    * a class's own ``code: ClassVar[ErrorCode] = "..."``, when the class (or a subclass
      that keeps it) is raised somewhere without naming another code;
    * the HTTP layer's literals: a positional argument of a parameter named ``code``
      (``problem(422, "invalid_request", ...)``), and the values of a module-level mapping
      annotated with ``ErrorCode`` (``{404: "not_found"}``).
    """
    listed = set(ERROR_CODES)

    def literal(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and node.value in listed:
            return str(node.value)
        return None

    modules = [ast.parse(path.read_text()) for path in sorted(source.rglob("*.py"))]
    nodes = [node for module in modules for node in ast.walk(module)]
    raised: set[str] = set()
    code_position: dict[str, int] = {}
    for function in (n for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        arguments = function.args
        positional = [a.arg for a in arguments.posonlyargs + arguments.args]
        if "code" in positional:
            code_position[function.name] = positional.index("code")
        named = positional[len(positional) - len(arguments.defaults):] + [
            a.arg for a in arguments.kwonlyargs]
        for name, default in zip(named, [*arguments.defaults, *arguments.kw_defaults],
                                 strict=True):
            if name == "code" and (found := literal(default)):
                raised.add(found)
    class_code: dict[str, str | None] = {}
    for cls in (n for n in nodes if isinstance(n, ast.ClassDef)):
        own = [literal(item.value) for item in cls.body if isinstance(item, ast.AnnAssign)
               and isinstance(item.target, ast.Name) and item.target.id == "code"]
        inherited = [class_code.get(base.id) for base in cls.bases if isinstance(base, ast.Name)]
        class_code[cls.name] = next((c for c in [*own, *inherited] if c), None)
    for module in modules:
        for statement in module.body:
            if isinstance(statement, ast.AnnAssign) and "ErrorCode" in ast.unparse(
                    statement.annotation):
                raised |= {c for n in ast.walk(statement.value or statement) if (c := literal(n))}
    for call in (n for n in nodes if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        # A class called without ``code=`` raises its own code.
        found = literal(keywords["code"]) if "code" in keywords else class_code.get(str(name))
        if found:
            raised.add(found)
        position = code_position.get(str(name))
        if position is not None and position < len(call.args) and (
                found := literal(call.args[position])):
            raised.add(found)
    return raised
