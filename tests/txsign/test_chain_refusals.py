"""Chain codes the platform refuses to build on, or that do not verify (scheme E, claims
4-5), made the real ways such codes come about rather than from garbage strings:

* a genuine chain code whose transaction was changed in the database since it was signed,
  or a code carrying the server's own signature over a link the platform never signed this
  way (a key that leaked, a code minted from a backup): ``tampered_chain``;
* a genuine chain code of another organisation of this deployment: ``unknown_parent``;
  one of another deployment, signed by a key this one never had: ``unknown_key``;
* a fifth link: ``chain_too_long``;
* links spliced from two genuine chains under the server's signature: ``broken_chain``;
* a carried text that differs from its signed digest, and a text fetched from the server
  that differs from it (changed in the database): ``text_mismatch``.

Codes "signed by the server's key" are signed with the running server's real keyring, as
someone holding that key would sign them: the signature verifies, so only the checks after
it stand between them and a signed chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from qrgate.accounts.provision import provision
from qrgate.cli.demo import free_port
from qrgate.cli.main import cli
from qrgate.clients.relying_party import ApiError
from qrgate.clients.token import SoftToken
from qrgate.config import Settings
from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.keyring import PublicKeySet
from qrgate.core.txsign import (
    MAX_CHAIN_LINKS,
    ChainClaim,
    LinkKey,
    issue_chain_code,
    read_chain_code,
    signed_link,
)
from qrgate.errors import Rejected, UnknownKey
from qrgate.http.app import create_app
from qrgate.http.local import serve_in_thread
from qrgate.qrimage import render_png
from qrgate.runtime import build_runtime
from qrgate.storage.models import transactions
from qrgate.txsign import platform as txplatform
from support.stack import Clock, Stack
from support.txsign import Platform, enrolled_token, server_keys

Raw = list[dict[int, Any]]


def refused(action: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value.status, caught.value.code


def signed(platform: Platform, token: SoftToken, account: str, *,
           parent_code: str | None = None, **text: str) -> dict[str, Any]:
    started = platform.start(account, parent_code=parent_code, **text)
    return dict(platform.respond(started["transaction_id"], token.sign(started["challenge_code"])))


def transaction_ids(stack: Stack) -> set[str]:
    with stack.rt.read() as conn:
        return set(conn.execute(select(transactions.c.id)).scalars())


def change_stored(stack: Stack, transaction_id: str, **values: Any) -> None:
    """What someone with write access to the database (and no key) can do."""
    with stack.rt.engine.begin() as conn:
        changed = conn.execute(update(transactions).where(transactions.c.id == transaction_id)
                               .values(**values))
        assert changed.rowcount == 1


def raw_links(stack: Stack, code: str) -> Raw:
    verified = decode_code(code, keys=stack.rt.keyring, now=stack.clock(),
                           expected_type=CodeType.TXSIGN_CHAIN)
    return [dict(raw) for raw in verified.claims[ChainClaim.LINKS]]


def signed_by_the_server_key(stack: Stack, links: Raw) -> str:
    now = int(stack.clock())
    return encode_code(code_type=CodeType.TXSIGN_CHAIN, code_id=links[-1][LinkKey.TRANSACTION],
                       issued_at=now, expires_at=now + 86_400, issuer=stack.rt.settings.issuer,
                       claims={ChainClaim.LINKS: links}, keyring=stack.rt.keyring)


def verify_problem(stack: Stack, code: str) -> tuple[int, str]:
    response = httpx.post(f"{stack.base_url}/v1/txsign/verify", json={"code": code})
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.text)
    return response.status_code, response.json()["code"]


# --- tampered_chain ---------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "value"), [
    ("demand", "transfer 900.00 EUR to ACME"),
    ("comment", "invoice 2026-118"),
    ("response", "00000000"),
    ("verified_at", 1_800_000_001),
    ("issued_at", 1_799_999_999),
], ids=str)
def test_a_genuine_chain_whose_transaction_was_changed_since_is_tampered(
        stack: Stack, column: str, value: object) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    first = signed(platform, alice, "alice")
    change_stored(stack, first["transaction_id"], **{column: value})
    before = transaction_ids(stack)
    assert refused(lambda: platform.start("bob", parent_code=first["chain_code"])) == (
        403, "tampered_chain")
    assert transaction_ids(stack) == before  # nothing started on it


def test_a_server_signed_chain_with_another_response_is_tampered(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    first = signed(platform, alice, "alice")
    links = raw_links(stack, first["chain_code"])
    genuine = links[-1][LinkKey.RESPONSE]
    links[-1][LinkKey.RESPONSE] = f"{(int(genuine) + 1) % 10**8:08d}"
    forged = signed_by_the_server_key(stack, links)
    read_chain_code(forged, keys=server_keys(stack), now=stack.clock())  # verifies offline
    assert refused(lambda: platform.start("bob", parent_code=forged)) == (403, "tampered_chain")


def test_a_server_signed_chain_over_a_transaction_never_signed_is_tampered(
        stack: Stack) -> None:
    """The transaction exists and is this platform's, but is still waiting for alice."""
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    pending = platform.start("alice")
    with stack.rt.read() as conn:
        row = txplatform.load(conn, pending["transaction_id"])
    link = signed_link(transaction=row.transaction, response="12345678",
                       verified_at=int(stack.clock()), text_url=None)
    forged = issue_chain_code(links=[link], issuer=stack.rt.settings.issuer,
                              now=int(stack.clock()), keyring=stack.rt.keyring,
                              fits=lambda code: True)
    assert refused(lambda: platform.start("bob", parent_code=forged)) == (403, "tampered_chain")
    status = platform.call("GET", f"/v1/txsign/transactions/{pending['transaction_id']}")
    assert status["state"] == "pending"


# --- unknown_parent and unknown_key -----------------------------------------------------------


def test_a_chain_of_another_organisation_is_an_unknown_parent(stack: Stack) -> None:
    key = provision(stack.rt, org_slug="market", org_name="Market Place", business_id="stall",
                    app_name="Stalls", users={"dave": None, "erin": None}).api_key
    market = Platform(stack)
    market.http.headers["Authorization"] = f"Bearer {key}"
    dave = enrolled_token(stack, market, "dave")
    erin = enrolled_token(stack, market, "erin")
    theirs = signed(market, dave, "dave")

    bank = Platform(stack)
    enrolled_token(stack, bank, "bob")
    # Genuine: it verifies for anyone, and its own organisation builds on it.
    assert platform_verifies(bank, theirs["chain_code"]) == ["dave"]
    chained = signed(market, erin, "erin", parent_code=theirs["chain_code"])
    assert chained["parent_id"] == theirs["transaction_id"]
    # The bank's platform does not take another organisation's transaction as its parent.
    before = transaction_ids(stack)
    assert refused(lambda: bank.start("bob", parent_code=theirs["chain_code"])) == (
        403, "unknown_parent")
    assert transaction_ids(stack) == before


def platform_verifies(platform: Platform, code: str) -> list[str]:
    verified = platform.call("POST", "/v1/txsign/verify", json={"code": code})
    assert verified["valid"] is True
    return [link["account"] for link in verified["links"]]


@pytest.fixture
def elsewhere(tmp_path: Path, clock: Clock) -> Iterator[tuple[str, str]]:
    """Another deployment of qrgate, running: its own data directory (its own KEK and
    signing key) and its own SQLite database, the same clock. Yields (base URL, API key)."""
    port = free_port()
    settings = Settings(data_dir=tmp_path / "elsewhere", port=port,
                        public_url=f"http://127.0.0.1:{port}")
    rt = build_runtime(settings)
    rt.clock = clock
    try:
        api_key = provision(rt, org_slug="bank", org_name="Example Bank", business_id="web",
                            app_name="Web banking", users={"alice": None}).api_key
        with serve_in_thread(create_app(settings, runtime=rt), port=port) as base_url:
            yield base_url, api_key
    finally:
        rt.close()


def chain_code_from(base_url: str, api_key: str, clock: Clock) -> str:
    """alice signs one transaction there, as a phone and a platform would."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        enrolment = http.post("/v1/txsign/tokens", json={"login": "alice"}).json()
        keys = PublicKeySet.from_jwks(http.get("/v1/keys").json())
        token = SoftToken.enrol(enrolment["code"], server_keys=keys, clock=clock)
        started = http.post("/v1/txsign/transactions", json={
            "account": "alice", "demand": "transfer 100.00 EUR to ACME", "comment": ""}).json()
        answer = http.post(f"/v1/txsign/transactions/{started['transaction_id']}/response",
                           json={"response": token.sign(started["challenge_code"])}).json()
    assert answer["state"] == "signed"
    return str(answer["chain_code"])


def test_a_chain_of_another_deployment_is_signed_by_an_unknown_key(
        stack: Stack, elsewhere: tuple[str, str]) -> None:
    foreign = chain_code_from(*elsewhere, stack.clock)
    assert {key["kid"] for key in httpx.get(f"{elsewhere[0]}/v1/keys").json()["keys"]}.isdisjoint(
        key["kid"] for key in httpx.get(f"{stack.base_url}/v1/keys").json()["keys"])
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    with pytest.raises(UnknownKey):
        read_chain_code(foreign, keys=server_keys(stack), now=stack.clock())
    assert verify_problem(stack, foreign) == (401, "unknown_key")
    assert refused(lambda: platform.start("alice", parent_code=foreign)) == (401, "unknown_key")


# --- chain_too_long ---------------------------------------------------------------------------


def test_a_fifth_link_is_refused_before_a_response_is_spent(stack: Stack) -> None:
    platform = Platform(stack)
    for login in ("dave", "erin"):
        stack.rp.create_user(login)
    logins = ["alice", "bob", "carol", "dave", "erin"]
    tokens = {login: enrolled_token(stack, platform, login) for login in logins}
    code = None
    for login in logins[:MAX_CHAIN_LINKS]:
        code = signed(platform, tokens[login], login, parent_code=code,
                      demand=f"co-sign as {login}")["chain_code"]
    assert code is not None
    assert platform_verifies(platform, code) == logins[:MAX_CHAIN_LINKS]
    before = transaction_ids(stack)
    assert refused(lambda: platform.start("erin", parent_code=code)) == (403, "chain_too_long")
    assert transaction_ids(stack) == before
    # Nothing was counted against erin's token: it signs her next transaction.
    assert signed(platform, tokens["erin"], "erin")["state"] == "signed"


# --- broken_chain -----------------------------------------------------------------------------


def test_links_spliced_from_two_chains_are_a_broken_chain(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    carol = enrolled_token(stack, platform, "carol")
    approved = signed(platform, alice, "alice", demand="pay 100.00 EUR to ACME")
    cosigned = signed(platform, bob, "bob", parent_code=approved["chain_code"])
    other = signed(platform, alice, "alice", demand="pay 9000.00 EUR to ACME")
    # bob's signature under the other transaction of alice's: each link genuine, the chain
    # not, and signed by the server's key.
    spliced = [raw_links(stack, other["chain_code"])[0], raw_links(stack,
                                                                   cosigned["chain_code"])[1]]
    forged = signed_by_the_server_key(stack, spliced)
    with pytest.raises(Rejected) as caught:
        read_chain_code(forged, keys=server_keys(stack), now=stack.clock())
    assert caught.value.code == "broken_chain"
    assert verify_problem(stack, forged) == (403, "broken_chain")
    assert refused(lambda: platform.start("carol", parent_code=forged)) == (403, "broken_chain")
    # The genuine chain still verifies and chains.
    assert platform_verifies(platform, cosigned["chain_code"]) == ["alice", "bob"]
    assert signed(platform, carol, "carol", parent_code=cosigned["chain_code"])["state"] == (
        "signed")


# --- text_mismatch ----------------------------------------------------------------------------


def test_a_carried_text_that_is_not_the_signed_one_is_a_text_mismatch(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    first = signed(platform, alice, "alice", demand="transfer 100.00 EUR to ACME")
    links = raw_links(stack, first["chain_code"])
    assert links[0][LinkKey.DEMAND] == "transfer 100.00 EUR to ACME"
    links[0][LinkKey.DEMAND] = "transfer 900.00 EUR to ACME"
    forged = signed_by_the_server_key(stack, links)
    with pytest.raises(Rejected) as caught:
        read_chain_code(forged, keys=server_keys(stack), now=stack.clock())
    assert caught.value.code == "text_mismatch"
    assert verify_problem(stack, forged) == (403, "text_mismatch")
    assert refused(lambda: platform.start("bob", parent_code=forged)) == (403, "text_mismatch")


LONG = "wire " + "very long payment order text " * 7


def test_a_fetched_text_that_is_not_the_signed_one_is_a_text_mismatch(
        stack: Stack, tmp_path: Path) -> None:
    """Texts too long for the QR travel as digests and URLs; the text the server returns
    is checked against the signed digest, by the server's own verify and by anyone who
    fetches it (here ``qrgate txsign verify-qr``)."""
    stack.clock.now = float(int(time.time()))  # verify-qr checks codes on the real clock
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    first = signed(platform, alice, "alice", demand=LONG[:200], comment="c" * 200)
    second = signed(platform, bob, "bob", demand="d" * 200, comment="e" * 200,
                    parent_code=first["chain_code"])
    code = second["chain_code"]
    chain = read_chain_code(code, keys=server_keys(stack), now=stack.clock())
    assert [link.text for link in chain.links] == [None, None]
    image = tmp_path / "chain.png"
    image.write_bytes(render_png(code))

    def verify_qr() -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["txsign", "verify-qr", str(image),
                                          "--server", stack.base_url])
        return result.exit_code, result.output

    assert [link["demand"] for link in platform.call(
        "POST", "/v1/txsign/verify", json={"code": code})["links"]] == [LONG[:200], "d" * 200]
    assert verify_qr()[0] == 0

    for transaction_id, column, value in (
            (first["transaction_id"], "demand", LONG[:200].replace("wire", "send")),
            (second["transaction_id"], "comment", "e" * 199 + "f")):
        original = platform.call("GET", f"/v1/txsign/transactions/{transaction_id}/text")
        change_stored(stack, transaction_id, **{column: value})
        served = platform.call("GET", f"/v1/txsign/transactions/{transaction_id}/text")
        assert served[column] == value and served["text_digest"] != original["text_digest"]
        assert verify_problem(stack, code) == (403, "text_mismatch")
        exit_code, output = verify_qr()
        assert exit_code == 1 and "NOT VERIFIED" in output and "text_mismatch" in output, output
        change_stored(stack, transaction_id, **{column: original[column]})
        assert verify_qr()[0] == 0


# --- not a chain code at all ------------------------------------------------------------------


@pytest.mark.parametrize(("parent", "expected"), [
    ("QG1:", (400, "malformed_code")),
    ("QG1:ABCDEF", (400, "malformed_code")),
    ("QG2:ABCDEF", (400, "unsupported_version")),
])
def test_a_parent_that_is_not_a_code_is_malformed(stack: Stack, parent: str,
                                                  expected: tuple[int, str]) -> None:
    platform = Platform(stack)
    enrolled_token(stack, platform, "bob")
    assert refused(lambda: platform.start("bob", parent_code=parent)) == expected


def test_a_genuine_code_of_another_kind_is_not_a_parent(stack: Stack) -> None:
    """The challenge code alice's token scans is signed by the same key, but is not a
    chain: its type is checked before anything is read from it."""
    platform = Platform(stack)
    enrolled_token(stack, platform, "alice")
    enrolled_token(stack, platform, "bob")
    challenge = platform.start("alice")["challenge_code"]
    assert refused(lambda: platform.start("bob", parent_code=challenge)) == (
        422, "wrong_code_type")
    assert verify_problem(stack, challenge) == (422, "wrong_code_type")
