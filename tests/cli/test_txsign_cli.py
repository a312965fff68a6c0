"""``qrgate txsign``: token enrol/list/unlock/revoke, verify-qr on real images; the demo."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from qrgate.cli.main import cli
from qrgate.clients.phone import decode_png
from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.qrimage import render_png
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys


@pytest.fixture
def env(stack: Stack) -> dict[str, str]:
    settings = stack.rt.settings
    return {"QRGATE_DATA_DIR": str(settings.data_dir),
            "QRGATE_DATABASE_URL": settings.resolved_database_url,
            "QRGATE_PUBLIC_URL": stack.base_url}


def test_token_commands_and_verify_qr(stack: Stack, env: dict[str, str], tmp_path: Path) -> None:
    stack.rt.clock = time.time  # the CLI signs and verifies on the real clock
    runner = CliRunner()
    png = tmp_path / "token.png"
    result = runner.invoke(cli, ["txsign", "token", "enrol", "--org", "bank", "--business-id",
                                 "web", "--login", "alice", "--png", str(png)], env=env)
    assert result.exit_code == 0, result.output
    assert os.stat(png).st_mode & 0o777 == 0o600  # the image carries the token secret
    alice = SoftToken.enrol(decode_png(png.read_bytes()), server_keys=server_keys(stack),
                            clock=time.time)
    listed = runner.invoke(cli, ["txsign", "token", "list", "--org", "bank", "--login", "alice"],
                           env=env)
    assert f"{alice.token_id} active" in listed.output

    platform = Platform(stack)
    started = platform.start("alice", demand="pay 42.00 EUR to Carol", comment="rent")
    platform.respond(started["transaction_id"], alice.sign(started["challenge_code"]))
    image = tmp_path / "chain.png"
    image.write_bytes(platform.image(started["transaction_id"], "chain"))
    verified = runner.invoke(cli, ["txsign", "verify-qr", str(image)], env=env)
    assert verified.exit_code == 0, verified.output
    assert "pay 42.00 EUR to Carol" in verified.output and "VERIFIED: 1 link" in verified.output
    online = runner.invoke(cli, ["txsign", "verify-qr", str(image), "--server", stack.base_url])
    assert online.exit_code == 0 and "VERIFIED" in online.output

    # One altered character in the image's code: the chain no longer verifies.
    code = decode_png(image.read_bytes())
    position = len(code) // 2
    altered = code[:position] + ("A" if code[position] != "A" else "B") + code[position + 1:]
    image.write_bytes(render_png(altered))
    refused = runner.invoke(cli, ["txsign", "verify-qr", str(image)], env=env)
    assert refused.exit_code == 1 and "NOT VERIFIED" in refused.output

    assert runner.invoke(cli, ["txsign", "token", "revoke", alice.token_id], env=env).exit_code == 0
    # Revoked is for good (a lost phone): unlock only reinstates a token locked by failures.
    again = runner.invoke(cli, ["txsign", "token", "unlock", alice.token_id], env=env)
    assert again.exit_code == 1 and "token_not_found" in again.output


def test_resync_brings_back_a_drifted_token(stack: Stack) -> None:
    platform = Platform(stack)
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": "alice"})
    alice = SoftToken.enrol(enrolment["code"], server_keys=server_keys(stack), clock=stack.clock)
    alice.counter += 40  # the phone computed many responses nobody submitted
    started = platform.start("alice")
    response = alice.sign(started["challenge_code"])
    problem = platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                                 json={"response": response})
    assert problem.json()["code"] == "wrong_response"  # beyond the look-ahead window of 10
    questions = ("1" * 64, "2" * 64)
    responses = (alice._respond(questions[0]), alice._respond(questions[1]))
    resynced = platform.call("POST", f"/v1/txsign/tokens/{alice.token_id}/resync",
                             json={"questions": list(questions), "responses": list(responses)})
    assert resynced["status"] == "active"
    started = platform.start("alice")
    signed = platform.respond(started["transaction_id"], alice.sign(started["challenge_code"]))
    assert signed["state"] == "signed"
    replay = platform.http.post(f"/v1/txsign/tokens/{alice.token_id}/resync",
                                json={"questions": list(questions), "responses": list(responses)})
    assert replay.status_code >= 400


def test_demo_txsign_passes() -> None:
    result = CliRunner().invoke(cli, ["demo", "txsign"])
    assert result.exit_code == 0, result.output
    assert "demo txsign: all steps passed" in result.output


def refused(action: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value.status, caught.value.code


def test_unlock_and_revoke_take_effect(stack: Stack, env: dict[str, str]) -> None:
    runner = CliRunner()

    def txsign(*args: str) -> str:
        result = runner.invoke(cli, ["txsign", "token", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    limit = stack.rt.settings.max_failures
    for _ in range(limit):
        started = platform.start("alice")
        response = alice.sign(started["challenge_code"])
        wrong = f"{(int(response) + 1) % 10**8:08d}"
        assert refused(lambda s=started, w=wrong: platform.respond(s["transaction_id"], w)) == (
            401, "wrong_response")
    assert refused(lambda: platform.start("alice")) == (423, "token_locked")
    assert f"{alice.token_id} locked" in txsign("list", "--org", "bank", "--login", "alice")

    # Unlocked: the token signs again, with its count of failures back at zero (one more
    # wrong response does not lock it again).
    txsign("unlock", alice.token_id)
    assert f"{alice.token_id} active" in txsign("list", "--org", "bank", "--login", "alice")
    assert "failures=0" in txsign("list", "--org", "bank", "--login", "alice")
    started = platform.start("alice")
    assert refused(lambda: platform.respond(started["transaction_id"], "00000000")) == (
        401, "wrong_response")
    assert platform.respond(started["transaction_id"],
                            alice.sign(started["challenge_code"]))["state"] == "signed"

    # Revoked (a lost phone): alice has no token; a transaction started before the
    # revocation cannot be signed with it; a new token can be enrolled, and only it signs.
    waiting = platform.start("alice")
    txsign("revoke", alice.token_id)
    assert refused(lambda: platform.start("alice")) == (404, "no_token")
    assert refused(lambda: platform.respond(waiting["transaction_id"], alice.sign(
        waiting["challenge_code"]))) == (404, "no_token")
    replacement = enrolled_token(stack, platform, "alice")
    assert replacement.token_id != alice.token_id
    listed = txsign("list", "--org", "bank", "--login", "alice")
    assert f"{alice.token_id} revoked" in listed and f"{replacement.token_id} active" in listed
    started = platform.start("alice")
    assert refused(lambda: platform.respond(started["transaction_id"], alice.sign(
        started["challenge_code"]))) == (401, "wrong_response")
    assert platform.respond(started["transaction_id"], replacement.sign(
        started["challenge_code"]))["state"] == "signed"


def test_a_revocation_touches_that_token_only_and_once(stack: Stack, env: dict[str, str]) -> None:
    runner = CliRunner()
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    assert runner.invoke(cli, ["txsign", "token", "revoke", alice.token_id],
                         env=env).exit_code == 0
    twice = runner.invoke(cli, ["txsign", "token", "revoke", alice.token_id], env=env)
    assert twice.exit_code == 1 and "token_not_found" in twice.output
    started = platform.start("bob")
    assert platform.respond(started["transaction_id"],
                            bob.sign(started["challenge_code"]))["state"] == "signed"
    # Listed oldest first: the revoked token, then its replacement.
    stack.clock.advance(1)
    replacement = enrolled_token(stack, platform, "alice")
    listed = runner.invoke(cli, ["txsign", "token", "list", "--org", "bank", "--login",
                                 "alice"], env=env).output.splitlines()
    assert [line.split()[:2] for line in listed] == [[alice.token_id, "revoked"],
                                                     [replacement.token_id, "active"]]
