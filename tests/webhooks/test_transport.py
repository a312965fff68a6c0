"""One attempt on the wire: the address connected to is the address checked (a name that
resolves inwards is refused), redirects are not followed, a slow receiver times out, and
nothing the network does raises."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from qrgate.webhooks import transport
from qrgate.webhooks.destinations import DestinationPolicy
from qrgate.webhooks.retry import Outcome
from qrgate.webhooks.transport import RefusedDestination, Sender
from support.serving import free_port
from support.webhook_receiver import Receiver

T = TypeVar("T")
BODY = b'{"type":"test"}'
HEADERS = {"content-type": "application/json", "webhook-id": "00" * 16}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on an event loop of its own, in a thread: the test process may already run a
    loop in this one (the browser tests' Playwright does)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def redirecting() -> Iterator[int]:
    """A server on loopback that answers every POST with a redirect to itself."""
    port = free_port()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(307)
            self.send_header("location", f"http://127.0.0.1:{port}/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


async def post(url: str, *, policy: DestinationPolicy) -> Outcome:
    """One attempt with a sender of its own, closed afterwards."""
    sender = Sender(policy)
    try:
        return await sender.post(url, headers=HEADERS, body=BODY)
    finally:
        await sender.close()


LOOPBACK = DestinationPolicy(allow_loopback=True)


def test_a_name_that_resolves_to_this_machine_is_not_connected_to() -> None:
    """``localhost`` stands for any public-looking name whose DNS answer points inwards
    (DNS rebinding): the URL check cannot see it, the connection check does."""
    backend = transport._GuardedBackend(DestinationPolicy().address_allowed)
    with pytest.raises(RefusedDestination, match=r"127\.0\.0\.1|::1"):
        run(backend.connect_tcp("localhost", free_port()))


def test_a_delivery_answered_2xx(receiver: Receiver) -> None:
    outcome = run(post(receiver.url, policy=LOOPBACK))
    assert outcome.delivered and outcome.status == 200
    (request,) = receiver.received
    assert request.body == BODY and request.headers["user-agent"].startswith("qrgate/")


def test_redirects_are_not_followed(redirecting: int) -> None:
    outcome = run(post(f"http://127.0.0.1:{redirecting}/hook", policy=LOOPBACK))
    assert (outcome.status, outcome.delivered) == (307, False)


def test_a_slow_receiver_times_out(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "TIMEOUT", 0.3)
    monkeypatch.setattr(transport, "_PHASES", {"connect": 0.3, "read": 0.3, "write": 0.3,
                                               "pool": 0.3})
    receiver.delay = 1.0
    outcome = run(post(receiver.url, policy=LOOPBACK))
    assert outcome.status is None and outcome.error is not None and not outcome.delivered


def test_what_the_network_does_is_an_outcome_never_an_exception() -> None:
    refused = run(post(f"http://127.0.0.1:{free_port()}/", policy=LOOPBACK))
    unknown = run(post("https://hooks.bank.invalid/", policy=LOOPBACK))
    # Loopback allowed for tests, yet the settings say no more: checked at each attempt.
    barred = run(post(f"http://127.0.0.1:{free_port()}/", policy=DestinationPolicy()))
    assert refused.status is None and "Connect" in (refused.error or "")
    assert unknown.status is None and "resolve" in (unknown.error or "")
    assert barred.status is None and "refused" in (barred.error or "")
