"""Scheme E end to end: two users, two tokens, a chain of two signed transactions, every
QR a real PNG decoded with zxing-cpp, the chain verified offline from the QR alone."""

from __future__ import annotations

import base45
import cbor2
import pytest

from qrgate.clients.phone import decode_png
from qrgate.core.cose import parse_sign1
from qrgate.core.txsign import read_chain_code
from qrgate.errors import BadSignature
from qrgate.qrimage import decode_image
from support.stack import Stack
from support.txsign import Platform, enrolled_token, server_keys


def test_two_links_signed_and_chained(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")

    # S1-S5: alice signs the first transaction.
    first = platform.start("alice", demand="buy 10 ACME at 12.50", comment="for the pension fund")
    assert first["state"] == "pending" and len(first["question"]) == 64
    challenge_png = platform.image(first["transaction_id"], "challenge")
    response = alice.sign(decode_png(challenge_png))
    signed = platform.respond(first["transaction_id"], response)
    assert signed["state"] == "signed" and signed["chain_code"]

    # Claims 4-5: bob scans alice's QR, the platform forms the second transaction.
    first_png = platform.image(first["transaction_id"], "chain")
    scanned = decode_png(first_png)
    keys = server_keys(stack)
    one = read_chain_code(scanned, keys=keys, now=stack.clock())
    assert [link.text.demand for link in one.links if link.text] == ["buy 10 ACME at 12.50"]
    second = platform.start("bob", demand="co-sign the ACME order", comment="checked, ok",
                            parent_code=scanned)
    assert [link["account"] for link in second["parent_links"]] == ["alice"]
    response = bob.sign(decode_png(platform.image(second["transaction_id"], "challenge")))
    chained = platform.respond(second["transaction_id"], response)
    assert chained["parent_id"] == first["transaction_id"]

    # Anyone verifies the chain offline from the QR alone.
    (symbol,) = decode_image(platform.image(second["transaction_id"], "chain"))
    assert symbol.version <= 25 and symbol.ec_level == "M"
    chain = read_chain_code(symbol.text, keys=keys, now=stack.clock())
    assert [link.text.account for link in chain.links if link.text] == ["alice", "bob"]
    assert chain.links[1].parent_digest == chain.links[0].digest
    assert chain.links[0].digest == one.links[0].digest
    verified = platform.call("POST", "/v1/txsign/verify", json={"code": symbol.text})
    assert verified["valid"] and [link["demand"] for link in verified["links"]] == [
        "buy 10 ACME at 12.50", "co-sign the ACME order"]


def test_altered_first_link_fails(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    first = platform.start("alice")
    platform.respond(first["transaction_id"], alice.sign(first["challenge_code"]))
    scanned = platform.call("GET", f"/v1/txsign/transactions/{first['transaction_id']}")
    second = platform.start("bob", parent_code=scanned["chain_code"])
    chained = platform.respond(second["transaction_id"], bob.sign(second["challenge_code"]))

    # Change one character of the first link's demand inside the signed payload.
    message = parse_sign1(base45.b45decode(chained["chain_code"][4:]))
    claims = cbor2.loads(message.payload)
    claims[10][0][10] = claims[10][0][10].replace("100.00", "900.00")
    forged_payload = cbor2.dumps(claims, canonical=True)
    forged = cbor2.dumps(cbor2.CBORTag(18, [message.protected_raw, {}, forged_payload,
                                           message.signature]))
    forged_code = "QG1:" + base45.b45encode(forged).decode()
    with pytest.raises(BadSignature):
        read_chain_code(forged_code, keys=server_keys(stack), now=stack.clock())
    problem = platform.http.post("/v1/txsign/verify", json={"code": forged_code})
    assert (problem.status_code, problem.json()["code"]) == (401, "bad_signature")
    # The platform refuses to build on it either.
    problem = platform.http.post("/v1/txsign/transactions", json={
        "account": "bob", "platform": "web", "demand": "x", "parent_code": forged_code})
    assert problem.json()["code"] == "bad_signature"


def test_long_texts_travel_as_digests_and_urls(stack: Stack) -> None:
    platform = Platform(stack)
    alice = enrolled_token(stack, platform, "alice")
    bob = enrolled_token(stack, platform, "bob")
    long_demand = "wire " + "very long payment order text " * 9
    first = platform.start("alice", demand=long_demand[:200], comment="c" * 200)
    platform.respond(first["transaction_id"], alice.sign(first["challenge_code"]))
    code = platform.call("GET", f"/v1/txsign/transactions/{first['transaction_id']}")[
        "chain_code"]
    second = platform.start("bob", demand="d" * 200, comment="e" * 200, parent_code=code)
    chained = platform.respond(second["transaction_id"], bob.sign(second["challenge_code"]))
    (symbol,) = decode_image(platform.image(second["transaction_id"], "chain"))
    assert symbol.version <= 25
    chain = read_chain_code(chained["chain_code"], keys=server_keys(stack), now=stack.clock())
    assert all(link.text is None and link.text_url for link in chain.links)
    verified = platform.call("POST", "/v1/txsign/verify", json={"code": chained["chain_code"]})
    assert [link["text_in_qr"] for link in verified["links"]] == [False, False]
    assert verified["links"][0]["demand"] == long_demand[:200]
    fetched = platform.call("GET", f"/v1/txsign/transactions/{first['transaction_id']}/text")
    assert fetched["comment"] == "c" * 200
