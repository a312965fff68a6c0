"""Review 3: no secret, hash or nonce reaches a log line, whatever fails.

Faults are planted in the real database (a constraint or trigger that refuses the scan's
and the failure counter's updates), so the driver raises its own errors: PostgreSQL's
carry the whole failing row (password hash, code nonce, number, browser-token digest) in
their detail, and SQLAlchemy's would carry the statement's parameters. Every log line and
everything written to stdout/stderr is then searched for each secret, in every encoding
it could appear in.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from qrgate.confirm import repository
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.storage.models import users
from support.stack import PASSWORD, Stack

_PG_FAULTS = (
    "ALTER TABLE challenges ADD CONSTRAINT planted_fault CHECK (state <> 'scanned') NOT VALID",
    "ALTER TABLE users ADD CONSTRAINT planted_fault CHECK (failed_attempts < 1) NOT VALID",
)
_SQLITE_FAULTS = (
    "CREATE TRIGGER planted_scan BEFORE UPDATE ON challenges WHEN NEW.state = 'scanned' "
    "BEGIN SELECT RAISE(ABORT, 'planted fault'); END",
    "CREATE TRIGGER planted_count BEFORE UPDATE ON users WHEN NEW.failed_attempts > 0 "
    "BEGIN SELECT RAISE(ABORT, 'planted fault'); END",
)


def plant_faults(stack: Stack) -> None:
    faults = _SQLITE_FAULTS if stack.rt.engine.dialect.name == "sqlite" else _PG_FAULTS
    with stack.rt.engine.begin() as conn:
        for statement in faults:
            conn.execute(text(statement))


def encodings(secret: bytes | str) -> set[str]:
    if isinstance(secret, str):
        return {secret}
    return {secret.hex(), secret.hex().upper(), repr(secret)[2:-1]}


def test_review_3_failures_log_no_secret(stack_factory: Any, caplog: pytest.LogCaptureFixture,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    stack: Stack = stack_factory(AppPolicy(number_matching=NumberMatching.ALWAYS))
    phone = stack.enrolled_phone()
    with caplog.at_level(logging.DEBUG):
        started, _ = stack.start()
        with stack.rt.read() as conn:
            row = repository.load(conn, started["challenge_id"])
            password_hash = conn.execute(users.select().where(
                users.c.password_hash.is_not(None))).first().password_hash
        plant_faults(stack)
        scan = phone._signed("POST", "/v1/confirm/scan", {"code": started["code"]})
        assert (scan.status_code, scan.json()["code"]) == (500, "internal_error")

        with stack.rt.engine.begin() as conn:  # let scans through again, keep the other fault
            conn.execute(text("DROP TRIGGER planted_scan") if conn.dialect.name == "sqlite"
                         else text("ALTER TABLE challenges DROP CONSTRAINT planted_fault"))
        second, _ = stack.start()
        context = phone.scan_text(second["code"])
        wrong = second["number"] % 89 + 10
        decided = phone._signed("POST", f"/v1/confirm/challenges/{context['challenge_id']}"
                                "/decision", {"decision": "approve", "number": wrong})
        assert (decided.status_code, decided.json()["code"]) == (500, "internal_error")

        with stack.rt.engine.begin() as conn:
            with pytest.raises(IntegrityError) as failed:
                conn.execute(update(users).values(failed_attempts=1, display_name=PASSWORD))
            logging.getLogger("test").error("statement failed: %s", failed.value)

    captured = capfd.readouterr()
    written = "\n".join([caplog.text, captured.out, captured.err,
                         *(str(record.exc_info) for record in caplog.records)])
    secrets: list[bytes | str] = [PASSWORD, password_hash, row.code_nonce, row.browser_hash,
                                  started["browser_token"], stack.api_key.split("_", 2)[2]]
    for secret in secrets:
        for form in encodings(secret):
            assert form not in written, f"a secret reached the log: {form[:12]}..."
    for marker in ("Failing row contains", "[parameters:", "Traceback"):
        assert marker not in written, marker
    assert "unhandled IntegrityError" in caplog.text
