"""``qrgate audit verify | checkpoint | export-checkpoints`` against a real database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from qrgate.cli.main import cli
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.storage.audit import verify_audit
from qrgate.storage.audit_checkpoints import write_checkpoint
from qrgate.storage.db import create_engine_for
from qrgate.storage.models import audit_checkpoints
from qrgate.storage.schema import upgrade
from support.audit_attack import edit_and_rehash, fill


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"QRGATE_DATA_DIR": str(tmp_path / "data"), "QRGATE_DATABASE_URL": database_url}


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args], env=env)


def ok(env: dict[str, str], *args: str) -> str:
    result = invoke(env, *args)
    assert result.exit_code == 0, result.output
    return result.output


def failed(env: dict[str, str], *args: str, exit_code: int) -> Result:
    result = invoke(env, *args)
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    return result


def test_review_4_edit_and_rehash_is_detected(env: dict[str, str], db: Engine) -> None:
    """Review finding 4: an attacker with write access to the database edits one entry,
    recomputes every later hash and the head with ``entry_digest`` (see
    ``support.audit_attack.edit_and_rehash``), and the hash chain alone still verified."""
    fill(db, 12)
    assert "checkpoint 1 signed: entries 1-12" in ok(env, "checkpoint")
    fill(db, 3)
    before = ok(env, "verify")
    assert "audit log OK: 15 entries, chain intact" in before
    assert ("checkpoints OK: 1 signed; entries 1-12 covered by a signed checkpoint, 3 entries "
            "after it only hash-chained") in before

    edit_and_rehash(db, seq=5, detail={"amount": "1.00", "ip": "192.0.2.7"})
    with db.connect() as conn:
        assert verify_audit(conn).ok  # all that `audit verify` used to check: it passed
        conn.rollback()

    result = failed(env, "verify", exit_code=1)
    assert "audit log OK: 15 entries, chain intact" in result.stdout
    assert ("checkpoints BROKEN at checkpoint 1: entry_mismatch: entry 12 differs from the "
            "hash signed in checkpoint 1") in result.stderr
    # Nor does the server sign over the rewritten log.
    refused = failed(env, "checkpoint", exit_code=1)
    assert "audit log TAMPERED, not signing: entry 12 no longer matches checkpoint 1" in (
        refused.stderr)


def test_forged_checkpoint_is_refused(env: dict[str, str], db: Engine) -> None:
    fill(db, 6)
    ok(env, "checkpoint")
    edit_and_rehash(db, seq=2, detail={})
    # The attacker replaces the checkpoints with one signed by a key of their own.
    with db.begin() as conn:
        conn.execute(delete(audit_checkpoints))
    attacker = KeyRing(active=SigningKey.generate(now=time.time()))
    assert write_checkpoint(db, signer=attacker, issuer="qrgate", now=time.time()) is not None
    result = failed(env, "verify", exit_code=1)
    assert "checkpoints BROKEN at checkpoint 1: unknown_key" in result.stderr


def test_deleted_checkpoint_is_caught_against_the_export(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    for count in (3, 2, 4):
        fill(db, count)
        ok(env, "checkpoint")
    copy = tmp_path / "kept-elsewhere" / "checkpoints.txt"
    copy.parent.mkdir()
    assert "exported 3 checkpoints" in ok(env, "export-checkpoints", "--output", str(copy))
    printed = ok(env, "export-checkpoints")
    assert printed == copy.read_text()
    assert [line[:5] for line in printed.splitlines()] == ["QGA1:"] * 3
    assert "exported copy OK: all 3 checkpoints" in ok(env, "verify", "--checkpoints", str(copy))

    with db.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.number == 3))
    # Without the copy, a cut-off newest checkpoint looks like one not yet written...
    assert "entries 1-5 covered by a signed checkpoint, 4 entries after" in ok(env, "verify")
    # ...with it, it is caught.
    result = failed(env, "verify", "--checkpoints", str(copy), exit_code=1)
    assert "checkpoints BROKEN at checkpoint 3: missing_exported" in result.stderr


def test_checkpoint_reports_when_there_is_nothing_to_sign(env: dict[str, str], db: Engine) -> None:
    assert "audit log is empty: nothing to sign" in ok(env, "checkpoint")
    assert "checkpoints: none yet; all 0 entries only hash-chained" in ok(env, "verify")
    fill(db, 1)
    assert "checkpoints: none yet; all 1 entry only hash-chained" in ok(env, "verify")
    fill(db, 1)
    assert "checkpoints: none yet; all 2 entries only hash-chained" in ok(env, "verify")
    ok(env, "checkpoint")
    assert "nothing new: checkpoint 1 already covers entries 1-2" in ok(env, "checkpoint")
    assert ok(env, "export-checkpoints").count("\n") == 1


def one_error_line(result: Result) -> str:
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qrgate: error: "), result.stderr
    return lines[0]


def test_errors_are_one_line(env: dict[str, str], db: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    line = one_error_line(failed(env, "verify", "--checkpoints", str(missing), exit_code=2))
    assert "nowhere.txt" in line and "No such file" in line

    garbled = tmp_path / "garbled.txt"
    garbled.write_text("QGA1:not-a-checkpoint\n")
    line = one_error_line(failed(env, "verify", "--checkpoints", str(garbled), exit_code=2))
    assert "garbled.txt: line 1" in line

    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    one_error_line(failed(env, "verify", "--checkpoints", str(binary), exit_code=2))

    unwritable = tmp_path / "no-such-dir" / "out.txt"
    one_error_line(failed(env, "export-checkpoints", "--output", str(unwritable), exit_code=2))

    bad_url = {**env, "QRGATE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    line = one_error_line(failed(bad_url, "checkpoint", exit_code=2))
    assert line.startswith("qrgate: error: database: ")
