""""This wasn't me" (``qrgate.accounts.reports``): a phone's denial that reports, or a relying
party passing a report on, ends the user's other open work, pauses new challenges and
transactions for ``QRGATE_REPORT_BLOCK_SECONDS``, is audited and reaches the relying party
as ``report.created``; the pause ends by itself or when lifted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from qrgate.cli.main import cli
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import ApiError
from qrgate.storage.models import audit_log, reports
from support.stack import Clock, Stack
from support.txsign import Platform, enrolled_token
from support.webhook_receiver import Receiver, wait_until

BLOCK = 600


@pytest.fixture
def clock() -> Clock:
    # The receiver checks webhook timestamps against its own clock.
    return Clock(time.time())


@pytest.fixture
def receiver() -> Any:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def reporting(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory(report_block_seconds=BLOCK, webhook_allow_loopback=True)


def refusal(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value.status, caught.value.code


def reported_by_phone(stack: Stack, phone: PhoneSimulator) -> dict[str, Any]:
    started, _ = stack.start("alice", content="to Mallory")
    phone.scan_text(started["code"])
    return phone.decide(started["challenge_id"], approve=False, report=True)


def test_a_phone_reports_and_new_challenges_pause(reporting: Stack, receiver: Receiver) -> None:
    stack = reporting
    stack.rp.set_webhook(receiver.url)
    phone = stack.enrolled_phone("alice")
    earlier, earlier_browser = stack.start("alice", content="another open one")
    decided = reported_by_phone(stack, phone)
    assert (decided["state"], decided["reason"]) == ("denied", "reported_by_user")

    # The other open challenge ended at once; the waiting browser hears it.
    assert earlier_browser.status()["state"] == "rejected"
    assert stack.rp.get_challenge(earlier["challenge_id"])["reason"] == "user_reported"
    assert refusal(stack.start, "alice") == (423, "user_blocked")
    blocked_until = stack.rp.get_user("alice")["blocked_until"]
    assert blocked_until == pytest.approx(stack.clock() + BLOCK)
    # Only the reporting user pauses.
    stack.enrolled_phone("bob")
    stack.start("bob")

    wait_until(lambda: receiver.of_type("report.created"), what="report.created")
    [event] = [r.event for r in receiver.of_type("report.created")]
    assert event["data"] == {
        "report_id": event["data"]["report_id"], "login": "alice", "scheme": "confirm",
        "challenge_id": decided["challenge_id"], "transaction_id": None,
        "device_id": phone.device_id, "reported_at": pytest.approx(stack.clock()),
        "blocked_until": pytest.approx(blocked_until)}
    wait_until(lambda: len(receiver.of_type("confirm.rejected")) == 1, what="the ended one")

    # The pause ends by itself.
    stack.clock.advance(BLOCK + 1)
    started, _ = stack.start("alice")
    assert started["state"] == "pending"


def test_the_report_is_recorded_and_audited(reporting: Stack) -> None:
    phone = reporting.enrolled_phone("alice")
    decided = reported_by_phone(reporting, phone)
    with reporting.rt.read() as conn:
        row = conn.execute(select(reports)).one()
        entry = conn.execute(select(audit_log).where(
            audit_log.c.challenge_id == decided["challenge_id"],
            audit_log.c.event == "confirm.deny")).one()
    assert (row.scheme, row.challenge_id, row.device_id) == (
        "confirm", decided["challenge_id"], phone.device_id)
    assert row.blocked_until == pytest.approx(reporting.clock() + BLOCK)
    assert entry.reason == "reported_by_user"
    assert entry.detail["report_id"] == row.id


def test_a_retried_report_is_one_report(reporting: Stack) -> None:
    phone = reporting.enrolled_phone("alice")
    decided = reported_by_phone(reporting, phone)
    again = phone.decide(decided["challenge_id"], approve=False, report=True)
    assert again["state"] == "denied"
    with reporting.rt.read() as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar() == 1
    # A plain denial of a reported challenge is another decision: refused.
    assert refusal(phone.decide, decided["challenge_id"], approve=False) == (
        409, "already_decided")


def test_a_report_goes_with_a_denial_only(reporting: Stack) -> None:
    phone = reporting.enrolled_phone("alice")
    started, _ = reporting.start("alice")
    phone.scan_text(started["code"])
    response = phone._signed("POST", f"/v1/confirm/challenges/{started['challenge_id']}"
                             "/decision", {"decision": "approve", "report": True})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    response = phone._signed("POST", f"/v1/confirm/challenges/{started['challenge_id']}"
                             "/decision", {"decision": "deny", "report": "yes"})
    assert response.status_code == 422
    # Nothing happened: the challenge still waits for a decision.
    assert reporting.rp.get_challenge(started["challenge_id"])["state"] == "scanned"


def test_a_plain_denial_pauses_nothing(reporting: Stack) -> None:
    phone = reporting.enrolled_phone("alice")
    started, _ = reporting.start("alice")
    phone.scan_text(started["code"])
    assert phone.decide(started["challenge_id"], approve=False)["reason"] == "denied_by_user"
    reporting.start("alice")
    assert reporting.rp.get_user("alice")["blocked_until"] is None


def test_a_relying_party_passes_on_a_transaction_report(reporting: Stack) -> None:
    """Scheme E's responses are typed, never sent by the phone: the bank reports for it."""
    platform = Platform(reporting)
    enrolled_token(reporting, platform, "bob")
    pending = platform.start("bob")
    filed = reporting.rp.report("bob", transaction_id=pending["transaction_id"])
    assert (filed["scheme"], filed["transaction_id"], filed["challenge_id"]) == (
        "txsign", pending["transaction_id"], None)
    assert platform.call("GET", f"/v1/txsign/transactions/{pending['transaction_id']}")[
        "state"] == "rejected"
    assert refusal(platform.start, "bob") == (423, "user_blocked")
    assert refusal(reporting.start, "bob") == (423, "user_blocked")

    lifted = reporting.rp.lift_block("bob")
    assert lifted["blocked_until"] is None
    platform.start("bob")


def test_a_report_names_only_the_users_own_requests(reporting: Stack) -> None:
    reporting.enrolled_phone("alice")
    reporting.enrolled_phone("bob")
    started, _ = reporting.start("alice")
    assert refusal(reporting.rp.report, "bob", challenge_id=started["challenge_id"]) == (
        404, "challenge_not_found")
    assert refusal(reporting.rp.report, "bob", transaction_id="0" * 32) == (
        404, "transaction_not_found")
    assert refusal(reporting.rp.report, "nobody") == (404, "user_not_found")
    # A report with no request named (the user called the help desk) still pauses.
    assert reporting.rp.report("bob")["scheme"] == "confirm"
    assert refusal(reporting.start, "bob") == (423, "user_blocked")


def test_with_no_pause_configured_a_report_is_only_recorded(
        stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(report_block_seconds=0)
    phone = stack.enrolled_phone("alice")
    stack.enrolled_phone("bob")
    reported_by_phone(stack, phone)
    stack.start("alice")
    assert stack.rp.get_user("alice")["blocked_until"] is None


def test_an_operator_lifts_the_pause(reporting: Stack) -> None:
    reporting.enrolled_phone("alice")
    reporting.rp.report("alice")
    settings = reporting.rt.settings
    env = {"QRGATE_DATA_DIR": str(settings.data_dir),
           "QRGATE_DATABASE_URL": settings.resolved_database_url}
    listed = CliRunner().invoke(cli, ["admin", "user", "list", "--org", "bank"], env=env)
    assert listed.exit_code == 0, listed.output
    [alice] = [u for u in json.loads(listed.output) if u["login"] == "alice"]
    assert alice["blocked_until"] is not None
    result = CliRunner().invoke(cli, ["admin", "user", "unblock", "--org", "bank",
                                      "--login", "alice"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"login": "alice", "blocked_until": None}
    reporting.start("alice")
