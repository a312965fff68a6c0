"""Review 7, the smaller defects: audit flooding, an existence oracle, password hashing on
the event loop, unkeyed confirmation codes, the KEK beside the database, file modes, the
query string outside device signatures, malleable signatures, unbounded headers."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from qrgate.accounts.provision import provision
from qrgate.config import Settings
from qrgate.core.cose import P256_ORDER
from qrgate.core.device_auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_target,
    sign_request,
)
from qrgate.core.digests import SecretDigests
from qrgate.runtime import build_runtime, warn_if_kek_beside_database
from qrgate.storage.models import audit_log, enrolments
from support.stack import PASSWORD, Stack
from support.txsign import Platform, enrolled_token


def audit_rows(stack: Stack) -> int:
    with stack.rt.read() as conn:
        return len(conn.execute(audit_log.select()).all())


def test_review_7_bogus_device_requests_do_not_flood_the_audit_log(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    before = audit_rows(stack)
    with httpx.Client(base_url=stack.base_url) as http:
        for n in range(200):
            headers = {DEVICE_HEADER: f"{n:032x}", TIMESTAMP_HEADER: str(int(stack.clock())),
                       SIGNATURE_HEADER: "A" * 86}
            assert http.get("/v1/devices/me", headers=headers).status_code == 401
        forged = {DEVICE_HEADER: str(phone.device_id), TIMESTAMP_HEADER: str(int(stack.clock())),
                  SIGNATURE_HEADER: "A" * 86}
        for _ in range(100):
            assert http.get("/v1/devices/me", headers=forged).status_code == 401
    # One entry per kind of refusal and device per minute: the unknown devices share one.
    assert audit_rows(stack) - before == 2


def test_review_7_another_organisations_token_is_answered_like_an_unknown_one(
        stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    other = provision(stack.rt, org_slug="other", org_name="Other", business_id="shop",
                      app_name="Shop", users={"mallory": None})
    other_platform = Platform(stack)
    other_platform.http.headers["Authorization"] = f"Bearer {other.api_key}"
    mallory = enrolled_token(stack, other_platform, "mallory")
    started = platform.start("alice")
    answers = [platform.http.post(f"/v1/txsign/transactions/{started['transaction_id']}"
                                  "/response", json={"response": "12345678", "token_id": token})
               for token in (mallory.token_id, os.urandom(16).hex())]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (404, "token_not_found")] * 2


def test_review_7_password_hashing_leaves_the_event_loop_free(stack: Stack) -> None:
    """While users with passwords are created (scrypt, tens of ms each), a health check
    is answered before the creations are through: the hashing runs off the event loop."""
    order: list[str] = []
    lock = threading.Lock()
    started = threading.Barrier(7)

    def create(n: int) -> None:
        with httpx.Client(base_url=stack.base_url,
                          headers={"Authorization": f"Bearer {stack.api_key}"}) as http:
            started.wait()
            http.post("/v1/users", json={"login": f"user{n}", "password": PASSWORD})
        with lock:
            order.append("created")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    started.wait()
    with httpx.Client(base_url=stack.base_url) as http:
        assert http.get("/healthz").status_code == 200
    with lock:
        order.append("health")
    for thread in threads:
        thread.join()
    assert order.index("health") < len(order) - 1, order


def test_review_7_confirmation_codes_are_stored_keyed(stack: Stack) -> None:
    enrolment = stack.rp.start_enrolment("alice")
    with stack.rt.read() as conn:
        stored = conn.execute(enrolments.select()).one().confirm_code_hash
    code = enrolment["confirm_code"]
    # Not a plain hash: searching all 10^8 codes against a leaked database finds nothing.
    assert stored != hashlib.sha256(code.encode()).digest()
    assert not SecretDigests(os.urandom(32)).matches(code, stored, purpose="enrol_confirm")
    assert stack.rt.digests.matches(code, stored, purpose="enrol_confirm")


def test_review_7_the_kek_beside_the_database_is_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qrgate"):
        warn_if_kek_beside_database(Settings(data_dir=tmp_path))
        kek_file = tmp_path.parent / "kek"
        kek_file.write_text(os.urandom(32).hex())
        warn_if_kek_beside_database(Settings(data_dir=tmp_path,
                                             env={"QRGATE_KEK_FILE": str(kek_file)}))
    warnings = [r for r in caplog.records if "key-encryption key" in r.getMessage()]
    assert len(warnings) == 1 and "QRGATE_KEK_FILE" in warnings[0].getMessage()


def test_review_7_data_dir_and_sqlite_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    rt = build_runtime(Settings(data_dir=data_dir))
    try:
        with rt.engine.begin() as conn:
            conn.execute(audit_log.select())
    finally:
        rt.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("qrgate.db", "qrgate.db-wal", "qrgate.db-shm"):
        path = data_dir / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def signed_get(stack: Stack, phone: Any, path: str, query: str = "", *,
               target: str | None = None, twin: bool = False) -> httpx.Response:
    """A GET signed as the phone signs, over ``target`` (default: the path and query
    sent); ``twin`` sends the (r, n - s) twin of the signature instead."""
    timestamp = int(stack.clock())
    signature = sign_request(private_key=phone.private_key, method="GET",
                             path=target or request_target(path, query), timestamp=timestamp,
                             device_id=phone.device_id, body=b"")
    if twin:
        raw = base64.urlsafe_b64decode(signature + "==")
        s = P256_ORDER - int.from_bytes(raw[32:], "big")
        signature = base64.urlsafe_b64encode(raw[:32] + s.to_bytes(32, "big")).rstrip(
            b"=").decode()
    headers = {DEVICE_HEADER: phone.device_id, TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: signature}
    return httpx.get(stack.base_url + request_target(path, query), headers=headers)


def test_review_7_the_query_string_is_signed(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    path = "/v1/devices/me/history"
    assert signed_get(stack, phone, path, "q=bob").status_code == 200
    moved = signed_get(stack, phone, path, "q=carol", target=f"{path}?q=bob")
    assert (moved.status_code, moved.json()["code"]) == (401, "bad_signature")


def test_review_7_the_high_s_twin_of_a_signature_is_refused(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    assert signed_get(stack, phone, "/v1/devices/me").status_code == 200
    twin = signed_get(stack, phone, "/v1/devices/me", twin=True)
    assert (twin.status_code, twin.json()["code"]) == (401, "bad_signature")


def test_review_7_oversized_headers_are_refused(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/healthz", headers={"X-Big": "a" * 8_000_000},
                         timeout=60)
    assert (response.status_code, response.json()["code"]) == (431, "headers_too_large")
