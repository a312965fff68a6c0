"""``qrgate phone scan --offline``: the phone keeps its offline secret in its state file and,
with no request sent, prints the code that approves the challenge from the waiting page."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from qrgate.cli.main import cli
from support.stack import Stack


def test_an_offline_code_from_the_command_line(stack: Stack, tmp_path: Path) -> None:
    stack.rt.clock = time.time  # the CLI phone verifies codes on the real clock
    state = tmp_path / "phone.json"
    enrolment = stack.rp.start_enrolment("carol")
    runner = CliRunner()
    result = runner.invoke(cli, ["phone", "enrol", enrolment["code"], "--server",
                                 stack.base_url, "--confirm-code", enrolment["confirm_code"],
                                 "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(state.read_text())["offline_secret"]) == 43  # 32 bytes, base64url

    started, browser = stack.start("carol", number_matching=True)
    qr = tmp_path / "qr.png"
    qr.write_bytes(browser.qr_png())
    result = runner.invoke(cli, ["phone", "scan", str(qr), "--offline", "--number",
                                 str(started["number"]), "--state", str(state)])
    assert result.exit_code == 0, result.output
    code = result.output.strip().splitlines()[-1]
    assert len(code) == 8 and code.isdigit()
    assert browser.status()["state"] == "pending"  # nothing was sent
    assert browser.send_offline_code(code)["state"] == "approved"

    # Without --number, the phone asks for it when the code needs one.
    started, browser = stack.start("carol", number_matching=True)
    result = runner.invoke(cli, ["phone", "scan", started["code"], "--offline",
                                 "--state", str(state)], input=f"{started['number']}\n")
    assert result.exit_code == 0, result.output
    assert browser.send_offline_code(result.output.strip().splitlines()[-1])["state"] == (
        "approved")
