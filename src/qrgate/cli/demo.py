"""``qrgate demo <scheme>``: run a whole scheme against a throwaway server and data
directory, printing each step; exit non-zero if any step fails."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qrgate.cli.failures import Failure, explain, failure_types
from qrgate.cli.main import LazyGroup
from qrgate.config import Settings

# The server, clients and storage are imported inside the scenarios, so that `qrgate --help`
# does not load them.
if TYPE_CHECKING:
    from qrgate.runtime import Runtime

T = TypeVar("T")
DEMO_PASSWORD = "correct horse battery"  # noqa: S105 - a throwaway demo user


class DemoFailed(Exception):
    """A demo step failed; the message names the step."""


# Scenarios in modules of their own, imported when run.
@click.group(cls=LazyGroup, lazy_subcommands={"gridcard": "qrgate.cli.demo_gridcard:gridcard"})
def demo() -> None:
    """End-to-end demonstrations against a throwaway server."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Steps:
    def __init__(self) -> None:
        self.number = 0

    def run(self, title: str, action: Callable[[], T]) -> T:
        self.number += 1
        click.echo(f"\n[{self.number}] {title}")
        # Any other exception is a bug in the demo or the server: main() reports it as one.
        expected: tuple[type[Exception], ...] = (DemoFailed, *failure_types())
        try:
            result = action()
        except expected as error:
            click.echo(f"    FAILED: {explain(error) or error}", err=True)
            raise DemoFailed(title) from error
        return result

    @staticmethod
    def say(line: str) -> None:
        click.echo(f"    {line}")


def _run_demo(name: str, scenario: Callable[[Path], None]) -> None:
    """Run ``scenario`` in a throwaway data directory; exit 1 at the first failed step."""
    with tempfile.TemporaryDirectory(prefix="qrgate-demo-") as tmp:
        try:
            scenario(Path(tmp))
        except DemoFailed as failed:
            raise Failure(f"demo {name} FAILED at: {failed}") from None
    click.echo(f"\ndemo {name}: all steps passed")


@demo.command("confirm")
def demo_confirm() -> None:
    """Scheme C: cross-device confirmation, from device binding to the pushed result."""
    _run_demo("confirm", _confirm)


def _confirm(data_dir: Path) -> None:
    from qrgate.accounts.provision import provision
    from qrgate.clients.browser import BrowserSession
    from qrgate.clients.phone import PhoneSimulator, decode_png
    from qrgate.clients.relying_party import QrgateClient
    from qrgate.core.policy import AppPolicy
    from qrgate.http.app import create_app
    from qrgate.http.local import serve_in_thread
    from qrgate.qrimage import render_png
    from qrgate.runtime import build_runtime

    steps = Steps()
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, public_url=f"http://127.0.0.1:{port}")
    rt = build_runtime(settings)
    org = steps.run("provision organisation 'demobank', app 'web-banking', user alice",
                    lambda: provision(rt, org_slug="demobank", org_name="Demo Bank",
                                      business_id="web-banking", app_name="Web banking",
                                      origin="https://bank.example", policy=AppPolicy(),
                                      users={"alice": DEMO_PASSWORD}))
    steps.say(f"API key issued (shown once): {org.api_key[:16]}...")
    with serve_in_thread(create_app(settings, runtime=rt), port=port) as base_url:
        steps.say(f"server on {base_url}")
        rp = QrgateClient(base_url, api_key=org.api_key)
        phone = PhoneSimulator(base_url, name="alice's phone", show=steps.say)
        enrolment = steps.run("registration: the bank shows alice an enrolment QR",
                              lambda: rp.start_enrolment("alice"))
        png = render_png(enrolment["code"])
        steps.say(f"enrolment QR: {len(png)} bytes PNG, {len(enrolment['code'])} chars")
        steps.run("the phone decodes the PNG and binds itself, confirmed by alice's password",
                  lambda: phone.enrol(decode_png(png), password=DEMO_PASSWORD))

        started = steps.run(
            "601/602: alice's browser asks for a transfer of 2500.00 EUR; the bank asks qrgate",
            lambda: rp.start_confirm("alice", operation="transfer", amount="2500.00",
                                     currency="EUR", source="web-banking/transfers",
                                     content="to Bob, IBAN DE89 3704 0044 0532 0130 00",
                                     requester_ip="203.0.113.7",
                                     requester_ua="Firefox 133 on Linux"))
        steps.say(f"challenge {started['challenge_id']} verifier={started['verifier']} "
                  f"number shown in the browser: {started['number']}")
        browser = BrowserSession(base_url, started["challenge_id"], started["browser_token"])
        seen: list[dict[str, Any]] = []
        listener = threading.Thread(target=lambda: seen.extend(browser.events()), daemon=True)
        steps.run("605: the browser opens its event stream and shows the QR",
                  listener.start)
        qr_png = steps.run("the browser fetches the QR image", browser.qr_png)
        context = steps.run("606/607: the phone decodes the PNG, verifies it offline and scans",
                            lambda: phone.scan_png(qr_png))
        if not context["number_matching"]:
            raise DemoFailed("policy should ask for number matching at 2500 EUR")
        result = steps.run("608: alice types the number from her browser and approves",
                           lambda: phone.decide(context["challenge_id"], approve=True,
                                                number=started["number"]))
        listener.join(timeout=10)
        steps.run("609: the browser got the result pushed",
                  lambda: _expect(seen and seen[-1]["state"] == "approved",
                                  f"browser saw {[e['state'] for e in seen]}"))
        steps.say(f"phone result: {result['state']}; browser events: "
                  f"{' -> '.join(e['state'] for e in seen)}")

        steps.run("a replayed scan of the same code is refused",
                  lambda: _expect_error(lambda: phone.scan_png(qr_png), "already_decided"))
        steps.run("both sides search their history for 'transfer'",
                  lambda: _expect(len(rp.history(q="transfer")) == 1
                                  and len(phone.history(q="bob")) == 1, "history search"))
        rp.close()
        phone.close()
        browser.close()

    steps.run("qrgate audit verify", partial(_audit_intact, rt, steps))
    rt.close()


def _audit_intact(rt: Runtime, steps: Steps) -> None:
    from qrgate.storage.audit import verify_audit

    with rt.read() as conn:
        report = verify_audit(conn)
    _expect(report.ok, f"audit chain broken: {report.problem}")
    steps.say(f"{report.checked} audit entries, chain intact")


def _expect(condition: object, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


def _expect_error(action: Callable[[], object], code: str) -> None:
    from qrgate.clients.relying_party import ApiError

    try:
        action()
    except ApiError as error:
        _expect(error.code == code, f"expected {code}, got {error.code}")
        Steps.say(f"refused with {error.status} {error.code}")
        return
    raise DemoFailed(f"expected error {code}")


@demo.command("txsign")
def demo_txsign() -> None:
    """Scheme E: OCRA tokens sign two transactions, chained through real QR images."""
    _run_demo("txsign", _txsign)


def _txsign(data_dir: Path) -> None:
    import httpx

    from qrgate.accounts.provision import provision
    from qrgate.clients.phone import decode_png
    from qrgate.clients.relying_party import QrgateClient
    from qrgate.clients.token import SoftToken
    from qrgate.core.keyring import PublicKeySet
    from qrgate.core.txsign import read_chain_code
    from qrgate.http.app import create_app
    from qrgate.http.local import serve_in_thread
    from qrgate.qrimage import decode_image, render_png
    from qrgate.runtime import build_runtime

    steps = Steps()
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, public_url=f"http://127.0.0.1:{port}")
    rt = build_runtime(settings)
    org = steps.run("provision organisation 'demobank', app 'trading', users alice and bob",
                    lambda: provision(rt, org_slug="demobank", org_name="Demo Bank",
                                      business_id="trading", app_name="Trading",
                                      users={"alice": None, "bob": None}))
    with serve_in_thread(create_app(settings, runtime=rt), port=port) as base_url:
        steps.say(f"server on {base_url}")
        platform = QrgateClient(base_url, api_key=org.api_key)
        keys = PublicKeySet.from_jwks(httpx.get(f"{base_url}/v1/keys").json())
        tokens: dict[str, SoftToken] = {}
        for login in ("alice", "bob"):
            enrolment = steps.run(f"enrol {login}'s OCRA token: its QR carries the secret once",
                                  partial(platform.enrol_token, login))
            png = render_png(enrolment["code"])
            tokens[login] = steps.run(
                f"{login}'s phone decodes the PNG and activates the token ({enrolment['suite']})",
                partial(SoftToken.enrol, decode_png(png), server_keys=keys, show=steps.say))
        first = steps.run("S1: the platform makes alice's transaction and its challenge",
                          lambda: platform.start_transaction(
                              "alice", demand="buy 10 ACME at 12.50",
                              comment="for the pension fund"))
        steps.say(f"OCRA question (SHA-256 of the transaction): {first['question']}")
        challenge = decode_png(platform.transaction_png(first["transaction_id"], "challenge"))
        response = steps.run("S2: alice's token reads the challenge QR, shows it and answers",
                             lambda: tokens["alice"].sign(challenge))
        steps.run("S3/S4: the server checks the response; S5: the chain QR is issued",
                  lambda: platform.submit_response(first["transaction_id"], response))
        first_png = platform.transaction_png(first["transaction_id"], "chain")

        scanned = steps.run("bob's phone decodes alice's chain QR and verifies it offline",
                            lambda: read_chain_code(decode_png(first_png), keys=keys,
                                                    now=time.time()))
        steps.say(f"link 1 by {scanned.links[0].text.account if scanned.links[0].text else '?'}"
                  f", response {scanned.links[0].response}")
        second = steps.run("S6-S8: the platform forms bob's transaction containing alice's",
                           lambda: platform.start_transaction(
                               "bob", demand="co-sign the ACME order",
                               comment="checked against the mandate",
                               parent_code=decode_png(first_png)))
        challenge = decode_png(platform.transaction_png(second["transaction_id"], "challenge"))
        response = steps.run("S9: bob's token answers", lambda: tokens["bob"].sign(challenge))
        steps.run("S10/S11: checked; the second QR encodes the chain",
                  lambda: platform.submit_response(second["transaction_id"], response))
        (symbol,) = decode_image(platform.transaction_png(second["transaction_id"], "chain"))
        chain = steps.run(f"anyone verifies the chain offline (QR version {symbol.version}, "
                          f"ECC {symbol.ec_level})",
                          lambda: read_chain_code(symbol.text, keys=keys, now=time.time()))
        for number, link in enumerate(chain.links, start=1):
            text = link.text
            steps.say(f"link {number}: {text.account if text else '?'}: "
                      f"{text.demand if text else '(fetch)'} / response {link.response}")
        _expect(chain.links[1].parent_digest == chain.links[0].digest, "links are chained")

        third = platform.start_transaction("alice", demand="sell all",
                                           comment="pay invoice 2026-117")
        other = platform.start_transaction("alice", demand="sell all",
                                           comment="pay invoice 2026-118")
        stolen = tokens["alice"].sign(third["challenge_code"])
        steps.run("a response for one transaction is refused on another (one byte differs)",
                  lambda: _expect_error(lambda: platform.submit_response(
                      other["transaction_id"], stolen), "wrong_response"))
        platform.close()

    steps.run("qrgate audit verify", partial(_audit_intact, rt, steps))
    rt.close()
