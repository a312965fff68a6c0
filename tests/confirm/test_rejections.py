"""Every way scheme C refuses, each with its own stable code, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import base45
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.accounts import directory
from qrgate.clients.relying_party import ApiError
from qrgate.confirm import repository
from qrgate.core.cose import parse_sign1, sign1
from qrgate.core.keyring import kid_for
from qrgate.errors import BadSignature, Expired, MalformedCode, UnknownKey
from qrgate.storage.audit import search_audit
from support.stack import Stack


def api_error(action: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value


def problem_of(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert "Traceback" not in response.text
    return response.status_code, body["code"]


def test_expired_challenge(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    stack.clock.advance(stack.rt.settings.confirm_ttl + 1)
    error = api_error(lambda: phone.scan_text(started["code"], verify_offline=False))
    assert (error.status, error.code) == (410, "expired")
    assert browser.status()["state"] == "expired"


def test_a_code_read_just_after_its_challenges_hard_expiry_is_expired(stack: Stack) -> None:
    """A code dies with its challenge (its own expiry is capped at the challenge's), yet a
    code is still read up to 5 s after its expiry (the clock leeway of
    ``qrgate.core.codes.decode_code``). Scanned inside that leeway, it meets the challenge's
    own expiry: 410 ``expired``, and the challenge ends expired, not scanned or rejected."""
    phone = stack.enrolled_phone()
    started, browser = stack.start()
    stack.clock.advance(stack.rt.settings.confirm_ttl - 10)
    rotated = browser.rotate()  # the last rotation: its code expires with the challenge
    assert rotated["code_expires_at"] == started["expires_at"]
    stack.clock.advance(10 + 2)  # 2 s past the hard expiry
    assert phone.read_confirm_code(rotated["code"]).expires_at == started["expires_at"]
    error = api_error(lambda: phone.scan_text(rotated["code"]))
    assert (error.status, error.code) == (410, "expired")
    status = browser.status()
    assert (status["state"], status["reason"]) == ("expired", "expired")
    with stack.rt.read() as conn:
        row = repository.load(conn, started["challenge_id"])
        scans = search_audit(conn, challenge_id=started["challenge_id"], event="confirm.scan")
    assert (row.state, row.reason, row.device_id, row.attempts) == ("expired", "expired",
                                                                   None, 0)
    assert [entry["reason"] for entry in scans] == ["expired"]


def test_expired_code_is_refused_offline_by_the_phone(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    stack.clock.advance(stack.rt.settings.code_ttl + 10)
    with pytest.raises(Expired):
        phone.read_confirm_code(started["code"])


def test_decision_after_expiry(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    stack.clock.advance(stack.rt.settings.confirm_ttl + 1)
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=True))
    assert (error.status, error.code) == (410, "expired")


def test_scan_by_a_second_device_kills_the_challenge(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    second = stack.enrolled_phone(name="second phone")
    started, browser = stack.start()
    phone.scan_text(started["code"])
    error = api_error(lambda: second.scan_text(started["code"]))
    assert (error.status, error.code) == (409, "scanned_twice")
    status = browser.status()
    assert (status["state"], status["reason"]) == ("rejected", "scanned_twice")
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=True))
    assert error.code == "already_decided"


def test_approved_twice_is_one_approval_then_deny_is_refused(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.scan_text(started["code"])
    first = phone.decide(started["challenge_id"], approve=True)
    assert phone.decide(started["challenge_id"], approve=True) == first
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=False))
    assert (error.status, error.code) == (409, "already_decided")
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=False))
    assert error.code == "already_decided"
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "approved"


def test_wrong_device_of_the_same_user(stack: Stack) -> None:
    scanner = stack.enrolled_phone(name="scanner")
    other = stack.enrolled_phone(name="other")
    started, _ = stack.start()
    scanner.scan_text(started["code"])
    error = api_error(lambda: other.decide(started["challenge_id"], approve=True))
    assert (error.status, error.code) == (403, "wrong_device")
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "scanned"


def test_device_of_another_user(stack: Stack) -> None:
    stack.enrolled_phone("alice")
    bobs = stack.enrolled_phone("bob")
    started, _ = stack.start("alice")
    error = api_error(lambda: bobs.scan_text(started["code"]))
    assert (error.status, error.code) == (403, "wrong_user")
    assert stack.rp.get_challenge(started["challenge_id"])["state"] == "pending"


def test_repeated_failures_lock_the_challenge(stack: Stack) -> None:
    stack.enrolled_phone("alice")
    bobs = stack.enrolled_phone("bob")
    started, browser = stack.start("alice")
    for _ in range(stack.rt.settings.max_failures):
        api_error(lambda: bobs.scan_text(started["code"]))
    status = browser.status()
    assert (status["state"], status["reason"]) == ("rejected", "locked")


def test_tampered_code(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    code: str = started["code"]
    position = len(code) // 2
    tampered = code[:position] + ("A" if code[position] != "A" else "B") + code[position + 1 :]
    with pytest.raises((BadSignature, MalformedCode)):
        phone.read_confirm_code(tampered)
    error = api_error(lambda: phone.scan_text(tampered, verify_offline=False))
    assert error.status in (400, 401) and error.code in ("bad_signature", "malformed_code")


def _forged_code(stack: Stack, started: dict[str, Any], *, reuse_kid: bool) -> str:
    """The genuine claims, re-signed by a key the server never had (under its own kid, or
    under the server's active kid)."""
    foreign = ec.generate_private_key(ec.SECP256R1())
    genuine = parse_sign1(base45.b45decode(started["code"][4:]))
    kid = stack.rt.keyring.active_kid if reuse_kid else kid_for(foreign.public_key())
    forged = sign1(payload=genuine.payload, private_key=foreign, kid=kid)
    return "QG1:" + base45.b45encode(forged).decode()


def test_forged_code_with_unknown_key_id(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    forged = _forged_code(stack, started, reuse_kid=False)
    with pytest.raises(UnknownKey):
        phone.read_confirm_code(forged)
    error = api_error(lambda: phone.scan_text(forged, verify_offline=False))
    assert (error.status, error.code) == (401, "unknown_key")


def test_forged_code_reusing_the_servers_key_id(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    forged = _forged_code(stack, started, reuse_kid=True)
    with pytest.raises(BadSignature):
        phone.read_confirm_code(forged)
    error = api_error(lambda: phone.scan_text(forged, verify_offline=False))
    assert (error.status, error.code) == (401, "bad_signature")


def test_wrong_number_rejects_the_challenge(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, browser = stack.start(number_matching=True)
    phone.scan_text(started["code"])
    wrong = 10 + (started["number"] - 10 + 1) % 90
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=True, number=wrong))
    assert (error.status, error.code) == (403, "number_mismatch")
    status = browser.status()
    assert (status["state"], status["reason"]) == ("rejected", "number_mismatch")
    # The right number cannot rescue it now: a wrong guess ends the challenge.
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=True,
                                           number=started["number"]))
    assert error.code == "already_decided"


def test_missing_number(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start(number_matching=True)
    phone.scan_text(started["code"])
    error = api_error(lambda: phone.decide(started["challenge_id"], approve=True))
    assert (error.status, error.code) == (403, "number_required")


def test_result_stream_is_bound_to_the_starting_browser(stack: Stack) -> None:
    stack.enrolled_phone()
    started, _ = stack.start()
    other_started, _ = stack.start()
    base = f"{stack.base_url}/v1/confirm/challenges/{started['challenge_id']}"
    with httpx.Client() as http:
        wrong = {"Qrgate-Browser-Token": other_started["browser_token"]}
        for path in ("", "/events", "/qr.png"):
            assert problem_of(http.get(base + path, headers=wrong)) == (403, "wrong_browser")
        assert problem_of(http.get(base + "/events")) == (401, "missing_credentials")
        assert problem_of(http.post(base + "/rotate")) == (401, "missing_credentials")
        # The hosted page moves the token into an HttpOnly cookie scoped to this challenge.
        right = {"Qrgate-Browser-Token": started["browser_token"]}
        response = http.post(base + "/browser-session", headers=right)
        assert response.status_code == 204
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert f"Path=/v1/confirm/challenges/{started['challenge_id']}" in cookie
        assert http.get(base).json()["state"] == "pending"


def test_malformed_and_oversized_input(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    url = f"{stack.base_url}/v1/confirm/challenges"
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client() as http:
        assert problem_of(http.post(url, content=b"{not json", headers={
            **auth, "content-type": "application/json"})) == (422, "invalid_request")
        assert problem_of(http.post(url, json={"login": 5, "scene": []}, headers=auth)) == (
            422, "invalid_request")
        assert problem_of(http.post(url, json={"login": "alice", "scene": {
            "operation": "transfer"}, "surprise": 1}, headers=auth)) == (422, "invalid_request")
        huge = {"login": "alice", "scene": {"operation": "transfer", "content": "x" * 100_000}}
        assert problem_of(http.post(url, json=huge, headers=auth)) == (413, "payload_too_large")
        assert problem_of(http.post(url, json={"login": "alice", "scene": {
            "operation": "transfer"}})) == (401, "missing_api_key")
        assert problem_of(http.post(url, json={"login": "alice", "scene": {
            "operation": "transfer"}}, headers={"Authorization": "Bearer qgk_x_y"})) == (
            401, "bad_api_key")
        assert problem_of(http.post(url, json={"login": "nobody", "scene": {
            "operation": "transfer"}}, headers=auth)) == (404, "user_not_found")
        assert problem_of(http.get(f"{url}/{'0' * 32}", headers=auth)) == (
            404, "challenge_not_found")
        assert problem_of(http.get(f"{stack.base_url}/nowhere")) == (404, "not_found")
    for garbage in ("", "QG1:", "QG2:ABC", "hello", "QG1:" + "%" * 600, "QG1:" + "A" * 3000):
        error = api_error(lambda g=garbage: phone.scan_text(g, verify_offline=False))
        assert error.status in (400, 413, 422), (garbage[:10], error.code)
    response = phone._signed("POST", "/v1/confirm/scan", {"code": ["not", "a", "string"]})
    assert problem_of(response) == (422, "invalid_request")


def test_device_request_signatures_are_checked(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    body = json.dumps({"code": started["code"]}).encode()
    with httpx.Client(base_url=stack.base_url) as http:
        assert problem_of(http.post("/v1/confirm/scan", content=body, headers={
            "content-type": "application/json"})) == (401, "missing_signature")
        signed = phone._signed("POST", "/v1/confirm/scan", {"code": started["code"]})
        headers = {k: v for k, v in signed.request.headers.items() if k.startswith("qrgate-")}
        # The same signature over another body (a different code) must not verify.
        other = json.dumps({"code": started["code"] + "A"}).encode()
        assert problem_of(http.post("/v1/confirm/scan", content=other, headers={
            **headers, "content-type": "application/json"})) == (401, "bad_signature")
        stale = dict(headers, **{"qrgate-timestamp": str(int(stack.clock()) - 3600)})
        assert problem_of(http.post("/v1/confirm/scan", content=body, headers={
            **stale, "content-type": "application/json"}))[1] == "stale_request"


def test_refused_device_requests_are_audited(stack: Stack) -> None:
    phone = stack.enrolled_phone()
    started, _ = stack.start()
    phone.unbind()
    api_error(lambda: phone.scan_text(started["code"]))
    with stack.rt.read() as conn:
        entries = search_audit(conn, event="device.auth")
    assert [(e["reason"], e["device_id"]) for e in entries] == [
        ("device_unbound", phone.device_id)]


def test_wrong_numbers_count_across_challenges(stack: Stack) -> None:
    """A new challenge never resets the user's count of failed proofs (NIST SP 800-63B)."""
    phone = stack.enrolled_phone()
    limit = stack.rt.settings.user_max_failures

    def guess_wrong() -> None:
        started, _ = stack.start(number_matching=True)
        phone.scan_text(started["code"])
        wrong = 10 + (started["number"] - 10 + 1) % 90
        api_error(lambda: phone.decide(started["challenge_id"], approve=True, number=wrong))

    for _ in range(limit - 1):
        guess_wrong()
    # An approval resets the count ...
    started, _ = stack.start(number_matching=True)
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=True, number=started["number"])
    for _ in range(limit):
        guess_wrong()
    # ... and `limit` wrong numbers in a row stop new challenges for the user.
    error = api_error(stack.start)
    assert (error.status, error.code) == (423, "user_locked")
    with stack.rt.engine.begin() as conn:
        user = directory.find_user(conn, org_id=1, login="alice")
        directory.set_frozen(conn, user_id=user.id, frozen=False, now=stack.clock())
    assert stack.start()[0]["state"] == "pending"
