"""A running qrgate (real uvicorn on loopback, real database) with a relying party, phones
and browsers around it. ``clock`` drives time for the server and the phones alike.

Every stack holds two organisations. The first (``bank``, application ``web``) is the one
tests talk to through ``stack.rp``. The second (``stack.other``: ``rival``, application
``shop``) has users with the same logins (alice, bob, carol) and one phone bound to its
alice, so that a lookup which forgets the organisation meets a namesake instead of finding
nothing (``tests/test_tenant_isolation.py`` walks every operation that way).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, update

from qrgate.accounts import directory
from qrgate.accounts.provision import provision
from qrgate.accounts.tokens import new_id
from qrgate.cli.demo import free_port
from qrgate.clients.browser import BrowserSession
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.relying_party import QrgateClient
from qrgate.config import Settings
from qrgate.core.device_auth import public_key_bytes
from qrgate.core.keyring import PublicKeySet
from qrgate.core.passwords import new_password_hash
from qrgate.core.policy import AppPolicy, NumberMatching
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.qrimage import render_png
from qrgate.runtime import Runtime, build_runtime
from qrgate.storage.models import devices
from qrgate.storage.models import users as users_table

PASSWORD = "correct horse battery"
LOGINS = ("alice", "bob", "carol")
OTHER_ORG_SLUG = "rival"
OTHER_BUSINESS_ID = "shop"


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _start(rp: QrgateClient, base_url: str, closers: list[Callable[[], None]], login: str,
           scene: dict[str, Any]) -> tuple[dict[str, Any], BrowserSession]:
    values: dict[str, Any] = {"operation": "transfer", "amount": "25.00", "currency": "EUR",
                              "requester_ip": "198.51.100.20",
                              "requester_ua": "Firefox on Linux", **scene}
    started = rp.start_confirm(login, **values)
    browser = BrowserSession(base_url, started["challenge_id"], started["browser_token"])
    closers.append(browser.close)
    return started, browser


@dataclass
class OtherOrganisation:
    """The stack's second organisation: its own application, API key and users with the
    first one's logins, none with a password (scrypt is slow and no test needs one: a phone
    binds with the enrolment's confirmation code), and one phone bound to its alice."""

    org_id: int
    slug: str
    business_id: str
    api_key: str
    alice_device_id: str
    alice_device_key: ec.EllipticCurvePrivateKey
    server_keys: PublicKeySet
    base_url: str
    clock: Clock
    closers: list[Callable[[], None]]

    @functools.cached_property
    def rp(self) -> QrgateClient:
        """Made on first use: an HTTP client costs tens of milliseconds (its TLS context),
        and most tests never call the second organisation."""
        rp = QrgateClient(self.base_url, api_key=self.api_key)
        self.closers.append(rp.close)
        return rp

    def phone(self, name: str = "rival's alice") -> PhoneSimulator:
        """The phone bound to this organisation's alice (each call: the same key and id)."""
        phone = PhoneSimulator(self.base_url, name=name, private_key=self.alice_device_key,
                               device_id=self.alice_device_id, server_keys=self.server_keys,
                               clock=self.clock)
        self.closers.append(phone.close)
        return phone

    def enrolled_phone(self, login: str, name: str = "rival's phone") -> PhoneSimulator:
        phone = PhoneSimulator(self.base_url, name=name, clock=self.clock)
        self.closers.append(phone.close)
        enrolment = self.rp.start_enrolment(login)
        phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
        return phone

    def start(self, login: str = "alice", **scene: Any) -> tuple[dict[str, Any], BrowserSession]:
        return _start(self.rp, self.base_url, self.closers, login, scene)

    def on_node(self, base_url: str, closers: list[Callable[[], None]]) -> OtherOrganisation:
        """The same organisation, reached through another node of the deployment."""
        return replace(self, base_url=base_url, closers=closers)


@dataclass
class Stack:
    rt: Runtime
    base_url: str
    api_key: str
    clock: Clock
    rp: QrgateClient
    other: OtherOrganisation
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
        return _start(self.rp, self.base_url, self.closers, login, scene)


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


def provision_other(rt: Runtime, *, base_url: str, clock: Clock,
                    closers: list[Callable[[], None]]) -> OtherOrganisation:
    """The second organisation. Its phone is bound by writing the device row, as an
    operator's provisioning would: no enrolment and no audit entry, so the first
    organisation's tables hold what its tests expect, and no password is hashed."""
    provisioned = provision(
        rt, org_slug=OTHER_ORG_SLUG, org_name="Rival Shop", business_id=OTHER_BUSINESS_ID,
        app_name="Online shop", origin="https://shop.example",
        policy=AppPolicy(number_matching=NumberMatching.OFF),
        users=dict.fromkeys(LOGINS),
    )
    device_key = ec.generate_private_key(ec.SECP256R1())
    device_id = new_id()
    with rt.engine.begin() as conn:
        alice = directory.find_user(conn, org_id=provisioned.org_id, login="alice")
        conn.execute(insert(devices).values(
            id=device_id, user_id=alice.id, client_app_id="qrgate-phone",
            name="rival's alice", public_key=public_key_bytes(device_key.public_key()),
            status="active", created_at=rt.clock(),
        ))
    return OtherOrganisation(
        org_id=provisioned.org_id, slug=OTHER_ORG_SLUG, business_id=OTHER_BUSINESS_ID,
        api_key=provisioned.api_key, alice_device_id=device_id,
        alice_device_key=device_key, server_keys=rt.keyring.verifier, base_url=base_url,
        clock=clock, closers=closers,
    )


@functools.cache
def password_hash(password: str) -> str:
    """A real scrypt hash of ``password``, made once per process: scrypt takes some 80 ms on
    purpose, and nearly every stack gives alice and bob the same test password."""
    return new_password_hash(password)


def provision_bank(rt: Runtime, *, policy: AppPolicy | None,
                   users: dict[str, str | None]) -> str:
    """The bank, its users and its API key. Users get their password hashes as an operator
    importing accounts would give them (verified by the real ``verify_password``)."""
    provisioned = provision(
        rt, org_slug="bank", org_name="Example Bank", business_id="web",
        app_name="Web banking", origin="https://bank.example",
        policy=policy or AppPolicy(number_matching=NumberMatching.OFF),
        users=dict.fromkeys(users))
    with rt.engine.begin() as conn:
        for login, password in users.items():
            if password is not None:
                conn.execute(update(users_table)
                             .where(users_table.c.org_id == provisioned.org_id,
                                    users_table.c.login == login)
                             .values(password_hash=password_hash(password)))
    return provisioned.api_key


def serve_stack(*, home: Path, database_url: str, clock: Clock, join: Stack | None,
                policy: AppPolicy | None = None, users: dict[str, str | None] | None = None,
                **settings: Any) -> tuple[Stack, Callable[[], None]]:
    """A node serving on a free port, and what stops it. ``join``: another node of the same
    deployment (its API key and second organisation); else the bank is provisioned with
    ``policy`` (number matching off by default) and ``users``."""
    port = free_port()
    rt = build_runtime(make_settings(home, database_url, port, **settings))
    rt.clock = clock
    api_key = join.api_key if join is not None else provision_bank(rt, policy=policy,
                                                                    users=users or {})
    server = serve_in_thread(create_app(rt.settings, runtime=rt), port=port)
    base_url = server.__enter__()
    rp = QrgateClient(base_url, api_key=api_key)
    closers: list[Callable[[], None]] = []
    other = (provision_other(rt, base_url=base_url, clock=clock, closers=closers)
             if join is None else join.other.on_node(base_url, closers))
    stack = Stack(rt=rt, base_url=base_url, api_key=api_key, clock=clock, rp=rp,
                  other=other, closers=closers)

    def close() -> None:
        for closer in stack.closers:
            closer()
        rp.close()
        server.__exit__(None, None, None)
        rt.close()

    return stack, close


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
        stack, close = serve_stack(
            home=tmp_path, database_url=via or database_url, clock=clock, join=join,
            policy=policy, users={"alice": PASSWORD, "bob": PASSWORD, "carol": None},
            **settings)
        cleanups.append(close)
        return stack

    yield build
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()
