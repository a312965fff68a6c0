"""A relying party's webhook receiver for tests: a real HTTP server on loopback (threaded
``http.server``) that records every request and answers as the test scripts it: fail the
next N requests, answer slowly, or be down (not listening) and come up later on the same
port. It also notes when two requests for one ``webhook-id`` overlap in time, which two
nodes holding the same event at once would cause.

``verify`` checks a request the way a receiver following Standard Webhooks does, written
here from the standard itself rather than with qrgate's code; the tests also check it with
the ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.serving import free_port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def _opened() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    # Statuses for the next requests, in order; afterwards every request gets ``status``.
    script: list[int] = field(default_factory=list)
    status: int = 200
    # Seconds each request takes to answer.
    delay: float = 0.0
    # While cleared, every request waits (unanswered) until the test sets it.
    open: threading.Event = field(default_factory=_opened)
    received: list[Received] = field(default_factory=list)
    overlaps: int = 0
    _in_flight: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/qrgate"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                msg_id = headers.get("webhook-id", "")
                with receiver._lock:
                    if receiver._in_flight[msg_id]:
                        receiver.overlaps += 1
                    receiver._in_flight[msg_id] += 1
                    status = receiver.script.pop(0) if receiver.script else receiver.status
                try:
                    receiver.open.wait()
                    time.sleep(receiver.delay)
                    with receiver._lock:
                        receiver.received.append(Received(headers, body, status))
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver._in_flight[msg_id] -= 1

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def in_flight(self) -> int:
        """Requests received and not answered yet."""
        with self._lock:
            return sum(self._in_flight.values())

    def stop(self) -> None:
        self.open.set()  # no request may hold the server's shutdown
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.delivered() if r.event["type"] == event_type]


def verify(secret: str, request: Received, *, now: float, tolerance: float = 300) -> None:
    """Raise AssertionError unless ``request`` carries a valid Standard Webhooks signature
    by ``secret`` (``whsec_`` + base64) with a timestamp within ``tolerance`` of ``now``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, timestamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    assert abs(int(timestamp) - now) <= tolerance, (timestamp, now)
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + request.body,
                        hashlib.sha256).digest()
    signatures = [base64.b64decode(part.split(",", 1)[1])
                  for part in request.headers["webhook-signature"].split(" ")
                  if part.startswith("v1,")]
    assert any(hmac.compare_digest(expected, given) for given in signatures), request.headers


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0,
               advance: Callable[[], None] | None = None, what: str = "condition") -> None:
    """Poll ``condition``; ``advance`` (e.g. moving a test clock past a retry's delay) runs
    before each look, so retries the test clock holds back come due."""
    deadline = time.monotonic() + timeout
    while True:
        if advance is not None:
            advance()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
