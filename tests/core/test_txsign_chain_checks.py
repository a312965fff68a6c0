"""Scheme E's pure half (``qrgate.core.txsign``): the digests a token signs, the challenge
code, and the checks every verifier of a chain code runs. Real keys, real codes, no server.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from qrgate.core.codes import CodeType, encode_code
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.core.txsign import (
    MAX_CHAIN_LINKS,
    RESULT_VERIFIED,
    ChainClaim,
    ChallengeClaim,
    Link,
    LinkKey,
    Transaction,
    TransactionText,
    check_chain,
    check_link_text,
    issue_chain_code,
    issue_challenge_code,
    read_chain_code,
    read_challenge_code,
    signed_link,
    text_digest,
    transaction_digest,
)
from qrgate.errors import QrgateError

NOW = 1_800_000_000
RING = KeyRing(active=SigningKey.generate(now=NOW))
OTHER_RING = KeyRing(active=SigningKey.generate(now=NOW))
TEXT = TransactionText(account="alice", platform="web", demand="buy 10 ACME",
                       comment="pension")
FIRST = Transaction(transaction_id=b"\x01" * 16, text=TEXT, created_at=NOW)


def code_of(error: pytest.ExceptionInfo[QrgateError]) -> str:
    return error.value.code


def chain(length: int) -> list[Link]:
    links: list[Link] = []
    for n in range(length):
        transaction = Transaction(
            transaction_id=bytes([n + 1]) * 16,
            text=replace(TEXT, account=f"user{n}"),
            created_at=NOW + n,
            parent_digest=links[-1].digest if links else None,
        )
        links.append(signed_link(transaction=transaction, response=f"{n:08d}",
                                 verified_at=NOW + n, text_url=f"https://q.example/{n}"))
    return links


def always(_: str) -> bool:
    return True


# --- S1: what the token signs ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["account", "platform", "demand", "comment"])
def test_every_text_field_changes_the_digest(field: str) -> None:
    changed = replace(TEXT, **{field: getattr(TEXT, field) + "!"})
    assert text_digest(changed) != text_digest(TEXT)
    assert transaction_digest(replace(FIRST, text=changed)) != transaction_digest(FIRST)


def test_fields_cannot_trade_characters() -> None:
    moved = replace(TEXT, demand=TEXT.demand + TEXT.comment, comment="")
    assert text_digest(moved) != text_digest(TEXT)


@pytest.mark.parametrize("changes", [
    {"transaction_id": b"\x02" * 16},
    {"created_at": NOW + 1},
    {"parent_digest": b"\x00" * 32},
])
def test_every_transaction_field_changes_the_digest(changes: dict[str, object]) -> None:
    assert transaction_digest(replace(FIRST, **changes)) != transaction_digest(  # type: ignore[arg-type]
        FIRST)


def test_a_signed_link_commits_to_its_transaction() -> None:
    link = signed_link(transaction=FIRST, response="12345678", verified_at=NOW + 5,
                       text_url=None)
    assert link.transaction_digest == transaction_digest(FIRST)
    assert link.text_digest == text_digest(TEXT)
    assert (link.result, link.response, link.verified_at) == (RESULT_VERIFIED, "12345678",
                                                              NOW + 5)
    assert link.text == TEXT and link.parent_digest is None


# --- S2: the challenge code -----------------------------------------------------------------


def challenge_code(transaction: Transaction = FIRST, *, keyring: KeyRing = RING) -> str:
    return issue_challenge_code(transaction=transaction, suite="OCRA-1:HOTP-SHA256-8:C-QH64",
                                issuer="q", now=NOW, expires_at=NOW + 300, keyring=keyring)


def test_a_challenge_code_round_trips() -> None:
    read = read_challenge_code(challenge_code(), keys=RING, now=NOW)
    assert read.transaction == FIRST
    assert read.suite == "OCRA-1:HOTP-SHA256-8:C-QH64"
    assert read.expires_at == NOW + 300
    child = replace(FIRST, parent_digest=b"\x09" * 32)
    assert read_challenge_code(challenge_code(child), keys=RING, now=NOW).transaction == child


def test_a_challenge_code_of_another_key_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        read_challenge_code(challenge_code(keyring=OTHER_RING), keys=RING, now=NOW)
    assert code_of(error) == "unknown_key"


CHALLENGE_CLAIMS: dict[int, object] = {
    ChallengeClaim.TRANSACTION: b"\x01" * 16, ChallengeClaim.ACCOUNT: "alice",
    ChallengeClaim.PLATFORM: "web", ChallengeClaim.DEMAND: "d", ChallengeClaim.COMMENT: "c",
    ChallengeClaim.CREATED: NOW, ChallengeClaim.SUITE: "OCRA-1:HOTP-SHA256-8:C-QH64",
}


def raw(code_type: CodeType, claims: dict[int, object]) -> str:
    return encode_code(code_type=code_type, code_id=b"\x01" * 16, issued_at=NOW,
                       expires_at=NOW + 300, issuer="q", claims=claims, keyring=RING)


@pytest.mark.parametrize(("key", "value"), [
    (ChallengeClaim.TRANSACTION, b"\x01" * 15),
    (ChallengeClaim.TRANSACTION, b"\x01" * 17),
    (ChallengeClaim.TRANSACTION, "01" * 16),
    (ChallengeClaim.ACCOUNT, 1),
    (ChallengeClaim.CREATED, True),
    (ChallengeClaim.CREATED, "1"),
    (ChallengeClaim.PARENT, b"\x01" * 31),
    (ChallengeClaim.PARENT, b"\x01" * 33),
    (ChallengeClaim.SUITE, None),
])
def test_ill_typed_challenge_claims_are_malformed(key: int, value: object) -> None:
    with pytest.raises(QrgateError) as error:
        read_challenge_code(raw(CodeType.TXSIGN_CHALLENGE, {**CHALLENGE_CLAIMS, key: value}),
                            keys=RING, now=NOW)
    assert code_of(error) == "malformed_code"


def test_a_chain_code_is_not_a_challenge_code() -> None:
    with pytest.raises(QrgateError) as error:
        read_challenge_code(raw(CodeType.TXSIGN_CHAIN, CHALLENGE_CLAIMS), keys=RING, now=NOW)
    assert code_of(error) == "wrong_code_type"


# --- S5 and claims 4-5: the chain -----------------------------------------------------------


@pytest.mark.parametrize("length", range(1, MAX_CHAIN_LINKS + 1))
def test_chains_of_one_to_four_links_verify(length: int) -> None:
    links = chain(length)
    check_chain(links)
    code = issue_chain_code(links=links, issuer="q", now=NOW, keyring=RING, fits=always)
    read = read_chain_code(code, keys=RING, now=NOW)
    assert read.links == tuple(replace(link, text_url=None) for link in links)
    assert (read.issuer, read.issued_at, read.kid) == ("q", NOW, RING.active_kid)
    assert read.last.digest == links[-1].digest


def test_an_empty_or_too_long_chain_is_refused() -> None:
    for links in ([], chain(MAX_CHAIN_LINKS + 1)):
        with pytest.raises(QrgateError) as error:
            check_chain(links)
        assert code_of(error) == "bad_chain"


def test_the_first_link_has_no_parent() -> None:
    first = replace(chain(1)[0], parent_digest=b"\x00" * 32)
    with pytest.raises(QrgateError) as error:
        check_chain([first])
    assert code_of(error) == "bad_chain"


def test_each_link_commits_to_the_one_before() -> None:
    links = chain(3)
    for broken in (replace(links[2], parent_digest=links[0].digest),
                   replace(links[2], parent_digest=None),
                   replace(links[2], parent_digest=b"\x00" * 32)):
        with pytest.raises(QrgateError) as error:
            check_chain([links[0], links[1], broken])
        assert code_of(error) == "broken_chain"
    # Changing an earlier link (its response) breaks the commitment of the next one.
    with pytest.raises(QrgateError) as error:
        check_chain([links[0], replace(links[1], response="99999999"), links[2]])
    assert code_of(error) == "broken_chain"


def test_carried_text_must_match_its_signed_digest() -> None:
    links = chain(2)
    forged = replace(links[1], text=replace(links[1].text or TEXT, demand="buy 1000 ACME"))
    with pytest.raises(QrgateError) as error:
        check_chain([links[0], forged])
    assert code_of(error) == "text_mismatch"
    with pytest.raises(QrgateError) as error:
        check_link_text(links[0], TEXT)
    assert code_of(error) == "text_mismatch"
    check_link_text(links[0], replace(TEXT, account="user0"))


def test_a_link_needs_its_text_or_where_to_fetch_it() -> None:
    check_chain([replace(chain(1)[0], text=None)])
    with pytest.raises(QrgateError) as error:
        check_chain([replace(chain(1)[0], text=None, text_url=None)])
    assert code_of(error) == "malformed_code"


def test_only_verified_links_chain() -> None:
    with pytest.raises(QrgateError) as error:
        check_chain([replace(chain(1)[0], result="refused")])
    assert code_of(error) == "bad_chain"


def test_texts_are_left_out_when_the_code_would_not_fit() -> None:
    links = chain(2)
    with_text = issue_chain_code(links=links, issuer="q", now=NOW, keyring=RING, fits=always)
    small = issue_chain_code(links=links, issuer="q", now=NOW, keyring=RING,
                             fits=lambda code: len(code) < len(with_text))
    read = read_chain_code(small, keys=RING, now=NOW)
    assert [link.text for link in read.links] == [None, None]
    assert [link.text_url for link in read.links] == [link.text_url for link in links]
    assert [link.digest for link in read.links] == [link.digest for link in links]


def test_a_chain_that_never_fits_is_refused() -> None:
    with pytest.raises(QrgateError) as error:
        issue_chain_code(links=chain(1), issuer="q", now=NOW, keyring=RING,
                         fits=lambda _: False)
    assert code_of(error) == "chain_too_long"


def test_a_chain_too_large_for_any_code_is_refused() -> None:
    huge = replace(TEXT, demand="x" * 3000)
    link = signed_link(transaction=replace(FIRST, text=huge), response="1", verified_at=NOW,
                       text_url="https://q.example/" + "y" * 3000)
    with pytest.raises(QrgateError) as error:
        issue_chain_code(links=[link], issuer="q", now=NOW, keyring=RING, fits=always)
    assert code_of(error) == "chain_too_long"


def test_texts_too_large_for_any_code_travel_by_url() -> None:
    huge = replace(TEXT, demand="x" * 3000)
    link = signed_link(transaction=replace(FIRST, text=huge), response="1", verified_at=NOW,
                       text_url="https://q.example/1")
    code = issue_chain_code(links=[link], issuer="q", now=NOW, keyring=RING, fits=always)
    read = read_chain_code(code, keys=RING, now=NOW)
    assert read.links[0].text is None
    assert read.links[0].text_url == "https://q.example/1"


def test_a_link_without_text_or_url_cannot_be_issued() -> None:
    link = replace(chain(1)[0], text_url=None)
    code = issue_chain_code(links=[link], issuer="q", now=NOW, keyring=RING, fits=always)
    assert read_chain_code(code, keys=RING, now=NOW).links[0].text == link.text
    with pytest.raises(QrgateError) as error:
        issue_chain_code(links=[link], issuer="q", now=NOW, keyring=RING,
                         fits=lambda c: c != code)
    assert code_of(error) == "invalid_field"


def test_an_issued_chain_code_lasts_ten_years() -> None:
    code = issue_chain_code(links=chain(1), issuer="q", now=NOW, keyring=RING, fits=always)
    read_chain_code(code, keys=RING, now=NOW + 10 * 365 * 86_400)
    with pytest.raises(QrgateError) as error:
        read_chain_code(code, keys=RING, now=NOW + 10 * 365 * 86_400 + 6)
    assert code_of(error) == "expired"


def test_a_chain_code_of_another_key_is_refused() -> None:
    code = issue_chain_code(links=chain(1), issuer="q", now=NOW, keyring=OTHER_RING,
                            fits=always)
    with pytest.raises(QrgateError) as error:
        read_chain_code(code, keys=RING, now=NOW)
    assert code_of(error) == "unknown_key"


def link_claims(link: Link) -> dict[int, object]:
    assert link.text is not None
    claims: dict[int, object] = {
        LinkKey.TRANSACTION: link.transaction_id, LinkKey.CREATED: link.created_at,
        LinkKey.TEXT_DIGEST: link.text_digest, LinkKey.RESPONSE: link.response,
        LinkKey.RESULT: link.result, LinkKey.VERIFIED: link.verified_at,
        LinkKey.ACCOUNT: link.text.account, LinkKey.PLATFORM: link.text.platform,
        LinkKey.DEMAND: link.text.demand, LinkKey.COMMENT: link.text.comment,
    }
    return claims


def test_a_hand_built_chain_code_reads() -> None:
    link = chain(1)[0]
    code = raw(CodeType.TXSIGN_CHAIN, {ChainClaim.LINKS: [link_claims(link)]})
    assert read_chain_code(code, keys=RING, now=NOW).links == (replace(link, text_url=None),)


@pytest.mark.parametrize("links", [None, [], "links", {"1": 2}, ["not a map"]])
def test_a_chain_code_carries_a_list_of_link_maps(links: object) -> None:
    claims: dict[int, object] = {} if links is None else {ChainClaim.LINKS: links}
    with pytest.raises(QrgateError) as error:
        read_chain_code(raw(CodeType.TXSIGN_CHAIN, claims), keys=RING, now=NOW)
    assert code_of(error) == "malformed_code"


@pytest.mark.parametrize(("key", "value"), [
    (LinkKey.TRANSACTION, b"\x01" * 15),
    (LinkKey.CREATED, True),
    (LinkKey.TEXT_DIGEST, b"\x01" * 31),
    (LinkKey.PARENT, b"\x01" * 33),
    (LinkKey.RESPONSE, 12345678),
    (LinkKey.RESULT, None),
    (LinkKey.VERIFIED, "now"),
    (LinkKey.ACCOUNT, 1),
    (LinkKey.PLATFORM, None),
    (LinkKey.DEMAND, b"d"),
    (LinkKey.COMMENT, 0),
    (LinkKey.TEXT_URL, 1),
])
def test_ill_typed_link_fields_are_malformed(key: int, value: object) -> None:
    claims = {**link_claims(chain(1)[0]), key: value}
    with pytest.raises(QrgateError) as error:
        read_chain_code(raw(CodeType.TXSIGN_CHAIN, {ChainClaim.LINKS: [claims]}), keys=RING,
                        now=NOW)
    assert code_of(error) == "malformed_code"
