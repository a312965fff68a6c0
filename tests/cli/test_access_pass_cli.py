"""``qrgate admin user access-pass`` (the operator, for a user who lost their phone) and
``qrgate phone enrol --access-pass``: the pass is printed once, audited without itself, and
a phone binds with it, replacing the lost one unless ``--keep-devices``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner, Result

from qrgate.cli.main import cli
from qrgate.storage.audit import search_audit
from support.stack import Stack


def invoke(stack: Stack, tmp_path: Path, *args: str) -> Result:
    # The operator's commands open the stack's own database and keys (its data directory).
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data"),
           "QRGATE_DATABASE_URL": stack.rt.settings.database_url}
    return CliRunner().invoke(cli, list(args), env=env)


def issue(stack: Stack, tmp_path: Path, *options: str) -> dict[str, object]:
    result = invoke(stack, tmp_path, "admin", "user", "access-pass", "--org", "bank",
                    "--login", "alice", *options)
    assert result.exit_code == 0, result.output
    issued: dict[str, object] = json.loads(result.output)
    return issued


def test_an_operator_replaces_a_lost_phone(stack: Stack, tmp_path: Path) -> None:
    stack.clock.now = time.time()  # the CLI issues and the CLI phone signs on real time
    lost = stack.enrolled_phone(name="lost")
    issued = issue(stack, tmp_path, "--ttl", "900")
    assert set(issued) == {"login", "access_pass", "access_pass_id", "expires_at",
                           "revoke_devices"}
    assert issued["revoke_devices"] is True and str(issued["expires_at"]).endswith("Z")
    state = tmp_path / "phone.json"
    result = CliRunner().invoke(cli, ["phone", "enrol", "--access-pass",
                                      str(issued["access_pass"]), "--server", stack.base_url,
                                      "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert "bound to alice" in result.output
    new_id = json.loads(state.read_text())["device_id"]
    assert {d["device_id"]: d["status"] for d in stack.rp.list_devices("alice")} == {
        lost.device_id: "unbound", new_id: "active"}

    again = CliRunner().invoke(cli, ["phone", "enrol", "--access-pass",
                                     str(issued["access_pass"]), "--server", stack.base_url,
                                     "--state", str(tmp_path / "other.json")])
    assert again.exit_code == 1
    assert "access_pass_used" in again.output

    with stack.rt.read() as conn:
        entries = search_audit(conn, event="device.access_pass_issue")
    assert [(e["reason"], e["detail"]["actor"], e["app_id"]) for e in entries] == [
        ("issued", "cli", None)]
    assert str(issued["access_pass"]) not in json.dumps(entries)


def test_keep_devices_and_refusals(stack: Stack, tmp_path: Path) -> None:
    stack.clock.now = time.time()
    kept = stack.enrolled_phone()
    issued = issue(stack, tmp_path, "--keep-devices")
    assert issued["revoke_devices"] is False
    result = CliRunner().invoke(cli, ["phone", "enrol", "--access-pass",
                                      str(issued["access_pass"]), "--server", stack.base_url,
                                      "--state", str(tmp_path / "phone.json")])
    assert result.exit_code == 0, result.output
    assert {d["status"] for d in stack.rp.list_devices("alice")} == {"active"}
    assert kept.device_id in {d["device_id"] for d in stack.rp.list_devices("alice")}

    too_short = invoke(stack, tmp_path, "admin", "user", "access-pass", "--org", "bank",
                       "--login", "alice", "--ttl", "10")
    assert too_short.exit_code == 2
    nobody = invoke(stack, tmp_path, "admin", "user", "access-pass", "--org", "bank",
                    "--login", "dave")
    assert nobody.exit_code == 1 and "user_not_found" in nobody.output
    both = CliRunner().invoke(cli, ["phone", "enrol", "QG1:X", "--access-pass", "ABCD",
                                    "--server", stack.base_url])
    assert both.exit_code == 2
