"""Review 8: bad input is a 4xx problem document on both databases, never a 500, and the
keep-alive connection stays usable afterwards."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from support.stack import Stack


def exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request on an open connection and read exactly one response."""
    sock.sendall(request)
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline().strip()) != b"":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return status, headers, body


def request(method: str, target: str, *, host: str, api_key: str, body: Any = None) -> bytes:
    raw = b"" if body is None else json.dumps(body).encode()
    head = (f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n")
    return head.encode() + raw


LONG = "a" * 40 + "0" * 33
BAD_REQUESTS = [
    ("POST", "/v1/users", {"login": "nul\u0000here", "password": "correct horse battery"}),
    ("POST", "/v1/users", {"login": "alice2", "display_name": "a\u0000b"}),
    ("POST", "/v1/confirm/challenges", {"login": "alice", "scene": {
        "operation": "transfer", "content": "to\u0000Bob"}}),
    ("POST", "/v1/txsign/transactions", {"account": "alice", "demand": "x\u0000y"}),
    ("GET", "/v1/confirm/challenges?q=%00", None),
    ("GET", "/v1/users/al%00ice", None),
    ("POST", f"/v1/confirm/challenges/{LONG}/cancel", None),
    ("POST", f"/v1/confirm/challenges/{LONG}/otp", {"otp": "123456"}),
    ("POST", f"/v1/confirm/challenges/{LONG}/decision", {"decision": "approve"}),
    ("DELETE", f"/v1/users/alice/devices/{LONG}", None),
    ("GET", f"/v1/txsign/transactions/{LONG}", None),
]


@pytest.mark.parametrize(("method", "target", "body"), BAD_REQUESTS)
def test_review_8_bad_input_is_a_4xx_and_keeps_the_connection(
        stack: Stack, method: str, target: str, body: Any) -> None:
    url = urlparse(stack.base_url)
    host = f"{url.hostname}:{url.port}"
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        status, headers, raw = exchange(sock, request(method, target, host=host,
                                                      api_key=stack.api_key, body=body))
        assert 400 <= status < 500, (status, raw)
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(raw)["code"] in ("invalid_request", "not_found")
        assert headers.get("connection") != "close"
        # The same connection answers the next request.
        status, _, _ = exchange(sock, request("GET", "/healthz", host=host,
                                              api_key=stack.api_key))
        assert status == 200


def test_review_8_device_paths_refuse_long_ids_before_authentication(stack: Stack) -> None:
    response = httpx.post(f"{stack.base_url}/v1/confirm/challenges/{LONG}/decision",
                          json={"decision": "approve"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
