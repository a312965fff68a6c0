"""Review 2: freezing a user stops every decision at once, on every node: challenges and
transactions started before the freeze, scanned or not, can no longer be decided."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection

from qrgate.accounts import directory
from qrgate.cli.main import cli
from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from qrgate.freeze import set_user_frozen
from support.stack import Stack
from support.txsign import Platform, enrolled_token


def alice_of(conn: Connection, login: str = "alice") -> directory.UserRecord:
    return directory.find_user(conn, org_id=directory.org_id_by_slug(conn, "bank"), login=login)


def freeze(stack: Stack, login: str = "alice") -> None:
    """What ``qrgate admin user freeze`` does, against this deployment's database."""
    with stack.rt.engine.begin() as conn:
        user = alice_of(conn, login)
        set_user_frozen(stack.rt, conn, user_id=user.id, frozen=True, now=stack.clock())


def refused(action: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value


def test_review_2_frozen_user_cannot_scan_a_challenge_started_before(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    freeze(stack)
    error = refused(lambda: phone.scan_text(started["code"]))
    assert error.status in (409, 423), error.code
    status = browser.status()
    assert (status["state"], status["reason"]) == ("rejected", "user_frozen")


def test_review_2_frozen_user_cannot_approve_a_scanned_challenge_on_another_node(
        stack_factory: Any) -> None:
    first: Stack = stack_factory()
    second: Stack = stack_factory(join=first)
    phone = first.enrolled_phone()
    started, _ = first.start()
    phone.scan_text(started["code"])
    freeze(second)
    error = refused(lambda: phone.decide(started["challenge_id"], approve=True))
    assert error.code in ("frozen", "already_decided")
    assert first.rp.get_challenge(started["challenge_id"])["state"] == "rejected"


def test_review_2_frozen_user_cannot_sign_a_transaction_started_before(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    started = platform.start("alice")
    response = alice.sign(started["challenge_code"])
    freeze(stack)
    error = refused(lambda: platform.respond(started["transaction_id"], response))
    assert error.status in (409, 423), error.code
    assert platform.call("GET", f"/v1/txsign/transactions/{started['transaction_id']}")[
        "state"] == "rejected"


def test_review_2_the_decision_statement_itself_checks_the_freeze(stack: Stack) -> None:
    """A freeze committed between a decision's read and its write still stops it: the check
    is inside the conditional UPDATE, not a read before it."""
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    with stack.rt.engine.begin() as conn:
        user = alice_of(conn)
        directory.set_frozen(conn, user_id=user.id, frozen=True, now=stack.clock())
        decided = repository.decide(conn, challenge_id=started["challenge_id"],
                                    device_id=str(phone.device_id),
                                    state=repository.ConfirmState.APPROVED,
                                    reason="approved", now=stack.clock())
    assert decided is None
    error = refused(lambda: phone.decide(started["challenge_id"], approve=True))
    assert (error.status, error.code) == (423, "frozen")


def test_review_2_unfrozen_user_works_again(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    freeze(stack)
    with stack.rt.engine.begin() as conn:
        user = alice_of(conn)
        set_user_frozen(stack.rt, conn, user_id=user.id, frozen=False, now=stack.clock())
    started, _ = stack.start()
    phone.scan_text(started["code"])
    assert phone.decide(started["challenge_id"], approve=True)["state"] == "approved"


def test_review_2_the_freeze_command_stops_a_waiting_confirmation(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    env = {"QRGATE_DATA_DIR": str(stack.rt.settings.data_dir),
           "QRGATE_DATABASE_URL": stack.rt.settings.resolved_database_url}
    result = CliRunner().invoke(cli, ["admin", "user", "freeze", "--org", "bank",
                                      "--login", "alice"], env=env)
    assert result.exit_code == 0, result.output
    assert browser.status()["reason"] == "user_frozen"
    error = refused(lambda: phone.scan_text(started["code"]))
    assert error.status == 409
    with pytest.raises(ApiError) as caught:
        stack.start()
    assert caught.value.code == "frozen"
