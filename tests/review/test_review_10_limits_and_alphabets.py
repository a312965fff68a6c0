"""Review 10: a chunked body over the limit is a 413; logins have an alphabet every route
can carry; a requester IP is an IP; a transaction's platform is one the key may speak for;
the code length the API documents is the one it enforces."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from qrgate.accounts.directory import create_app, org_id_by_slug
from qrgate.clients.relying_party import ApiError
from qrgate.core.codes import MAX_CODE_CHARS
from qrgate.core.policy import AppPolicy
from support.stack import Stack
from support.txsign import Platform, enrolled_token


def test_review_10_a_chunked_body_over_the_limit_is_413(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"login": "chunky", "display_name": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    response = httpx.post(f"{stack.base_url}/v1/users", content=chunks(),
                          headers={"Authorization": f"Bearer {stack.api_key}",
                                   "Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize("login", ["ü/../x y", "a/b", "..", ".hidden", "with space", "",
                                   "x" * 129])
def test_review_10_logins_outside_the_alphabet_are_refused(stack: Stack, login: str) -> None:
    with pytest.raises(ApiError) as caught:
        stack.rp.create_user(login)
    assert (caught.value.status, caught.value.code) == (422, "invalid_request")


def test_review_10_every_created_login_is_reachable(stack: Stack) -> None:
    for login in ("alice.smith@example.com", "bob+test", "x_y-z", "A1"):
        stack.rp.create_user(login)
        assert stack.rp.list_devices(login) == []


@pytest.mark.parametrize("ip", ["999.1.1.1", "1.2.3", "localhost", "::gg", " 1.2.3.4"])
def test_review_10_requester_ip_must_be_an_address(stack: Stack, ip: str) -> None:
    stack.enrolled_phone()
    with pytest.raises(ApiError) as caught:
        stack.start(requester_ip=ip)
    assert (caught.value.status, caught.value.code) == (422, "invalid_request")


def test_review_10_requester_ip_may_be_v4_v6_or_absent(stack: Stack) -> None:
    stack.enrolled_phone()
    for ip in ("203.0.113.7", "2001:db8::1", ""):
        assert stack.start(requester_ip=ip)[0]["state"] == "pending"


def test_review_10_platform_is_bound_to_the_keys_organisation(stack: Stack) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    own = platform.call("POST", "/v1/txsign/transactions",
                        json={"account": "alice", "demand": "pay 1 EUR"})
    assert own["platform"] == "web"  # the key's own application
    with stack.rt.engine.begin() as conn:
        create_app(conn, org_id=org_id_by_slug(conn, "bank"), business_id="trading", name="Trading",
                   origin=None, policy=AppPolicy(), now=stack.clock())
    sibling = platform.call("POST", "/v1/txsign/transactions",
                            json={"account": "alice", "platform": "trading",
                                  "demand": "buy 1 ACME"})
    assert sibling["platform"] == "trading"
    unknown = platform.http.post("/v1/txsign/transactions",
                                 json={"account": "alice", "platform": "somebody-else",
                                       "demand": "pay 1 EUR"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "app_not_found")
    free_text = platform.http.post("/v1/txsign/transactions",
                                   json={"account": "alice", "platform": "Any Bank Ltd.",
                                         "demand": "pay 1 EUR"})
    assert (free_text.status_code, free_text.json()["code"]) == (422, "invalid_request")


def test_review_10_verify_documents_and_enforces_one_length(stack: Stack) -> None:
    schema = httpx.get(f"{stack.base_url}/openapi.json").json()
    code = schema["components"]["schemas"]["VerifyIn"]["properties"]["code"]
    assert code["maxLength"] == MAX_CODE_CHARS
    for length in (MAX_CODE_CHARS + 1, 4096):
        response = httpx.post(f"{stack.base_url}/v1/txsign/verify",
                              json={"code": "QG1:" + "A" * (length - 4)})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    at_limit = httpx.post(f"{stack.base_url}/v1/txsign/verify",
                          json={"code": "QG1:" + "A" * (MAX_CODE_CHARS - 4)})
    assert at_limit.status_code == 400  # read, then refused as not Base45/COSE
