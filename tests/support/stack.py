"""A running qrgate (real uvicorn on loopback, real database) with a relying party, phones
and browsers around it. ``clock`` drives time for the server and the phones alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qrgate.accounts.provision import provision
from qrgate.cli.demo import free_port
from qrgate.clients.browser import BrowserSession
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import QrgateClient
from qrgate.config import Settings
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.qrimage import render_png
from qrgate.runtime import Runtime, build_runtime

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stack:
    rt: Runtime
    base_url: str
    api_key: str
    clock: Clock
    rp: QrgateClient
    closers: list[Callable[[], None]] = field(default_factory=list)

    def phone(self, name: str = "phone") -> PhoneSimulator:
        phone = PhoneSimulator(self.base_url, name=name, clock=self.clock)
        self.closers.append(phone.close)
        return phone

    def enrolled_phone(self, login: str = "alice", name: str = "phone") -> PhoneSimulator:
        phone = self.phone(name)
        enrolment = self.rp.start_enrolment(login)
        phone.enrol_from_png(render_png(enrolment["code"]), password=PASSWORD)
        return phone

    def start(self, login: str = "alice", **scene: Any) -> tuple[dict[str, Any], BrowserSession]:
        values: dict[str, Any] = {"operation": "transfer", "amount": "25.00", "currency": "EUR",
                                  "requester_ip": "198.51.100.20",
                                  "requester_ua": "Firefox on Linux", **scene}
        started = self.rp.start_confirm(login, **values)
        browser = BrowserSession(self.base_url, started["challenge_id"], started["browser_token"])
        self.closers.append(browser.close)
        return started, browser


def twin(phone: PhoneSimulator, node: Stack) -> PhoneSimulator:
    """The same phone (same device key and id) talking to another node."""
    other = PhoneSimulator(node.base_url, private_key=phone.private_key,
                           device_id=phone.device_id, server_keys=phone.server_keys,
                           clock=node.clock)
    node.closers.append(other.close)
    return other


def make_settings(tmp_path: Path, database_url: str, port: int, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, port=port,
                    public_url=f"http://127.0.0.1:{port}", **overrides)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stack_factory(
    tmp_path: Path, database_url: str, clock: Clock
) -> Iterator[Callable[..., Stack]]:
    """Builds a stack; ``policy`` sets the application's policy (number matching off by
    default so each test turns on what it checks)."""
    cleanups: list[Callable[[], None]] = []

    def build(policy: AppPolicy | None = None, *, join: Stack | None = None,
              via: str | None = None, **settings: Any) -> Stack:
        """``join``: another node of the same deployment (same keys, same database).
        ``via``: reach the database at this URL instead (e.g. through a proxy)."""
        port = free_port()
        rt = build_runtime(make_settings(tmp_path, via or database_url, port, **settings))
        rt.clock = clock
        if join is None:
            api_key = provision(
                rt, org_slug="bank", org_name="Example Bank", business_id="web",
                app_name="Web banking", origin="https://bank.example",
                policy=policy or AppPolicy(number_matching=NumberMatching.OFF),
                users={"alice": PASSWORD, "bob": PASSWORD, "carol": None},
            ).api_key
        else:
            api_key = join.api_key
        server = serve_in_thread(create_app(rt.settings, runtime=rt), port=port)
        base_url = server.__enter__()
        rp = QrgateClient(base_url, api_key=api_key)
        stack = Stack(rt=rt, base_url=base_url, api_key=api_key, clock=clock, rp=rp)

        def close() -> None:
            for closer in stack.closers:
                closer()
            rp.close()
            server.__exit__(None, None, None)
            rt.close()

        cleanups.append(close)
        return stack

    yield build
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()
