"""Scheme E — a challenge/response token signs transactions, and QRs chain them
(CN104156859B). Pure: no I/O; time is an argument.

The protocol, with the patent's step numbers:

* **S1** The transaction platform takes a transaction (user account, platform info, the
  user's *demand* and *comment* on it) and makes the challenge from it: the SHA-256 of the
  canonical transaction, as the hex question of an OCRA suite with ``QH64``
  (:func:`transaction_digest`, :func:`qrgate.core.ocra.question_for_digest`). The platform
  shows the transaction as a signed *challenge code* (:func:`issue_challenge_code`).
* **S2** The token (the phone's software token) reads the challenge code, verifies the
  server's signature, shows the transaction, recomputes the digest *from what it shows*
  and answers the OCRA question: the response signs exactly this transaction.
* **S3/S4** The platform takes the response; the authentication server (the token's
  one-to-one server record) computes the expected response and compares.
* **S5** The QR generator encodes the transaction and the result as a signed *chain code*
  with one link (:func:`issue_chain_code`).
* **Claims 4-5** A second user scans that code; the platform verifies it and forms a second
  transaction that contains the first (its ``parent_digest`` is the first link's digest),
  the second user and their demand; S8-S11 repeat with the second user's token; the second
  chain code carries both links.

Any party can verify a chain code offline (:func:`read_chain_code`): the server's signature
covers every link, each link commits to its predecessor's digest, and each link's text
hashes to the ``text_digest`` that its transaction digest (and so the token's response)
covers. When the texts do not fit the QR (version 25 at ECC M), links carry only their text
digest and a URL to fetch the text from; :func:`check_link_text` checks fetched text.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import cbor2
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.keyring import KeyRing, PublicKeySet
from qrgate.errors import InvalidField, MalformedCode, PayloadTooLarge, Rejected

DOMAIN_TEXT = "qrgate-txsign-text-1"
DOMAIN_TRANSACTION = "qrgate-txsign-tx-1"
DOMAIN_LINK = "qrgate-txsign-link-1"
RESULT_VERIFIED = "verified"
# Four links of the longest texts still fit version 25 (as digests and URLs).
MAX_CHAIN_LINKS = 4
# The chain QR must stay scannable from a screen or paper: version 25 at ECC M.
MAX_QR_VERSION = 25

VerifyingKeys = KeyRing | PublicKeySet | Mapping[bytes, EllipticCurvePublicKey]


@dataclass(frozen=True, kw_only=True)
class TransactionText:
    """What the user reads and signs: the patent's transaction information."""

    account: str
    platform: str
    demand: str
    comment: str


@dataclass(frozen=True, kw_only=True)
class Transaction:
    transaction_id: bytes
    text: TransactionText
    created_at: int
    parent_digest: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class Link:
    """One signed transaction of a chain. ``text`` is None when the QR carries only its
    digest; ``text_url`` then says where to fetch it."""

    transaction_id: bytes
    created_at: int
    text_digest: bytes
    parent_digest: bytes | None
    response: str
    result: str
    verified_at: int
    text: TransactionText | None
    text_url: str | None = None

    @property
    def transaction_digest(self) -> bytes:
        return _transaction_digest(
            transaction_id=self.transaction_id, text_digest=self.text_digest,
            created_at=self.created_at, parent_digest=self.parent_digest,
        )

    @property
    def digest(self) -> bytes:
        """What the next transaction of the chain commits to."""
        return _sha256([DOMAIN_LINK, self.transaction_digest, self.response, self.result,
                        self.verified_at])


@dataclass(frozen=True, kw_only=True)
class Chain:
    links: tuple[Link, ...]
    issuer: str
    issued_at: int
    kid: bytes

    @property
    def last(self) -> Link:
        return self.links[-1]


class ChallengeClaim(IntEnum):
    TRANSACTION = 10
    ACCOUNT = 11
    PLATFORM = 12
    DEMAND = 13
    COMMENT = 14
    CREATED = 15
    PARENT = 16
    SUITE = 17


class ChainClaim(IntEnum):
    LINKS = 10


class LinkKey(IntEnum):
    TRANSACTION = 1
    CREATED = 2
    TEXT_DIGEST = 3
    PARENT = 4
    RESPONSE = 5
    RESULT = 6
    VERIFIED = 7
    ACCOUNT = 8
    PLATFORM = 9
    DEMAND = 10
    COMMENT = 11
    TEXT_URL = 12


def text_digest(text: TransactionText) -> bytes:
    return _sha256([DOMAIN_TEXT, text.account, text.platform, text.demand, text.comment])


def transaction_digest(transaction: Transaction) -> bytes:
    """S1: the challenge. One changed byte anywhere in the transaction changes it."""
    return _transaction_digest(
        transaction_id=transaction.transaction_id, text_digest=text_digest(transaction.text),
        created_at=transaction.created_at, parent_digest=transaction.parent_digest,
    )


def _transaction_digest(
    *, transaction_id: bytes, text_digest: bytes, created_at: int, parent_digest: bytes | None
) -> bytes:
    return _sha256([DOMAIN_TRANSACTION, transaction_id, text_digest, created_at,
                    parent_digest])


def _sha256(items: list[object]) -> bytes:
    # mutation: canonical=False is equivalent for these items (text, bytes, ints, None):
    # CBOR encodes them one way; canonical only orders maps and shortens floats.
    return hashlib.sha256(cbor2.dumps(items, canonical=True)).digest()


# --- S1: the challenge code the token scans ------------------------------------------------


def issue_challenge_code(
    *,
    transaction: Transaction,
    suite: str,
    issuer: str,
    now: int,
    expires_at: int,
    keyring: KeyRing,
) -> str:
    claims: dict[int, object] = {
        ChallengeClaim.TRANSACTION: transaction.transaction_id,
        ChallengeClaim.ACCOUNT: transaction.text.account,
        ChallengeClaim.PLATFORM: transaction.text.platform,
        ChallengeClaim.DEMAND: transaction.text.demand,
        ChallengeClaim.COMMENT: transaction.text.comment,
        ChallengeClaim.CREATED: transaction.created_at,
        ChallengeClaim.SUITE: suite,
    }
    if transaction.parent_digest is not None:
        claims[ChallengeClaim.PARENT] = transaction.parent_digest
    return encode_code(
        code_type=CodeType.TXSIGN_CHALLENGE, code_id=transaction.transaction_id,
        issued_at=now, expires_at=expires_at, issuer=issuer, claims=claims, keyring=keyring,
    )


@dataclass(frozen=True, kw_only=True)
class ChallengeCode:
    transaction: Transaction
    suite: str
    expires_at: int


def read_challenge_code(text: str, *, keys: VerifyingKeys, now: float) -> ChallengeCode:
    """S2, on the token: verify the server's signature before showing anything."""
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.TXSIGN_CHALLENGE)
    claims = verified.claims
    parent = claims.get(ChallengeClaim.PARENT)
    transaction = Transaction(
        transaction_id=_bytes(claims, ChallengeClaim.TRANSACTION, 16),
        text=TransactionText(
            account=_str(claims, ChallengeClaim.ACCOUNT),
            platform=_str(claims, ChallengeClaim.PLATFORM),
            demand=_str(claims, ChallengeClaim.DEMAND),
            comment=_str(claims, ChallengeClaim.COMMENT),
        ),
        created_at=_int(claims, ChallengeClaim.CREATED),
        parent_digest=None if parent is None else _bytes(claims, ChallengeClaim.PARENT, 32),
    )
    return ChallengeCode(transaction=transaction, suite=_str(claims, ChallengeClaim.SUITE),
                         expires_at=verified.expires_at)


# --- S5: the chain code --------------------------------------------------------------------


def signed_link(
    *, transaction: Transaction, response: str, verified_at: int, text_url: str | None
) -> Link:
    """The link the server issues once S4 verified ``response`` for ``transaction``."""
    return Link(
        transaction_id=transaction.transaction_id, created_at=transaction.created_at,
        text_digest=text_digest(transaction.text), parent_digest=transaction.parent_digest,
        response=response, result=RESULT_VERIFIED, verified_at=verified_at,
        text=transaction.text, text_url=text_url,
    )


def check_chain(links: Sequence[Link]) -> None:
    """Every link commits to its predecessor; carried text matches its digest."""
    if not 1 <= len(links) <= MAX_CHAIN_LINKS:
        raise Rejected(f"a chain has 1 to {MAX_CHAIN_LINKS} links", code="bad_chain")
    if links[0].parent_digest is not None:
        raise Rejected("the first link has no parent", code="bad_chain")
    for previous, link in itertools.pairwise(links):
        if link.parent_digest is None or not hmac.compare_digest(
            link.parent_digest, previous.digest
        ):
            raise Rejected("a link does not commit to the link before it", code="broken_chain")
    for link in links:
        if link.text is not None:
            check_link_text(link, link.text)
        elif link.text_url is None:
            raise MalformedCode("a link carries neither its text nor where to fetch it")
        if link.result != RESULT_VERIFIED:
            raise Rejected("a link was not verified", code="bad_chain")


def check_link_text(link: Link, text: TransactionText) -> None:
    if not hmac.compare_digest(text_digest(text), link.text_digest):
        raise Rejected("the transaction text does not match its signed digest",
                       code="text_mismatch")


def issue_chain_code(
    *,
    links: Sequence[Link],
    issuer: str,
    now: int,
    keyring: KeyRing,
    fits: Callable[[str], bool],
) -> str:
    """S5: the chain as one signed code. Texts travel in the QR when ``fits`` says the code
    still makes a small enough symbol (the service asks for version 25 at ECC M); otherwise
    every link carries only its text digest and the URL of its text."""
    check_chain(links)
    for with_text in (True, False):
        try:
            code = encode_code(
                code_type=CodeType.TXSIGN_CHAIN, code_id=links[-1].transaction_id,
                issued_at=now, expires_at=now + 10 * 365 * 86_400, issuer=issuer,
                claims={ChainClaim.LINKS: [_link_claims(link, with_text) for link in links]},
                keyring=keyring,
            )
        except PayloadTooLarge:
            continue  # even the code format's own limit: try without the texts
        if fits(code):
            return code
    # The same refusal (and status) as the platform's link count: the chain is too long.
    raise Rejected("the chain does not fit a QR code even without its texts",
                   code="chain_too_long")


def read_chain_code(text: str, *, keys: VerifyingKeys, now: float) -> Chain:
    """Verify a chain offline: signature, link structure and carried texts."""
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.TXSIGN_CHAIN)
    raw_links = verified.claims.get(ChainClaim.LINKS)
    if not isinstance(raw_links, list) or not raw_links:
        raise MalformedCode("a chain code carries a list of links")
    links = tuple(_link_from_claims(raw) for raw in raw_links)
    check_chain(links)
    return Chain(links=links, issuer=verified.issuer, issued_at=verified.issued_at,
                 kid=verified.kid)


def _link_claims(link: Link, with_text: bool) -> dict[int, object]:
    claims: dict[int, object] = {
        LinkKey.TRANSACTION: link.transaction_id,
        LinkKey.CREATED: link.created_at,
        LinkKey.TEXT_DIGEST: link.text_digest,
        LinkKey.RESPONSE: link.response,
        LinkKey.RESULT: link.result,
        LinkKey.VERIFIED: link.verified_at,
    }
    if link.parent_digest is not None:
        claims[LinkKey.PARENT] = link.parent_digest
    if with_text and link.text is not None:
        claims.update({LinkKey.ACCOUNT: link.text.account, LinkKey.PLATFORM: link.text.platform,
                       LinkKey.DEMAND: link.text.demand, LinkKey.COMMENT: link.text.comment})
    elif link.text_url is not None:
        claims[LinkKey.TEXT_URL] = link.text_url
    else:
        raise InvalidField("a link without its text needs a URL to fetch it from")
    return claims


def _link_from_claims(raw: object) -> Link:
    if not isinstance(raw, dict):
        raise MalformedCode("a link is a map")
    text: TransactionText | None = None
    if LinkKey.ACCOUNT in raw:
        text = TransactionText(account=_str(raw, LinkKey.ACCOUNT),
                               platform=_str(raw, LinkKey.PLATFORM),
                               demand=_str(raw, LinkKey.DEMAND),
                               comment=_str(raw, LinkKey.COMMENT))
    parent = raw.get(LinkKey.PARENT)
    url = raw.get(LinkKey.TEXT_URL)
    return Link(
        transaction_id=_bytes(raw, LinkKey.TRANSACTION, 16),
        created_at=_int(raw, LinkKey.CREATED),
        text_digest=_bytes(raw, LinkKey.TEXT_DIGEST, 32),
        parent_digest=None if parent is None else _bytes(raw, LinkKey.PARENT, 32),
        response=_str(raw, LinkKey.RESPONSE),
        result=_str(raw, LinkKey.RESULT),
        verified_at=_int(raw, LinkKey.VERIFIED),
        text=text,
        text_url=None if url is None else _str(raw, LinkKey.TEXT_URL),
    )


def _str(claims: Mapping[int, object], key: int) -> str:
    value = claims.get(key)
    if not isinstance(value, str):
        raise MalformedCode(f"claim {key} must be text")
    return value


def _int(claims: Mapping[int, object], key: int) -> int:
    value = claims.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedCode(f"claim {key} must be an integer")
    return value


def _bytes(claims: Mapping[int, object], key: int, size: int) -> bytes:
    value = claims.get(key)
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedCode(f"claim {key} must be {size} bytes")
    return value
