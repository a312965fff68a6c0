"""The operator's command line against a real database: admin, audit verify, demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from qrgate.cli.main import cli
from qrgate.storage.db import create_engine_for


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"QRGATE_DATA_DIR": str(tmp_path / "data"), "QRGATE_DATABASE_URL": database_url}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_admin_commands_and_audit_verify(env: dict[str, str], database_url: str) -> None:
    run(env, "admin", "org", "create", "acme", "--name", "Acme")
    run(env, "admin", "app", "create", "--org", "acme", "--business-id", "shop",
        "--name", "Shop", "--policy", '{"number_matching": "always"}')
    key = run(env, "admin", "apikey", "create", "--org", "acme", "--business-id", "shop").strip()
    assert key.startswith("qgk_")
    run(env, "admin", "user", "create", "--org", "acme", "--login", "dana",
        "--password-stdin", stdin="a long password\n")
    assert '"login": "dana"' in run(env, "admin", "user", "list", "--org", "acme")
    assert '"frozen": true' in run(env, "admin", "user", "freeze", "--org", "acme",
                                   "--login", "dana")
    assert run(env, "admin", "device", "list", "--org", "acme", "--login", "dana").strip() == "[]"
    assert "chain intact" in run(env, "audit", "verify")

    duplicate = CliRunner().invoke(cli, ["admin", "org", "create", "acme", "--name", "x"], env=env)
    # An operational failure (exit 1), not a usage error (2): the command line was right.
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith("qrgate: error: org_exists: ")

    engine = create_engine_for(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET reason = 'forged' WHERE seq = 2"))
    finally:
        engine.dispose()
    broken = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert "BROKEN at entry 2" in broken.output and "hash_mismatch" in broken.output


def test_key_rotation_commands(tmp_path: Path) -> None:
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data")}
    first = run(env, "admin", "keys", "list")
    rotated = run(env, "admin", "keys", "rotate")
    listed = run(env, "admin", "keys", "list")
    old = first.split('"active": "')[1].split('"')[0]
    new = rotated.split('"active_kid": "')[1].split('"')[0]
    assert old != new and old in listed and new in listed
    run(env, "admin", "keys", "retire", old)
    retired = run(env, "admin", "keys", "list")  # still listed, as retired
    assert old in retired and retired.count('"state": "retired"') == 1


def test_demo_confirm_passes() -> None:
    result = CliRunner().invoke(cli, ["demo", "confirm"])
    assert result.exit_code == 0, result.output
    assert "demo confirm: all steps passed" in result.output
    assert "FAILED" not in result.output
