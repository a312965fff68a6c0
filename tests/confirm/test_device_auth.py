"""Device request signatures over real HTTP (``qrgate.core.device_auth``,
``qrgate.http.auth``): every request a phone makes is refused unless its own device key
signed exactly this method, path, query, body and time, for a device that is still bound
and not frozen; a captured request replayed inside the clock skew only meets single-use
state transitions, or is recognised as the same request and changes nothing.

Requests are built by hand here (not through the phone simulator) so that a test can sign
one thing and send another, or leave a header out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.cli.main import cli
from qrgate.clients.phone import PhoneSimulator
from qrgate.confirm import repository
from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    public_key_bytes,
    request_target,
    sign_request,
)
from qrgate.storage.audit import search_audit
from support.stack import PASSWORD, Stack

SKEW = 30  # QRGATE_DEVICE_CLOCK_SKEW of these tests (the default is 120)


@pytest.fixture
def stack(stack_factory: Any) -> Stack:
    built: Stack = stack_factory(device_clock_skew=SKEW)
    return built


@dataclass(frozen=True)
class DeviceRequest:
    method: str
    path: str
    query: str = ""
    body: bytes = b""

    @property
    def target(self) -> str:
        return request_target(self.path, self.query)


def json_body(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def scan_request(started: dict[str, Any]) -> DeviceRequest:
    return DeviceRequest("POST", "/v1/confirm/scan", body=json_body({"code": started["code"]}))


def decision_request(started: dict[str, Any], decision: str = "approve") -> DeviceRequest:
    return DeviceRequest("POST", f"/v1/confirm/challenges/{started['challenge_id']}/decision",
                         body=json_body({"decision": decision}))


ME = DeviceRequest("GET", "/v1/devices/me")
HISTORY = DeviceRequest("GET", "/v1/devices/me/history", query="q=transfer")


def signature_headers(request: DeviceRequest, *, key: ec.EllipticCurvePrivateKey,
                      device_id: str, timestamp: int) -> dict[str, str]:
    signature = sign_request(private_key=key, method=request.method, path=request.target,
                             timestamp=timestamp, device_id=device_id, body=request.body)
    return {DEVICE_HEADER: device_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature}


def send(stack: Stack, request: DeviceRequest, headers: dict[str, str]) -> httpx.Response:
    if request.body:
        headers = {**headers, "content-type": "application/json"}
    with httpx.Client(base_url=stack.base_url) as http:
        return http.request(request.method, request.target, content=request.body,
                            headers=headers)


def signed_by(stack: Stack, phone: PhoneSimulator, request: DeviceRequest,
              *, offset: int = 0) -> dict[str, str]:
    """Headers as ``phone`` signs ``request`` now (plus ``offset`` seconds)."""
    assert phone.device_id is not None
    return signature_headers(request, key=phone.private_key, device_id=phone.device_id,
                             timestamp=int(stack.clock()) + offset)


def problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.status_code, response.text)
    return response.status_code, response.json()["code"]


def challenge(stack: Stack, challenge_id: str) -> repository.ChallengeRow:
    with stack.rt.read() as conn:
        return repository.load(conn, challenge_id)


def audit_of(stack: Stack, challenge_id: str) -> list[tuple[str, str]]:
    with stack.rt.read() as conn:
        entries = search_audit(conn, challenge_id=challenge_id)
    return [(entry["event"], entry["reason"]) for entry in reversed(entries)]


def device_auth_refusals(stack: Stack) -> list[tuple[str, str | None]]:
    with stack.rt.read() as conn:
        entries = search_audit(conn, event="device.auth")
    return [(entry["reason"], entry["device_id"]) for entry in reversed(entries)]


def operator(stack: Stack, *args: str) -> None:
    """``qrgate`` on the command line, against this stack's data and database."""
    settings = stack.rt.settings
    env = {"QRGATE_DATA_DIR": str(settings.data_dir),
           "QRGATE_DATABASE_URL": settings.resolved_database_url}
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output


def scanned_and_pending(stack: Stack, phone: PhoneSimulator
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One challenge the phone scanned (waiting for its decision), one still pending."""
    scanned, _ = stack.start()
    phone.scan_text(scanned["code"])
    pending, _ = stack.start()
    return scanned, pending


def every_device_request(scanned: dict[str, Any], pending: dict[str, Any]
                         ) -> Iterator[tuple[str, DeviceRequest]]:
    yield "scan", scan_request(pending)
    yield "decision", decision_request(scanned)
    yield "me", ME
    yield "history", HISTORY


def assert_untouched(stack: Stack, scanned: dict[str, Any], pending: dict[str, Any]) -> None:
    assert challenge(stack, scanned["challenge_id"]).state == "scanned"
    assert challenge(stack, pending["challenge_id"]).state == "pending"
    assert challenge(stack, scanned["challenge_id"]).attempts == 0
    assert challenge(stack, pending["challenge_id"]).attempts == 0


# --- whose key --------------------------------------------------------------------------------


def test_a_signature_by_another_key_for_the_same_device_id_is_refused(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    scanned, pending = scanned_and_pending(stack, phone)
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert phone.device_id is not None
    for name, request in every_device_request(scanned, pending):
        headers = signature_headers(request, key=impostor, device_id=phone.device_id,
                                    timestamp=int(stack.clock()))
        assert problem(send(stack, request, headers)) == (401, "bad_signature"), name
    assert_untouched(stack, scanned, pending)
    # Refused before any challenge was looked at, and audited against the device named.
    assert device_auth_refusals(stack) == [("bad_signature", phone.device_id)]
    # The phone's own key still works for the very same requests.
    assert send(stack, ME, signed_by(stack, phone, ME)).json()["device_id"] == phone.device_id
    approved = send(stack, decision_request(scanned), signed_by(stack, phone,
                                                                decision_request(scanned)))
    assert approved.json()["state"] == "approved"


def test_an_unknown_device_id_is_refused(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    request = scan_request(started)
    headers = signature_headers(request, key=phone.private_key, device_id="0" * 32,
                                timestamp=int(stack.clock()))
    assert problem(send(stack, request, headers)) == (401, "unknown_device")
    assert challenge(stack, started["challenge_id"]).state == "pending"


# --- frozen and unbound devices ---------------------------------------------------------------


def test_a_frozen_device_is_refused_everywhere_until_unfrozen(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    scanned, pending = scanned_and_pending(stack, phone)
    assert phone.device_id is not None
    operator(stack, "admin", "device", "freeze", phone.device_id)
    for name, request in every_device_request(scanned, pending):
        refused = send(stack, request, signed_by(stack, phone, request))
        assert problem(refused) == (423, "frozen"), name
    assert_untouched(stack, scanned, pending)
    assert device_auth_refusals(stack) == [("frozen", phone.device_id)]
    # Frozen is suspended, not gone: unfrozen, the same phone carries on where it stopped.
    operator(stack, "admin", "device", "unfreeze", phone.device_id)
    assert phone.decide(scanned["challenge_id"], approve=True)["state"] == "approved"


@pytest.mark.parametrize("by", ["device", "relying_party"])
def test_an_unbound_device_is_refused_everywhere(stack: Stack, by: str) -> None:
    phone = stack.enrolled_phone()
    stack.enrolled_phone(name="spare")  # alice keeps a phone: her challenges go on
    scanned, pending = scanned_and_pending(stack, phone)
    assert phone.device_id is not None
    if by == "device":
        assert phone.unbind()["status"] == "unbound"
    else:
        assert stack.rp.unbind_device("alice", phone.device_id)["status"] == "unbound"
    for name, request in every_device_request(scanned, pending):
        refused = send(stack, request, signed_by(stack, phone, request))
        assert problem(refused) == (401, "device_unbound"), name
    assert_untouched(stack, scanned, pending)
    assert device_auth_refusals(stack) == [("device_unbound", phone.device_id)]


# --- enrolment: proof of possession -----------------------------------------------------------


def enrol_request(enrolment: dict[str, Any], public_key: ec.EllipticCurvePublicKey
                  ) -> DeviceRequest:
    public = base64.urlsafe_b64encode(public_key_bytes(public_key)).rstrip(b"=").decode()
    return DeviceRequest("POST", "/v1/devices", body=json_body({
        "code": enrolment["code"], "public_key": public, "name": "phone",
        "password": PASSWORD}))


def test_enrolment_signed_by_another_key_than_the_one_it_binds_is_refused(
        stack: Stack) -> None:
    """Whoever sends a public key must prove they hold its private key: a key copied from
    someone else cannot be bound, even with the right code and password."""
    enrolment = stack.rp.start_enrolment("alice")
    bound_key = ec.generate_private_key(ec.SECP256R1())
    signing_key = ec.generate_private_key(ec.SECP256R1())
    request = enrol_request(enrolment, bound_key.public_key())
    headers = signature_headers(request, key=signing_key, device_id="new",
                                timestamp=int(stack.clock()))
    assert problem(send(stack, request, headers)) == (401, "bad_signature")
    # The key of the body signing for the other key's body is refused the same way.
    other = enrol_request(enrolment, signing_key.public_key())
    headers = signature_headers(other, key=bound_key, device_id="new",
                                timestamp=int(stack.clock()))
    assert problem(send(stack, other, headers)) == (401, "bad_signature")
    assert stack.rp.list_devices("alice") == []
    # Nothing was spent: the holder of the key binds it with the same code.
    headers = signature_headers(request, key=bound_key, device_id="new",
                                timestamp=int(stack.clock()))
    bound = send(stack, request, headers)
    assert bound.status_code == 201, bound.text
    assert [d["device_id"] for d in stack.rp.list_devices("alice")] == [bound.json()[
        "device_id"]]


# --- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-SKEW - 1, SKEW + 1], ids=["behind", "ahead"])
def test_a_timestamp_outside_the_clock_skew_is_stale(stack: Stack, offset: int) -> None:
    phone = stack.enrolled_phone()
    scanned, pending = scanned_and_pending(stack, phone)
    for name, request in every_device_request(scanned, pending):
        stale = send(stack, request, signed_by(stack, phone, request, offset=offset))
        assert problem(stale) == (401, "stale_request"), name
    assert_untouched(stack, scanned, pending)
    assert device_auth_refusals(stack) == [("stale_request", phone.device_id)]


@pytest.mark.parametrize("offset", [-SKEW, SKEW], ids=["behind", "ahead"])
def test_a_timestamp_at_the_edge_of_the_clock_skew_is_accepted(stack: Stack,
                                                                offset: int) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    scanned = send(stack, scan_request(started),
                   signed_by(stack, phone, scan_request(started), offset=offset))
    assert scanned.status_code == 200, scanned.text
    decided = send(stack, decision_request(started),
                   signed_by(stack, phone, decision_request(started), offset=offset))
    assert decided.json()["state"] == "approved"


def test_a_captured_scan_replayed_within_the_skew_is_the_same_scan(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    request = scan_request(started)
    captured = signed_by(stack, phone, request)
    first = send(stack, request, captured)
    assert first.status_code == 200
    stack.clock.advance(SKEW - 1)
    replayed = send(stack, request, captured)
    assert (replayed.status_code, replayed.json()) == (200, first.json())
    row = challenge(stack, started["challenge_id"])
    assert (row.state, row.device_id, row.attempts) == ("scanned", phone.device_id, 0)
    assert audit_of(stack, started["challenge_id"]) == [("confirm.start", "started"),
                                                       ("confirm.scan", "scanned")]
    # Once decided, the same captured scan meets a transition that is spent.
    phone.decide(started["challenge_id"], approve=True)
    assert problem(send(stack, request, captured)) == (409, "already_decided")
    row = challenge(stack, started["challenge_id"])
    assert (row.state, row.attempts) == ("approved", 0)
    # Past the skew, the capture is worth nothing at all.
    stack.clock.advance(2)
    assert problem(send(stack, request, captured)) == (401, "stale_request")


def test_a_captured_decision_replayed_within_the_skew_is_the_same_decision(
        stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    request = decision_request(started, "deny")
    captured = signed_by(stack, phone, request)
    first = send(stack, request, captured)
    assert first.json()["state"] == "denied"
    stack.clock.advance(SKEW - 1)
    replayed = send(stack, request, captured)
    assert (replayed.status_code, replayed.json()) == (200, first.json())
    row = challenge(stack, started["challenge_id"])
    assert (row.state, row.reason, row.attempts) == ("denied", "denied_by_user", 0)
    assert audit_of(stack, started["challenge_id"]) == [
        ("confirm.start", "started"), ("confirm.scan", "scanned"),
        ("confirm.deny", "denied_by_user")]
    # The same phone cannot turn it into an approval afterwards.
    error = send(stack, decision_request(started), signed_by(stack, phone,
                                                              decision_request(started)))
    assert problem(error) == (409, "already_decided")


def test_captured_unbind_and_enrolment_replayed_meet_spent_transitions(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    stack.enrolled_phone(name="spare")
    unbind = DeviceRequest("DELETE", "/v1/devices/me")
    captured = signed_by(stack, phone, unbind)
    assert send(stack, unbind, captured).json()["status"] == "unbound"
    assert problem(send(stack, unbind, captured)) == (401, "device_unbound")

    enrolment = stack.rp.start_enrolment("bob")
    key = ec.generate_private_key(ec.SECP256R1())
    enrol = enrol_request(enrolment, key.public_key())
    captured = signature_headers(enrol, key=key, device_id="new", timestamp=int(stack.clock()))
    assert send(stack, enrol, captured).status_code == 201
    assert problem(send(stack, enrol, captured)) == (409, "replayed")
    assert len(stack.rp.list_devices("bob")) == 1


# --- what the signature covers ----------------------------------------------------------------


def test_a_signature_over_another_request_is_refused(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    approve, deny = decision_request(started, "approve"), decision_request(started, "deny")
    history_bob = replace(HISTORY, query="q=bob")
    moves = {
        # a deny signed, an approval sent: the body is covered
        "body": (approve, signed_by(stack, phone, deny)),
        # a read of the device signed, an unbinding sent: the method is covered
        "method": (DeviceRequest("DELETE", "/v1/devices/me"), signed_by(stack, phone, ME)),
        # signed for /me, sent to /me/history: the path is covered
        "path": (replace(HISTORY, query=""), signed_by(stack, phone, ME)),
        # signed for one search, sent with another: the query is covered
        "query": (HISTORY, signed_by(stack, phone, history_bob)),
        # signed for another challenge's decision
        "challenge": (decision_request({"challenge_id": "0" * 32}),
                      signed_by(stack, phone, approve)),
    }
    for name, (sent, headers) in moves.items():
        assert problem(send(stack, sent, headers)) == (401, "bad_signature"), name
    # The time is covered too: the same signature with another timestamp in the skew.
    moved = dict(signed_by(stack, phone, approve))
    moved[TIMESTAMP_HEADER] = str(int(moved[TIMESTAMP_HEADER]) - 1)
    assert problem(send(stack, approve, moved)) == (401, "bad_signature")
    row = challenge(stack, started["challenge_id"])
    assert (row.state, row.attempts) == ("scanned", 0)
    assert send(stack, ME, signed_by(stack, phone, ME)).json()["status"] == "active"


@pytest.mark.parametrize("missing", [DEVICE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_each_missing_header_is_refused(stack: Stack, missing: str) -> None:
    phone = stack.enrolled_phone()
    scanned, pending = scanned_and_pending(stack, phone)
    for name, request in every_device_request(scanned, pending):
        headers = signed_by(stack, phone, request)
        del headers[missing]
        assert problem(send(stack, request, headers)) == (401, "missing_signature"), name
    assert_untouched(stack, scanned, pending)


@pytest.mark.parametrize("timestamp", ["", "soon", "1.8e9", "12 34"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stack: Stack, timestamp: str) -> None:
    phone = stack.enrolled_phone()
    headers = {**signed_by(stack, phone, ME), TIMESTAMP_HEADER: timestamp}
    assert problem(send(stack, ME, headers)) == (401, "missing_signature")
