"""What the waiting web page does, as a Python object: it holds the browser-binding secret,
shows the QR (fetches the image), rotates it, and waits for the result over Server-Sent
Events, with polling as the fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from qrgate.clients.relying_party import raise_for_problem

TERMINAL = frozenset({"approved", "denied", "rejected", "expired"})


@dataclass
class BrowserSession:
    base_url: str
    challenge_id: str
    browser_token: str
    transport: httpx.BaseTransport | None = None
    _http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, transport=self.transport,
                                  timeout=httpx.Timeout(10.0, read=30.0),
                                  headers={"Qrgate-Browser-Token": self.browser_token})

    def close(self) -> None:
        self._http.close()

    @property
    def _base(self) -> str:
        return f"/v1/confirm/challenges/{self.challenge_id}"

    def _get(self, path: str) -> httpx.Response:
        response = self._http.get(self._base + path)
        raise_for_problem(response)
        return response

    def qr_png(self) -> bytes:
        return self._get("/qr.png").content

    def qr_svg(self) -> str:
        return self._get("/qr.svg").text

    def status(self) -> dict[str, Any]:
        return dict(self._get("").json())

    def send_offline_code(self, code: str) -> dict[str, Any]:
        """The code the phone showed when it could not reach the server, typed here."""
        response = self._http.post(self._base + "/offline-code", json={"code": code})
        raise_for_problem(response)
        return dict(response.json())

    def rotate(self) -> dict[str, Any]:
        response = self._http.post(self._base + "/rotate")
        raise_for_problem(response)
        return dict(response.json())

    def events(self) -> Iterator[dict[str, Any]]:
        """State events until a terminal state (SSE)."""
        with self._http.stream("GET", self._base + "/events") as response:
            raise_for_problem(response)
            event, data = "", ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    if event == "state":
                        payload = dict(json.loads(data))
                        yield payload
                        if payload["state"] in TERMINAL:
                            return
                    event, data = "", ""

    def wait_result(self, *, timeout: float = 30.0, poll_interval: float = 0.2) -> dict[str, Any]:
        """The poll fallback: for clients that cannot hold an event stream open."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["state"] in TERMINAL or time.monotonic() > deadline:
                return status
            time.sleep(poll_interval)
