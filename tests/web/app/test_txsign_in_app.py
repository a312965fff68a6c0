"""Scheme E with the phone app: a token enrolled by scanning its QR, a transaction scanned,
shown, signed (the response typed on the platform), and a two-link chain made with a second
user's phone and verified on a phone, all through the camera."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Route, expect

from qrgate.clients.token import SoftToken
from support.phone_app import WAIT_MS, PhoneApp, add_token
from support.stack import Stack
from support.txsign import Platform, server_keys


def sign(app: PhoneApp, stack: Stack, transaction_id: str) -> str:
    """Scan the challenge, check what is shown, sign; the response as the user reads it."""
    app.scan(stack.rp.transaction_png(transaction_id, "challenge"))
    expect(app.page.locator("#qg-screen h1")).to_have_text("Sign this transaction?")
    app.page.get_by_role("button", name="Sign").click()
    shown = app.page.locator("#qg-response")
    expect(shown).to_be_visible(timeout=WAIT_MS)
    return shown.inner_text().replace(" ", "")


def test_two_users_sign_a_chain_and_a_phone_verifies_it(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    alice = phone_factory(stack.base_url)
    alice.open()
    add_token(alice, stack, "alice")
    alice.page.locator(".tabs a[href='#/']").click()
    expect(alice.page.locator(".entry-title")).to_have_text(["alice"])

    first = stack.rp.start_transaction("alice", demand="pay 120.00 EUR to ACME",
                                       comment="invoice 7")
    alice.scan(stack.rp.transaction_png(first["transaction_id"], "challenge"))
    assert alice.fact("Request") == "pay 120.00 EUR to ACME"
    assert alice.fact("Comment") == "invoice 7"
    assert alice.fact("Account") == "alice"
    alice.page.get_by_role("button", name="Sign").click()
    response = alice.page.locator("#qg-response").inner_text().replace(" ", "")
    signed = stack.rp.submit_response(first["transaction_id"], response)
    assert signed["state"] == "signed"

    bob = phone_factory(stack.base_url)
    bob.open()
    add_token(bob, stack, "bob")
    second = stack.rp.start_transaction("bob", demand="approve the payment",
                                        comment="second signature",
                                        parent_code=signed["chain_code"])
    bob.scan(stack.rp.transaction_png(second["transaction_id"], "challenge"))
    assert bob.fact("Chain") == "Continues an earlier signed transaction"
    bob.page.get_by_role("button", name="Sign").click()
    response = bob.page.locator("#qg-response").inner_text().replace(" ", "")
    chained = stack.rp.submit_response(second["transaction_id"], response)
    assert chained["state"] == "signed"

    alice.scan(stack.rp.transaction_png(second["transaction_id"], "chain"))
    expect(alice.page.locator("#qg-chain-verdict")).to_contain_text("Transactions in the chain: 2")
    links = alice.page.locator(".chain .link")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_contain_text("pay 120.00 EUR to ACME")
    expect(links.nth(1)).to_contain_text("approve the payment")
    expect(links.nth(1)).to_contain_text(response)


def test_a_token_signs_only_its_own_account(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    stack, _ = app_stack
    app = phone_factory(stack.base_url)
    app.open()
    add_token(app, stack, "alice")
    # Bob's token lives on Bob's own phone (the Python simulator here).
    SoftToken.enrol(stack.rp.enrol_token("bob")["code"], server_keys=server_keys(stack))
    other = stack.rp.start_transaction("bob", demand="pay 5.00 EUR")
    app.scan(stack.rp.transaction_png(other["transaction_id"], "challenge"))
    assert app.refusal_code() == "wrong_user"


def test_a_chain_too_long_for_its_texts_is_checked_against_the_fetched_texts(
    app_stack: tuple[Stack, Callable[[], None]], phone_factory: Callable[..., PhoneApp],
) -> None:
    """Links that carry only their text's digest and URL: the phone fetches each text and
    shows it only if it hashes to the signed digest."""
    stack, _ = app_stack
    platform = Platform(stack)
    alice = SoftToken.enrol(stack.rp.enrol_token("alice")["code"], server_keys=server_keys(stack))
    bob = SoftToken.enrol(stack.rp.enrol_token("bob")["code"], server_keys=server_keys(stack))
    first = platform.start("alice", demand="wire " + "p" * 195, comment="c" * 200)
    signed = platform.respond(first["transaction_id"], alice.sign(first["challenge_code"]))
    second = platform.start("bob", demand="d" * 200, comment="e" * 200,
                            parent_code=signed["chain_code"])
    platform.respond(second["transaction_id"], bob.sign(second["challenge_code"]))

    app = phone_factory(stack.base_url)
    app.open()
    app.scan(platform.image(second["transaction_id"], "chain"))
    expect(app.page.locator("#qg-chain-verdict")).to_contain_text("Transactions in the chain: 2")
    links = app.page.locator(".chain .link")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_contain_text("wire " + "p" * 195)
    expect(links.nth(1)).to_contain_text("e" * 200)
    for index in range(2):
        expect(links.nth(index)).to_have_attribute("data-verified", "yes")
    fetched = [url for url in app.api_calls() if url.endswith("/text")]
    assert len(fetched) == 2

    # A text changed on its way (a hostile proxy, a tampered server) is refused, not shown.
    def altered(route: Route) -> None:
        text = route.fetch().json()
        route.fulfill(json={**text, "comment": text["comment"] + "!"})

    app.page.route("**/text", altered)
    app.scan(platform.image(second["transaction_id"], "chain"))
    expect(app.page.locator("#qg-chain-verdict")).to_contain_text("could not be checked")
    for index in range(2):
        expect(links.nth(index)).to_have_attribute("data-verified", "partly")
        expect(links.nth(index).locator(".error")).to_have_attribute("data-code",
                                                                   "text_mismatch")
