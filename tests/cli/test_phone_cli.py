"""``qrgate phone``: bind, scan a QR image file, approve with the number, read history."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from qrgate.cli.main import cli
from qrgate.qrimage import render_png
from support.stack import PASSWORD, Stack


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
