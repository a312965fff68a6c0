"""``qrgate phone``: bind, scan a QR image file, approve with the number, read history."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from qrgate.cli.main import cli
from qrgate.qrimage import render_png
from support.stack import PASSWORD, Stack
from support.txsign import Platform


def test_phone_commands(stack: Stack, tmp_path: Path) -> None:
    stack.rt.clock = time.time  # the CLI phone signs with the real clock
    state = tmp_path / "phone.json"
    enrolment = stack.rp.start_enrolment("alice")
    image = tmp_path / "enrol.png"
    image.write_bytes(render_png(enrolment["code"]))
    runner = CliRunner()
    result = runner.invoke(cli, ["phone", "enrol", str(image), "--server", stack.base_url,
                                 "--password", PASSWORD, "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert os.stat(state).st_mode & 0o777 == 0o600

    started, browser = stack.start("alice", number_matching=True)
    qr = tmp_path / "qr.png"
    qr.write_bytes(browser.qr_png())
    result = runner.invoke(cli, ["phone", "scan", str(qr), "--state", str(state)],
                           input=f"y\n{started['number']}\n")
    assert result.exit_code == 0, result.output
    assert "result: approved" in result.output
    assert browser.status()["state"] == "approved"

    result = runner.invoke(cli, ["phone", "history", "--state", str(state)])
    assert "approved" in result.output and "transfer" in result.output

    # Declining is the default answer.
    started, browser = stack.start("alice")
    result = runner.invoke(cli, ["phone", "scan", started["code"], "--state", str(state)],
                           input="\n")
    assert result.exit_code == 0, result.output
    assert browser.status()["state"] == "denied"


def test_phone_token_commands(stack: Stack, tmp_path: Path) -> None:
    stack.rt.clock = time.time  # the CLI phone verifies codes on the real clock
    platform = Platform(stack)
    state = tmp_path / "phone.json"
    enrolment = platform.call("POST", "/v1/txsign/tokens", json={"login": "bob"})
    image = tmp_path / "token.png"
    image.write_bytes(render_png(enrolment["code"]))
    runner = CliRunner()
    result = runner.invoke(cli, ["phone", "token", "enrol", str(image), "--server",
                                 stack.base_url, "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert os.stat(state).st_mode & 0o777 == 0o600  # it holds the token secret

    for demand in ("approve budget 2027", "approve budget 2028"):
        started = platform.start("bob", demand=demand)
        challenge = tmp_path / "challenge.png"
        challenge.write_bytes(platform.image(started["transaction_id"], "challenge"))
        signed = runner.invoke(cli, ["phone", "token", "sign", str(challenge),
                                     "--state", str(state)])
        assert signed.exit_code == 0, signed.output
        assert demand in signed.output
        response = signed.output.strip().splitlines()[-1]
        # The counter persisted between runs: each response is accepted in turn.
        assert platform.respond(started["transaction_id"], response)["state"] == "signed"
