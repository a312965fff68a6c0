"""The transaction platform and QR generator of scheme E (SPEC E, S1-S11).

:func:`start` (S1, or S6-S8 with a parent chain code) stores the transaction and returns the
challenge: the OCRA question over the transaction digest and a signed challenge code the
token can scan. :func:`respond` (S3-S5, S9-S11) has the token's server record check the
response, then issues the chain code: every verified link from the first transaction to
this one, signed by the server. Each outcome is audited; failures count against the
transaction and the token (see ``qrgate.decisions``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, select, update

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id
from qrgate.core.ocra import parse_suite, question_for_digest
from qrgate.core.txsign import (
    MAX_CHAIN_LINKS,
    Chain,
    Link,
    Transaction,
    TransactionText,
    check_link_text,
    issue_chain_code,
    issue_challenge_code,
    read_chain_code,
    signed_link,
    transaction_digest,
)
from qrgate.decisions import AuditSubject, run_decision
from qrgate.errors import (
    AlreadyDecided,
    Expired,
    Forbidden,
    Locked,
    NotBound,
    NotFound,
    QrgateError,
    Rejected,
)
from qrgate.runtime import Runtime
from qrgate.storage.models import transactions, users
from qrgate.txsign import tokens
from qrgate.txsign.tokens import TokenRecord
from qrgate.webhooks import catalogue, outbox

# Version 25 at ECC M holds 1,451 characters in QR alphanumeric mode, the mode of a whole
# QG1 code: checking the length keeps rendering off the signing path
# (tests/txsign/test_chain_size.py pins the boundary with real symbols).
MAX_CHAIN_CODE_CHARS = 1451
TRANSACTION_TTL = 300

_LOAD = select(transactions).where(transactions.c.id == bindparam("b_id"))
_INSERT = insert(transactions)
# Signed only while the user is not frozen, checked in the signing statement itself (see
# qrgate.freeze): a freeze on any node stops every later signature.
_USER_NOT_FROZEN = ~exists().where(users.c.id == transactions.c.user_id,
                                   users.c.frozen_at.is_not(None))
_SIGN = (
    update(transactions)
    .where(transactions.c.id == bindparam("b_id"), transactions.c.state == "pending",
           transactions.c.expires_at > bindparam("b_now"), _USER_NOT_FROZEN)
    .values(state="signed", reason="signed", token_id=bindparam("b_token"),
            response=bindparam("b_response"), verified_at=bindparam("b_verified"),
            chain_code=bindparam("b_chain"))
)


@dataclass(frozen=True, kw_only=True)
class TxRow:
    id: str
    org_id: int
    app_id: int
    user_id: int
    text: TransactionText
    issued_at: int
    created_at: float
    expires_at: float
    parent_id: str | None
    parent_digest: bytes | None
    digest: bytes
    state: str
    reason: str | None
    attempts: int
    token_id: str | None
    response: str | None
    verified_at: int | None
    chain_code: str | None

    @property
    def transaction(self) -> Transaction:
        return Transaction(transaction_id=bytes.fromhex(self.id), text=self.text,
                           created_at=self.issued_at, parent_digest=self.parent_digest)

    def effective_state(self, now: float) -> str:
        if self.state == "pending" and now >= self.expires_at:
            return "expired"
        return self.state


@dataclass(frozen=True, kw_only=True)
class Started:
    transaction: TxRow
    question: str
    suite: str
    challenge_code: str
    parent: Chain | None


def _row(row: Any) -> TxRow:
    return TxRow(
        id=row.id, org_id=row.org_id, app_id=row.app_id, user_id=row.user_id,
        text=TransactionText(account=row.account, platform=row.platform, demand=row.demand,
                             comment=row.comment),
        issued_at=row.issued_at, created_at=row.created_at, expires_at=row.expires_at,
        parent_id=row.parent_id, parent_digest=row.parent_digest, digest=row.digest,
        state=row.state, reason=row.reason, attempts=row.attempts, token_id=row.token_id,
        response=row.response, verified_at=row.verified_at, chain_code=row.chain_code,
    )


def find(conn: Connection, transaction_id: str) -> TxRow | None:
    row = conn.execute(_LOAD, {"b_id": transaction_id}).first()
    return None if row is None else _row(row)


def load(conn: Connection, transaction_id: str) -> TxRow:
    row = find(conn, transaction_id)
    if row is None:
        raise NotFound("no such transaction", code="transaction_not_found")
    return row


def load_owned(conn: Connection, *, app: directory.AppRecord, transaction_id: str) -> TxRow:
    row = load(conn, transaction_id)
    if row.org_id != app.org_id:
        raise NotFound("no such transaction", code="transaction_not_found")
    return row


def text_url(rt: Runtime, transaction_id: str) -> str:
    return f"{rt.settings.public_url}/v1/txsign/transactions/{transaction_id}/text"


@dataclass(frozen=True, kw_only=True)
class TransactionRequest:
    """S1's input. ``platform`` names the platform by business id (one of the caller's
    organisation's applications, default its own): the platform the signed text shows is
    the one qrgate knows, never free text."""

    account: str
    demand: str
    comment: str = ""
    platform: str | None = None
    parent_code: str | None = None


def start(rt: Runtime, *, app: directory.AppRecord, request: TransactionRequest) -> Started:
    now = rt.clock()
    subject = AuditSubject(event="txsign.start", scheme="txsign", org_id=app.org_id,
                           app_id=app.id)
    # S6/S7: the second user's phone scanned the first QR; the platform verifies it first.
    parent_code = request.parent_code
    parent = None if parent_code is None else rt.keys.verifying(
        lambda ring: read_chain_code(parent_code, keys=ring, now=now))

    def work(conn: Connection) -> tuple[Started, str]:
        platform_app = directory.resolve_app(conn, app=app, business_id=request.platform)
        subject.app_id = platform_app.id
        text = TransactionText(account=request.account, platform=platform_app.business_id,
                               demand=request.demand, comment=request.comment)
        user = directory.find_user(conn, org_id=app.org_id, login=text.account)
        subject.user_id = user.id
        directory.ensure_not_frozen(user)
        directory.ensure_not_blocked(user, now=now)
        token = tokens.active_token(conn, user_id=user.id)
        parent_id, parent_digest = _parent(conn, app=app, chain=parent)
        transaction = Transaction(transaction_id=bytes.fromhex(new_id()), text=text,
                                  created_at=int(now), parent_digest=parent_digest)
        digest = transaction_digest(transaction)
        transaction_id = transaction.transaction_id.hex()
        subject.challenge_id = transaction_id
        expires_at = now + TRANSACTION_TTL
        # mutation: the ids, digests, attempts and issue time of the row start returns are
        # not in its answer (routes_txsign.transaction_out shows state, times and texts);
        # what is stored is _INSERT's below, which the tests read back.
        row = TxRow(
            id=transaction_id, org_id=app.org_id, app_id=platform_app.id, user_id=user.id,
            text=text,
            issued_at=transaction.created_at, created_at=now, expires_at=expires_at,
            parent_id=parent_id, parent_digest=parent_digest, digest=digest, state="pending",
            reason=None, attempts=0, token_id=None, response=None, verified_at=None,
            chain_code=None,
        )
        conn.execute(_INSERT, {
            "id": transaction_id, "org_id": app.org_id, "app_id": platform_app.id,
            "user_id": user.id,
            "account": text.account, "platform": text.platform, "demand": text.demand,
            "comment": text.comment, "created_at": now, "issued_at": transaction.created_at,
            "expires_at": expires_at, "parent_id": parent_id, "parent_digest": parent_digest,
            "digest": digest, "state": "pending", "reason": None, "attempts": 0,
            "token_id": None, "response": None, "verified_at": None, "chain_code": None,
        })
        challenge_code = issue_challenge_code(
            transaction=transaction, suite=token.suite, issuer=rt.settings.issuer,
            now=int(now), expires_at=int(expires_at), keyring=rt.keyring,
        )
        started = Started(transaction=row,
                          question=question_for_digest(digest, parse_suite(token.suite)),
                          suite=token.suite, challenge_code=challenge_code, parent=parent)
        return started, "started"

    return run_decision(rt, subject=subject, now=now, work=work)


def _parent(
    conn: Connection, *, app: directory.AppRecord, chain: Chain | None
) -> tuple[str | None, bytes | None]:
    """The platform accepts only chains it signed, whose last link is one of its own
    signed transactions, unchanged."""
    if chain is None:
        return None, None
    if len(chain.links) >= MAX_CHAIN_LINKS:
        # Refused here, before a token's response is spent on a link that cannot be issued.
        raise Rejected(f"a chain holds at most {MAX_CHAIN_LINKS} links", code="chain_too_long")
    last = chain.last
    try:
        parent = load_owned(conn, app=app, transaction_id=last.transaction_id.hex())
    except NotFound:
        raise Rejected("the scanned chain is not one of this platform's",
                       code="unknown_parent") from None
    # mutation: "and" is equivalent: only a signed transaction has a chain code, and a
    # signed transaction stays signed; a changed response is caught by the digest below too.
    if parent.state != "signed" or parent.response != last.response:
        raise Rejected("the scanned chain does not match the signed transaction",
                       code="tampered_chain")
    # mutation: any text_url is equivalent: a link's digest does not cover where its text is.
    stored = stored_link(parent, text_url="")
    if stored.digest != last.digest:
        raise Rejected("the scanned chain does not match the signed transaction",
                       code="tampered_chain")
    return parent.id, last.digest


def stored_link(row: TxRow, *, text_url: str) -> Link:
    # mutation: "and" is equivalent: _SIGN writes response and verified_at together.
    if row.response is None or row.verified_at is None:
        raise Rejected("transaction is not signed", code="not_signed")
    return signed_link(transaction=row.transaction, response=row.response,
                       verified_at=row.verified_at, text_url=text_url)


def chain_links(rt: Runtime, conn: Connection, row: TxRow) -> list[Link]:
    """Every link from the first transaction of the chain to ``row`` (which must be signed)."""
    links = [stored_link(row, text_url=text_url(rt, row.id))]
    current = row
    while current.parent_id is not None:
        current = load(conn, current.parent_id)
        links.append(stored_link(current, text_url=text_url(rt, current.id)))
    links.reverse()
    return links


def respond(
    rt: Runtime,
    *,
    app: directory.AppRecord,
    transaction_id: str,
    response: str,
    token_id: str | None,
) -> TxRow:
    """S3-S5: verify the token's response for this transaction and issue the chain code."""
    now = rt.clock()
    subject = AuditSubject(event="txsign.respond", scheme="txsign", org_id=app.org_id,
                           app_id=app.id, challenge_id=transaction_id)
    used_token: list[str] = []

    def repeat_of(conn: Connection) -> TxRow | None:
        """The platform sent again the response that signed this transaction (a retry, or
        copies on several nodes): the same answer, and no failure counted."""
        row = find(conn, transaction_id)
        if (row is not None and row.org_id == app.org_id and row.state == "signed"
                and row.response is not None
                and hmac.compare_digest(row.response.encode(), response.encode())):
            return row
        return None

    def work(conn: Connection) -> tuple[TxRow, str]:
        row = load_owned(conn, app=app, transaction_id=transaction_id)
        subject.user_id = row.user_id
        state = row.effective_state(now)
        if state == "expired":
            raise Expired("transaction expired")
        if state != "pending":
            raise AlreadyDecided("transaction already decided")
        if row.attempts >= rt.settings.max_failures:
            raise Locked("too many wrong responses for this transaction")
        token = _token_for(conn, app=app, row=row, token_id=token_id)
        used_token.append(token.id)
        subject.detail["token_id"] = token.id
        tokens.verify(conn, box=rt.box, token=token, question=row.digest.hex(),
                      response=response, now=now)
        verified_at = int(now)
        signed = replace(row, response=response, verified_at=verified_at, state="signed",
                         reason="signed", token_id=token.id)
        links = chain_links(rt, conn, signed)
        chain_code = issue_chain_code(
            links=links, issuer=rt.settings.issuer, now=verified_at, keyring=rt.keyring,
            fits=lambda code: len(code) <= MAX_CHAIN_CODE_CHARS,
        )
        result = conn.execute(_SIGN, {"b_id": row.id, "b_now": now, "b_token": token.id,
                                      "b_response": response, "b_verified": verified_at,
                                      "b_chain": chain_code})
        if result.rowcount != 1:
            # The user was frozen since the row was read, or another node signed first.
            directory.ensure_not_frozen(directory.get_user(conn, row.user_id))
            raise AlreadyDecided("transaction already decided")
        outbox.emit(rt, conn, catalogue.transaction_ended(signed, state="signed",
                                                          reason="signed", at=now))
        return replace(signed, chain_code=chain_code), "signed"

    def after(conn: Connection, error: QrgateError) -> None:
        if error.code == "wrong_response":
            conn.execute(update(transactions).where(transactions.c.id == transaction_id)
                         .values(attempts=transactions.c.attempts + 1))
            if used_token and count_token_failure(rt, conn, token_id=used_token[0], now=now):
                subject.detail["token_locked"] = True
        if isinstance(error, Expired) or error.code == "wrong_response":
            locked = _close_if_spent(conn, transaction_id=transaction_id, now=now,
                                     max_failures=rt.settings.max_failures)
            if locked is not None:
                outbox.emit(rt, conn, catalogue.transaction_ended(
                    locked, state="rejected", reason="locked", at=now))

    return run_decision(rt, subject=subject, now=now, work=work, on_failure=after,
                        repeat_of=repeat_of)


def _token_for(conn: Connection, *, app: directory.AppRecord, row: TxRow,
               token_id: str | None) -> TokenRecord:
    """The token paired with the transaction's user; naming another user's token fails,
    and another organisation's token is answered like one that does not exist."""
    token = tokens.active_token(conn, user_id=row.user_id)
    if token_id is not None and token_id != token.id:
        named = tokens.find_token(conn, token_id)
        if named is None or named.org_id != app.org_id:
            raise NotFound("no such token", code="token_not_found")
        if named.user_id != row.user_id:
            raise NotBound("that token belongs to another user", code="wrong_user")
        raise Forbidden("that token is not the user's active token", code="token_inactive")
    return token


def end_pending_for_user(conn: Connection, *, user_id: int, reason: str,
                         now: float) -> list[TxRow]:
    """Reject every transaction of a user still waiting for a response (frozen); returns
    them, rejected."""
    rows = conn.execute(update(transactions)
                        .where(transactions.c.user_id == user_id,
                               transactions.c.state == "pending",
                               transactions.c.expires_at > now)
                        .values(state="rejected", reason=reason)
                        .returning(*transactions.c))
    return [_row(row) for row in rows]


def _close_if_spent(conn: Connection, *, transaction_id: str, now: float,
                    max_failures: int) -> TxRow | None:
    """Write the expiry readers already see, or end a transaction out of attempts; returns
    it in the second case (a decision its platform hears about)."""
    pending = (transactions.c.id == transaction_id, transactions.c.state == "pending")
    # mutation: dropping ``*pending`` is equivalent under SQLite's single writer (the refusal
    # that brought us here came from this pending row); on PostgreSQL it keeps a
    # transaction that another node signed meanwhile signed.
    conn.execute(update(transactions).where(*pending, transactions.c.expires_at <= now)
                 .values(state="expired", reason="expired"))
    # mutation: as above for ``*pending``.
    locked = conn.execute(update(transactions)
                          .where(*pending, transactions.c.attempts >= max_failures)
                          .values(state="rejected", reason="locked")
                          .returning(*transactions.c)).first()
    return None if locked is None else _row(locked)


def count_token_failure(rt: Runtime, conn: Connection, *, token_id: str, now: float) -> bool:
    """Count a failed proof of a token (a response, an activation answer, a resync);
    returns True when it locked the token, which every application of its organisation
    with a webhook hears about."""
    if not tokens.count_failure(conn, token_id=token_id, max_failures=rt.settings.max_failures):
        return False
    token = tokens.get_token(conn, token_id)
    outbox.emit(rt, conn, catalogue.token_locked(
        token, user=directory.get_user(conn, token.user_id), at=now))
    return True


def verify_chain_code(rt: Runtime, *, code: str) -> tuple[Chain, list[TransactionText]]:
    """Verify a chain code as any party would, then fetch link texts the QR left out from
    this server's records and check them against their signed digests."""
    now = rt.clock()
    chain = rt.keys.verifying(lambda ring: read_chain_code(code, keys=ring, now=now))
    return chain, link_texts(rt, chain)


def link_texts(rt: Runtime, chain: Chain) -> list[TransactionText]:
    """Each link's text: from the QR where it travelled (already checked against its
    digest), else from this server's records, checked against the signed digest."""
    texts: list[TransactionText] = []
    with rt.read() as conn:
        for link in chain.links:
            if link.text is not None:
                texts.append(link.text)
                continue
            row = load(conn, link.transaction_id.hex())
            check_link_text(link, row.text)
            texts.append(row.text)
    return texts
