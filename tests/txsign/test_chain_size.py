"""The chain QR budget: version 25 at ECC M, checked by length on the signing path."""

from __future__ import annotations

import os

import base45
import pytest

from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.core.txsign import (
    MAX_CHAIN_LINKS,
    MAX_QR_VERSION,
    Transaction,
    TransactionText,
    issue_chain_code,
    read_chain_code,
    signed_link,
)
from qrgate.errors import Rejected
from qrgate.qrimage import decode_image, qr_version, render_png
from qrgate.txsign.platform import MAX_CHAIN_CODE_CHARS

NOW = 1_800_000_000


def test_length_budget_is_the_version_25_capacity() -> None:
    filler = base45.b45encode(os.urandom(1200)).decode()
    fitting = "QG1:" + filler[: MAX_CHAIN_CODE_CHARS - 4]
    assert qr_version(fitting, ecc="M") == MAX_QR_VERSION
    assert qr_version(fitting + "A", ecc="M") == MAX_QR_VERSION + 1


def _links(count: int, text_length: int) -> list:
    ring_links = []
    parent = None
    for number in range(count):
        transaction = Transaction(
            transaction_id=os.urandom(16),
            text=TransactionText(account=f"user{number}@example.com", platform="web-banking",
                                 demand="d" * text_length, comment="c" * text_length),
            created_at=NOW, parent_digest=parent)
        link = signed_link(transaction=transaction, response="12345678", verified_at=NOW,
                           text_url=f"https://qrgate.example/v1/txsign/transactions/{number}/text")
        ring_links.append(link)
        parent = link.digest
    return ring_links


def test_chains_stay_within_version_25() -> None:
    ring = KeyRing(active=SigningKey.generate(now=NOW))
    sizes = []
    for count, text_length in ((1, 20), (2, 60), (2, 200), (4, 60), (4, 200)):
        code = issue_chain_code(links=_links(count, text_length), issuer="qrgate", now=NOW,
                                keyring=ring, fits=lambda c: len(c) <= MAX_CHAIN_CODE_CHARS)
        (symbol,) = decode_image(render_png(code, ecc="M"))
        chain = read_chain_code(code, keys=ring, now=NOW)
        sizes.append((count, text_length, len(code), symbol.version,
                      chain.links[0].text is not None))
        assert symbol.text == code
        assert symbol.version <= MAX_QR_VERSION, sizes
    # Short chains carry their texts; long ones fall back to digests and URLs.
    assert sizes[0][4] and sizes[1][4] and not sizes[4][4], sizes


def test_a_fifth_link_is_refused() -> None:
    ring = KeyRing(active=SigningKey.generate(now=NOW))
    with pytest.raises(Rejected) as refused:
        issue_chain_code(links=_links(MAX_CHAIN_LINKS + 1, 10), issuer="qrgate", now=NOW,
                         keyring=ring, fits=lambda c: True)
    assert refused.value.code == "bad_chain"
