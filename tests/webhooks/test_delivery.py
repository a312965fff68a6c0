"""Webhooks delivered to a real HTTP receiver, through the real API flows: decisions,
devices and lockouts reach the relying party signed per Standard Webhooks (checked with
the reference library and with the test's own implementation of the standard), retried
until the receiver answers 2xx, always with the same ``webhook-id``."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from qrgate.cli.main import cli
from qrgate.clients.relying_party import ApiError
from qrgate.core.gridcard import Layout
from qrgate.gridcard import cards
from qrgate.storage.models import webhook_events
from support.stack import PASSWORD, Stack
from support.txsign import Platform, enrolled_token
from support.webhook_receiver import Received, Receiver, verify, wait_until

# Nothing a relying party must not see: codes, nonces, numbers, browser tokens, responses.
FORBIDDEN_KEYS = {"code", "code_nonce", "number", "browser_token", "browser_hash", "response",
                  "secret", "chain_code", "otp", "confirm_code"}


def hooked(stack: Stack, receiver: Receiver) -> str:
    """Point the bank's webhook at the receiver; its signing key."""
    created = stack.rp.set_webhook(receiver.url)
    assert created["url"] == receiver.url and created["secret"].startswith("whsec_")
    return str(created["secret"])


def check(secret: str, request: Received, *, stack: Stack) -> dict[str, Any]:
    """The request as a Standard Webhooks receiver checks it; its event."""
    event: dict[str, Any] = Webhook(secret).verify(request.body.decode(), request.headers)
    verify(secret, request, now=stack.clock())
    assert request.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", request.id)
    assert FORBIDDEN_KEYS.isdisjoint(event["data"]), event
    return event


def real_time(stack: Stack) -> Callable[[], None]:
    """Catch the stack's clock up with the real one: the command line stamps its events
    with the real time, which the server's (test) clock must reach for them to be due."""
    def catch_up() -> None:
        stack.clock.now = max(stack.clock.now, time.time())
    return catch_up


def wrong(number: int) -> int:
    return number % 89 + 10


def test_decisions_and_devices_reach_the_receiver_signed(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    secret = hooked(stack, receiver)
    phone = stack.enrolled_phone("alice")
    approved, _ = stack.start("alice", content="to Bob")
    phone.scan_text(approved["code"])
    phone.decide(approved["challenge_id"], approve=True)
    denied, _ = stack.start("alice", operation="login", amount=None, currency=None)
    phone.scan_text(denied["code"])
    phone.decide(denied["challenge_id"], approve=False)
    cancelled, _ = stack.start("alice")
    stack.rp.cancel(cancelled["challenge_id"])
    assert phone.device_id is not None
    stack.rp.unbind_device("alice", phone.device_id)

    wait_until(lambda: len(receiver.delivered()) == 5, what="five events")
    events = [check(secret, request, stack=stack) for request in receiver.delivered()]
    by_type = {event["type"]: event for event in events}
    assert set(by_type) == {"device.added", "confirm.approved", "confirm.denied",
                            "confirm.rejected", "device.removed"}
    assert by_type["confirm.approved"]["data"] == {
        "challenge_id": approved["challenge_id"], "business_id": "web", "login": "alice",
        "state": "approved", "reason": "approved", "verifier": "qr", "operation": "transfer",
        "device_id": phone.device_id, "created_at": approved["created_at"],
        "decided_at": stack.rp.get_challenge(approved["challenge_id"])["decided_at"]}
    assert by_type["confirm.denied"]["data"]["reason"] == "denied_by_user"
    assert by_type["confirm.rejected"]["data"]["challenge_id"] == cancelled["challenge_id"]
    assert by_type["confirm.rejected"]["data"]["reason"] == "cancelled"
    assert by_type["device.added"]["data"]["by"] == "device"
    assert by_type["device.removed"]["data"] == {
        "device_id": phone.device_id, "login": "alice", "name": "phone",
        "client_app_id": "qrgate-phone", "by": "relying_party"}
    # Each event once, each with an id of its own.
    assert len({request.id for request in receiver.delivered()}) == 5
    # The receiver holds a request before the server has read its answer and recorded it.
    wait_until(lambda: len(stack.rp.webhook_deliveries(state="delivered")) == 5,
               what="five deliveries recorded")
    deliveries = stack.rp.webhook_deliveries(state="delivered")
    assert {d["event_id"] for d in deliveries} == {r.id for r in receiver.delivered()}
    assert all(d["attempts"] == 1 and d["last_status"] == 200 for d in deliveries)


def test_lockouts_and_transactions_reach_the_receiver(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True, max_failures=2,
                                 user_max_failures=2)
    secret = hooked(stack, receiver)
    phone = stack.enrolled_phone("alice")
    for _ in range(2):
        started, _ = stack.start("alice", number_matching=True)
        phone.scan_text(started["code"])
        with pytest.raises(ApiError):
            phone.decide(started["challenge_id"], approve=True,
                         number=wrong(started["number"]))
    platform = Platform(stack)
    bob = enrolled_token(stack, platform, "bob")
    signed = platform.start("bob")
    platform.respond(signed["transaction_id"], bob.sign(signed["challenge_code"]))
    spent = platform.start("bob")
    for _ in range(2):
        with pytest.raises(ApiError):
            platform.respond(spent["transaction_id"], "00000000")

    expected = Counter({"device.added": 1, "confirm.rejected": 2, "user.locked": 1,
                        "txsign.signed": 1, "txsign.rejected": 1, "token.locked": 1})
    wait_until(lambda: Counter(r.event["type"] for r in receiver.delivered()) == expected,
               what=f"{expected}")
    events = {e["type"]: e for e in (check(secret, r, stack=stack)
                                     for r in receiver.delivered())}
    assert events["user.locked"]["data"] == {"login": "alice", "reason": "too_many_failures"}
    assert {r.event["data"]["reason"] for r in receiver.of_type("confirm.rejected")} == {
        "number_mismatch"}
    assert events["txsign.signed"]["data"]["transaction_id"] == signed["transaction_id"]
    assert events["txsign.signed"]["data"]["token_id"] == bob.token_id
    assert events["txsign.rejected"]["data"]["transaction_id"] == spent["transaction_id"]
    assert events["txsign.rejected"]["data"]["reason"] == "locked"
    assert events["token.locked"]["data"] == {"token_id": bob.token_id, "login": "bob",
                                              "reason": "too_many_failures"}


def test_a_receiver_that_fails_then_recovers_gets_each_event_until_it_answers(
        stack_factory: Any, receiver: Receiver) -> None:
    failures = 3
    stack: Stack = stack_factory(webhook_allow_loopback=True, webhook_retries=(0.0,) * 5)
    secret = hooked(stack, receiver)
    receiver.script = [500, 503, 502]
    phone = stack.enrolled_phone("alice")  # device.added: its first three attempts fail

    wait_until(lambda: len(receiver.delivered()) == 1, what="the recovered delivery")
    attempts = receiver.received
    assert [r.status for r in attempts] == [500, 503, 502, 200]
    # The same event every time: same id and body, a fresh timestamp and signature.
    assert len({r.id for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1
    for request in attempts:
        check(secret, request, stack=stack)
    # The receiver has the request before the server has read its answer and recorded it.
    wait_until(lambda: stack.rp.webhook_deliveries(state="delivered") != [],
               what="the delivery recorded")
    (delivery,) = stack.rp.webhook_deliveries()
    assert delivery["attempts"] == failures + 1 and delivery["state"] == "delivered"

    # A receiver deduplicating on webhook-id acts once on each event, replay included.
    stack.rp.replay_webhook(delivery["event_id"])
    started, _ = stack.start("alice")
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=True)
    wait_until(lambda: len(receiver.delivered()) == 3, what="the replay and the approval")
    seen: set[str] = set()
    acted = [r.event["type"] for r in receiver.delivered()
             if r.id not in seen and not seen.add(r.id)]  # type: ignore[func-returns-value]
    assert acted == ["device.added", "confirm.approved"]


def test_retries_wait_their_delay_then_fail_for_good(
        stack_factory: Any, receiver: Receiver) -> None:
    """The test clock drives time: a retry comes only once it passed its delay."""
    stack: Stack = stack_factory(webhook_allow_loopback=True, webhook_retries=(30.0, 60.0))
    hooked(stack, receiver)
    receiver.status = 500
    stack.enrolled_phone("alice")
    wait_until(lambda: len(receiver.received) == 1, what="the first attempt")
    wait_until(lambda: [d["attempts"] for d in stack.rp.webhook_deliveries()] == [1],
               what="the first attempt recorded")
    (pending,) = stack.rp.webhook_deliveries(state="pending")
    assert pending["attempts"] == 1 and pending["last_status"] == 500
    assert 30 <= pending["next_attempt_at"] - pending["last_attempt_at"] <= 36
    time.sleep(0.5)
    assert len(receiver.received) == 1  # not before its time
    stack.clock.advance(37)
    wait_until(lambda: len(receiver.received) == 2, what="the second attempt")
    stack.clock.advance(73)
    wait_until(lambda: stack.rp.webhook_deliveries(state="failed") != [],
               what="the event given up")
    (failed,) = stack.rp.webhook_deliveries(state="failed")
    assert failed["attempts"] == 3 and failed["next_attempt_at"] is None
    assert len(receiver.received) == 3


def test_a_receiver_answering_410_gets_no_retry(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True, webhook_retries=(0.0,) * 5)
    hooked(stack, receiver)
    receiver.status = 410
    stack.enrolled_phone("alice")
    wait_until(lambda: stack.rp.webhook_deliveries(state="failed") != [], what="the failure")
    assert [r.status for r in receiver.received] == [410]


def test_a_rotated_key_signs_beside_the_old_one(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    old = hooked(stack, receiver)
    rotated = stack.rp.rotate_webhook_secret()
    new = rotated["secret"]
    assert new != old and rotated["previous_secret_expires_at"] > stack.clock()
    assert stack.rp.get_webhook()["secret"] is None
    stack.enrolled_phone("alice")
    wait_until(lambda: len(receiver.delivered()) == 1, what="the event")
    (request,) = receiver.delivered()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    check(old, request, stack=stack)
    check(new, request, stack=stack)


def test_the_webhook_is_managed_through_the_api(stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    with pytest.raises(ApiError) as caught:
        stack.rp.get_webhook()
    assert (caught.value.status, caught.value.code) == (404, "webhook_not_found")
    secret = hooked(stack, receiver)
    moved = stack.rp.set_webhook(receiver.url + "/v2")
    assert moved["secret"] is None and moved["url"] == receiver.url + "/v2"
    assert stack.rp.get_webhook()["url"] == receiver.url + "/v2"
    stack.enrolled_phone("alice")
    wait_until(lambda: len(receiver.delivered()) == 1, what="the event")
    check(secret, receiver.delivered()[0], stack=stack)  # the key stayed
    stack.rp.delete_webhook()
    assert stack.rp.webhook_deliveries() == []  # its events went with it
    stack.enrolled_phone("bob")
    with pytest.raises(ApiError) as caught:
        stack.rp.get_webhook()
    assert caught.value.code == "webhook_not_found"
    with stack.rt.read() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar() == 0


def test_replay_through_the_api_and_the_command_line(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True, webhook_retries=(0.0,))
    secret = hooked(stack, receiver)
    receiver.status = 500
    stack.enrolled_phone("alice")
    wait_until(lambda: stack.rp.webhook_deliveries(state="failed") != [], what="the failure")
    (failed,) = stack.rp.webhook_deliveries(state="failed")
    assert failed["attempts"] == 2 and failed["last_status"] == 500

    receiver.status = 200
    replayed = stack.rp.replay_webhook(failed["event_id"])
    assert replayed["state"] == "pending" and replayed["attempts"] == 0
    wait_until(lambda: len(receiver.delivered()) == 1, what="the replayed event")
    assert receiver.delivered()[0].id == failed["event_id"]
    check(secret, receiver.delivered()[0], stack=stack)

    settings = stack.rt.settings
    env = {"QRGATE_DATA_DIR": str(settings.data_dir),
           "QRGATE_DATABASE_URL": settings.resolved_database_url}
    listed = CliRunner().invoke(cli, ["admin", "webhook", "deliveries", "--org", "bank",
                                      "--business-id", "web"], env=env)
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["event_id"], row["org"], row["business_id"], row["state"]) == (
        failed["event_id"], "bank", "web", "delivered")
    result = CliRunner().invoke(cli, ["admin", "webhook", "replay", failed["event_id"]],
                                env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "pending"
    # On SQLite the server hears of it at its next poll; PostgreSQL tells it at once.
    wait_until(lambda: len(receiver.delivered()) == 2, timeout=20, advance=real_time(stack),
               what="the CLI's replay")
    assert {r.id for r in receiver.delivered()} == {failed["event_id"]}


def test_events_of_a_user_go_to_every_application_of_the_organisation(
        stack_factory: Any, receiver: Receiver) -> None:
    """Devices and lockouts belong to the organisation's user; decisions to their app."""
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    hooked(stack, receiver)
    second = Receiver().start()
    try:
        settings = stack.rt.settings
        env = {"QRGATE_DATA_DIR": str(settings.data_dir),
               "QRGATE_DATABASE_URL": settings.resolved_database_url,
               "QRGATE_WEBHOOK_ALLOW_LOOPBACK": "on"}
        for args in (["app", "create", "--org", "bank", "--business-id", "app2",
                      "--name", "Mobile"],
                     ["webhook", "set", "--org", "bank", "--business-id", "app2",
                      "--url", second.url]):
            result = CliRunner().invoke(cli, ["admin", *args], env=env)
            assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["secret"].startswith("whsec_")
        phone = stack.enrolled_phone("alice")
        started, _ = stack.start("alice")
        phone.scan_text(started["code"])
        phone.decide(started["challenge_id"], approve=True)
        # And an operator's freeze: the user's event, and the end of open challenges.
        stack.start("alice")
        frozen = CliRunner().invoke(cli, ["admin", "user", "freeze", "--org", "bank",
                                          "--login", "alice"], env=env)
        assert frozen.exit_code == 0, frozen.output
        wait_until(lambda: len(receiver.delivered()) == 4 and len(second.delivered()) == 2,
                   timeout=20, advance=real_time(stack), what="both receivers' events")
        assert sorted(r.event["type"] for r in receiver.delivered()) == [
            "confirm.approved", "confirm.rejected", "device.added", "user.frozen"]
        assert sorted(r.event["type"] for r in second.delivered()) == [
            "device.added", "user.frozen"]
        # One event, one row per application: each has an id of its own.
        assert not {r.id for r in receiver.delivered()} & {r.id for r in second.delivered()}
        rejected = receiver.of_type("confirm.rejected")[0].event["data"]
        assert rejected["reason"] == "user_frozen"
    finally:
        second.stop()


def test_an_application_without_a_webhook_records_nothing(stack: Stack) -> None:
    phone = stack.enrolled_phone("alice")
    started, _ = stack.start("alice")
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=True)
    assert stack.rp.webhook_deliveries() == []


def test_logs_carry_no_key_no_signature_and_no_url(
        stack_factory: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True, webhook_retries=(0.0,))
    caplog.set_level(logging.DEBUG)
    secret = stack.rp.set_webhook(receiver.url + "?token=s3cr3t-in-the-url")["secret"]
    receiver.script = [500]
    stack.enrolled_phone("alice")
    wait_until(lambda: len(receiver.delivered()) == 1, what="the event")
    logged = "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    assert "webhook" in logged and receiver.delivered()[0].id in logged  # it did log
    signatures = [part.split(",", 1)[1] for r in receiver.received
                  for part in r.headers["webhook-signature"].split(" ")]
    for needle in [secret, secret.removeprefix("whsec_"), "s3cr3t-in-the-url", *signatures]:
        assert needle not in logged


def test_the_command_line_refuses_in_one_line(stack: Stack) -> None:
    settings = stack.rt.settings
    env = {"QRGATE_DATA_DIR": str(settings.data_dir),
           "QRGATE_DATABASE_URL": settings.resolved_database_url}
    cases = [
        (["set", "--org", "bank", "--business-id", "web", "--url", "http://hooks.bank.example/"],
         "bad_webhook_url"),
        (["show", "--org", "bank", "--business-id", "web"], "webhook_not_found"),
        (["rotate-secret", "--org", "bank", "--business-id", "web"], "webhook_not_found"),
        (["delete", "--org", "bank", "--business-id", "nowhere"], "app_not_found"),
        (["replay", "0" * 32], "event_not_found"),
        (["replay", "not-an-id"], "invalid_field"),
    ]
    for args, code in cases:
        result = CliRunner().invoke(cli, ["admin", "webhook", *args], env=env)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(f"qrgate: error: {code}: "), (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_a_receiver_that_does_not_answer_never_holds_a_decision(
        stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    hooked(stack, receiver)
    receiver.open.clear()  # the receiver takes requests and answers none, for now
    phone = stack.enrolled_phone("alice")
    wait_until(lambda: receiver.in_flight() >= 1, what="a delivery held by the receiver")
    for _ in range(3):
        started, _ = stack.start("alice")
        phone.scan_text(started["code"])
        # Decided while a delivery hangs on the receiver: delivery runs apart from it.
        assert phone.decide(started["challenge_id"], approve=True)["state"] == "approved"
        assert receiver.in_flight() >= 1
    receiver.open.set()
    wait_until(lambda: len(receiver.delivered()) == 4, timeout=30, what="the held deliveries")


def test_grid_card_attempts_reach_the_receiver(stack_factory: Any, receiver: Receiver) -> None:
    stack: Stack = stack_factory(webhook_allow_loopback=True)
    secret = hooked(stack, receiver)
    issued = cards.run_issue(stack.rt, org_slug="bank", login="alice", layout=Layout(),
                             ttl_days=30, issuer="operator", actor="test")
    cells = {cell.position.label: cell.content for cell in issued.card.cells}
    authenticated = stack.rp.start_gridcard("alice", PASSWORD)
    token = {"qrgate-attempt-token": authenticated["answer_token"]}
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        answered = http.post(f"/v1/gridcard/attempts/{authenticated['attempt_id']}/answer",
                             json={"cell": cells[authenticated["position"]]}, headers=token)
        assert answered.status_code == 200, answered.text
        superseded = stack.rp.start_gridcard("alice", PASSWORD)
        cancelled = stack.rp.start_gridcard("alice", PASSWORD)  # supersedes the one before
        http.post(f"/v1/gridcard/attempts/{cancelled['attempt_id']}/cancel",
                  headers={"Authorization": f"Bearer {stack.api_key}"})

    wait_until(lambda: len(receiver.delivered()) == 3, what="three events")
    events = [check(secret, request, stack=stack) for request in receiver.delivered()]
    assert {(e["type"], e["data"]["attempt_id"], e["data"]["reason"]) for e in events} == {
        ("gridcard.authenticated", authenticated["attempt_id"], "authenticated"),
        ("gridcard.failed", superseded["attempt_id"], "superseded"),
        ("gridcard.failed", cancelled["attempt_id"], "cancelled")}
    by_type = {e["type"]: e for e in events}
    assert by_type["gridcard.authenticated"]["data"] == {
        "attempt_id": authenticated["attempt_id"], "login": "alice", "operation": "login",
        "state": "authenticated", "reason": "authenticated",
        "position": authenticated["position"], "created_at": authenticated["created_at"],
        "decided_at": stack.clock()}
