"""Scheme E tokens: each user's OCRA software token and its server record (the patent's
"authentication server", paired one-to-one with the token).

Enrolment: :func:`create_token` makes the secret (stored only as AEAD ciphertext) and a
signed enrolment code that carries it once. The phone scans it and activates the token by
answering an activation question; activation happens once, so the enrolment code is dead
afterwards. :func:`verify` checks a response with the bounded windows of
``qrgate.core.ocra`` and moves the counter (or last time step) by compare-and-set, so a
counter or time step is accepted at most once even on two nodes at the same instant.
Consecutive failures lock the token, whatever proof failed: a transaction's response, an
activation answer (a pending token then never activates; enrol a new one) or a resync.
Suites with a PIN (``P``) or session (``S``) part are refused at enrolment: the platform
would have to carry the PIN or session text with every response, which scheme E has no
place for.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from qrgate.accounts import directory
from qrgate.accounts.tokens import new_id
from qrgate.core import ocra
from qrgate.core.aead import SecretBox
from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.digests import SecretDigests
from qrgate.core.keyring import KeyRing
from qrgate.errors import (
    Conflict,
    Expired,
    Forbidden,
    InvalidField,
    Locked,
    MalformedCode,
    NotFound,
    Replayed,
)
from qrgate.storage.models import tokens

# Counter-based, SHA-256, 8 digits, a 64-hex-digit question: the SHA-256 of a transaction.
DEFAULT_SUITE = "OCRA-1:HOTP-SHA256-8:C-QH64"
SECRET_BYTES = 32


class TokenClaim(IntEnum):
    TOKEN = 10
    SECRET = 11
    SUITE = 12
    COUNTER = 13
    SERVER = 14
    LOGIN = 15


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    id: str
    org_id: int
    user_id: int
    suite: str
    counter: int
    last_time_step: int | None
    failures: int
    status: str
    enrol_expires_at: float
    activation_client: bytes | None = field(repr=False)
    # AEAD ciphertext: read with the record so a verification costs one query, opened only
    # inside this module.
    secret_enc: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class TokenEnrolment:
    token_id: str
    secret: bytes
    suite: str
    counter: int
    server_url: str
    login: str


_BY_ID = select(tokens).where(tokens.c.id == bindparam("b_id"))
_ACTIVE_FOR_USER = select(tokens).where(tokens.c.user_id == bindparam("b_user"),
                                        tokens.c.status == "active")


# mutation: every mutant of this function is out of mutmut's reach: the four statements
# are built at import, before mutmut switches a mutant on. What they enforce is pinned
# through the API: a response used once is refused again (test_rejections.py), and the
# same response on two nodes at once signs once.
def _consume(counter: bool, time_step: bool) -> Any:
    """Compare-and-set of the used counter and/or time step (built once per shape)."""
    conditions = [tokens.c.id == bindparam("b_id"), tokens.c.status == "active"]
    values: dict[str, Any] = {"failures": 0}
    if counter:
        conditions.append(tokens.c.counter < bindparam("b_counter"))
        values["counter"] = bindparam("b_counter")
    if time_step:
        conditions.append(or_(tokens.c.last_time_step.is_(None),
                              tokens.c.last_time_step < bindparam("b_step")))
        values["last_time_step"] = bindparam("b_step")
    return update(tokens).where(*conditions).values(**values)


_CONSUME = {(c, t): _consume(c, t) for c in (False, True) for t in (False, True)}


def _record(row: Any) -> TokenRecord:
    return TokenRecord(id=row.id, org_id=row.org_id, user_id=row.user_id, suite=row.suite,
                       counter=row.counter, last_time_step=row.last_time_step,
                       failures=row.failures, status=row.status,
                       enrol_expires_at=row.enrol_expires_at,
                       activation_client=row.activation_client, secret_enc=row.secret_enc)


def _context(token_id: str) -> bytes:
    return f"tokens.secret_enc:{token_id}".encode()


def activation_question(token_id: str) -> str:
    """The question the phone answers to activate: bound to this token id."""
    digest = hashlib.sha256(f"qrgate-token-activate:{token_id}".encode()).digest()
    return digest.hex()


def create_token(
    conn: Connection,
    *,
    box: SecretBox,
    keyring: KeyRing,
    user: directory.UserRecord,
    suite: str,
    issuer: str,
    server_url: str,
    now: float,
    ttl: int,
    random: bytes,
) -> tuple[TokenRecord, str]:
    """A new token for ``user`` and its one-time enrolment code."""
    check_suite(suite)
    directory.ensure_not_frozen(user)
    if conn.execute(_ACTIVE_FOR_USER, {"b_user": user.id}).first() is not None:
        raise Conflict("the user already has an active token; revoke it first",
                       code="token_exists")
    token_id, secret = new_id(), random[:SECRET_BYTES]
    # mutation: leaving out counter, last_time_step, failures or activated_at is
    # equivalent: the columns default to these values (storage/models.py). They are written
    # out so that the statement says what a new token is.
    conn.execute(insert(tokens).values(
        id=token_id, org_id=user.org_id, user_id=user.id, suite=suite,
        secret_enc=box.seal(secret, context=_context(token_id)), counter=0,
        last_time_step=None, failures=0, status="pending", created_at=now,
        enrol_expires_at=now + ttl, activated_at=None,
    ))
    code = encode_code(
        code_type=CodeType.TOKEN_ENROL, code_id=bytes.fromhex(token_id), issued_at=int(now),
        expires_at=int(now + ttl), issuer=issuer, keyring=keyring,
        claims={TokenClaim.TOKEN: token_id, TokenClaim.SECRET: secret, TokenClaim.SUITE: suite,
                TokenClaim.COUNTER: 0, TokenClaim.SERVER: server_url,
                TokenClaim.LOGIN: user.login},
    )
    return get_token(conn, token_id), code


def check_suite(suite: str) -> ocra.Suite:
    """The suites a transaction-signing token may use: QH64 questions (the transaction
    digest), no PIN and no session part."""
    parsed = ocra.parse_suite(suite)
    if parsed.question_kind != "H" or parsed.question_length != 64:
        raise InvalidField("transaction signing needs a QH64 suite", code="bad_ocra_suite")
    if parsed.pin_hash is not None or parsed.session_length is not None:
        raise InvalidField("suites with a PIN or session part are not supported",
                           code="bad_ocra_suite")
    return parsed


def read_enrolment_code(text: str, *, keys: Any, now: float) -> TokenEnrolment:
    verified = decode_code(text, keys=keys, now=now, expected_type=CodeType.TOKEN_ENROL)
    claims = verified.claims
    values = (claims.get(TokenClaim.TOKEN), claims.get(TokenClaim.SECRET),
              claims.get(TokenClaim.SUITE), claims.get(TokenClaim.COUNTER),
              claims.get(TokenClaim.SERVER), claims.get(TokenClaim.LOGIN))
    token_id, secret, suite, counter, server, login = values
    if not (isinstance(token_id, str) and isinstance(secret, bytes) and isinstance(suite, str)
            and isinstance(counter, int) and not isinstance(counter, bool)
            and isinstance(server, str)
            and isinstance(login, str)):
        raise MalformedCode("token enrolment claims are missing or ill-typed")
    return TokenEnrolment(token_id=token_id, secret=secret, suite=suite, counter=counter,
                          server_url=server, login=login)


def find_token(conn: Connection, token_id: str) -> TokenRecord | None:
    row = conn.execute(_BY_ID, {"b_id": token_id}).first()
    return None if row is None else _record(row)


def get_token(conn: Connection, token_id: str) -> TokenRecord:
    token = find_token(conn, token_id)
    if token is None:
        raise NotFound("no such token", code="token_not_found")
    return token


def active_token(conn: Connection, *, user_id: int) -> TokenRecord:
    row = conn.execute(_ACTIVE_FOR_USER, {"b_user": user_id}).first()
    if row is None:
        locked = conn.execute(
            select(tokens.c.id).where(tokens.c.user_id == user_id, tokens.c.status == "locked",
                                      tokens.c.activated_at.is_not(None))
        ).first()
        if locked is not None:
            raise Locked("the user's token is locked after repeated failures",
                         code="token_locked")
        raise NotFound("the user has no active token", code="no_token")
    return _record(row)


def list_tokens(conn: Connection, *, user_id: int) -> list[TokenRecord]:
    # mutation: without the order the rows still come back in creation order in every test
    # (both databases return a small table in insertion order); the order is the promise.
    rows = conn.execute(select(tokens).where(tokens.c.user_id == user_id)
                        .order_by(tokens.c.created_at))
    return [_record(row) for row in rows]


def _secret(box: SecretBox, token: TokenRecord) -> bytes:
    return box.open(token.secret_enc, context=_context(token.id))


def activate(
    conn: Connection, *, box: SecretBox, digests: SecretDigests, token_id: str, response: str,
    client_id: str | None, now: float,
) -> TokenRecord:
    """The phone proves it holds the secret; the enrolment code is dead from here on.
    A wrong answer raises ``wrong_response``: the caller counts it (:func:`count_failure`)
    in a transaction of its own."""
    token = get_token(conn, token_id)
    if token.status == "locked":
        raise Locked("too many wrong activation answers; enrol a new token",
                     code="token_locked")
    if token.status != "pending":
        raise Replayed("the token was already activated", code="already_activated")
    if now >= token.enrol_expires_at:
        raise Expired("the token enrolment expired")
    directory.ensure_not_frozen(directory.get_user(conn, token.user_id))
    suite = ocra.parse_suite(token.suite)
    # mutation: last_time_step=None is equivalent: a pending token has accepted no step yet.
    match = ocra.verify_response(
        suite=suite, key=_secret(box, token),
        question=activation_question(token_id), response=response, counter=token.counter,
        last_time_step=token.last_time_step, now=now,
    )
    # mutation: the status condition only stops a concurrent activation or revocation that
    # committed between the read above and this statement (a race, as for decisions).
    activated = conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.status == "pending")
        .values(status="active", activated_at=now, failures=0,
                counter=match.counter_next if match.counter_next is not None else token.counter,
                last_time_step=match.time_step,
                activation_client=None if client_id is None else digests.digest(
                    client_id, purpose="token_client"))
    )
    if activated.rowcount != 1:
        raise Replayed("the token was already activated", code="already_activated")
    return get_token(conn, token_id)


def activation_repeat(conn: Connection, *, box: SecretBox, digests: SecretDigests,
                      token_id: str, response: str, client_id: str | None) -> TokenRecord | None:
    """The token if the app that activated it sends the very same answer again (its reply
    was lost), as long as the token has not been used since. Anyone else holding a copy of
    the enrolment QR computes the same answer but not the same client id: they are told
    the token is already activated."""
    token = find_token(conn, token_id)
    if (token is None or token.status != "active" or client_id is None
            or token.activation_client is None
            or not digests.matches(client_id, token.activation_client, purpose="token_client")):
        return None
    expected = _last_response(box, token, activation_question(token_id), back=1)
    return token if expected is not None and _same(expected, response) else None


def resync_repeat(conn: Connection, *, box: SecretBox, token: TokenRecord,
                  questions: tuple[str, str], responses: tuple[str, str]) -> bool:
    """True if these are the two responses that the last resync accepted (a retry). Only
    counter suites resynchronise (``ocra.resync``), so only they can repeat one."""
    suite = ocra.parse_suite(token.suite)
    # mutation: "and" for the second "or" differs only for a suite with neither counter nor
    # time step, or with both; ocra.resync takes counter-only suites, so such a token was
    # never resynchronised and the responses the mutant computes are never the ones sent.
    if token.status != "active" or not suite.uses_counter or suite.time_step is not None:
        return False
    first = _last_response(box, token, questions[0], back=2)
    second = _last_response(box, token, questions[1], back=1)
    return (first is not None and second is not None
            and _same(first, responses[0]) & _same(second, responses[1]))


def _last_response(box: SecretBox, token: TokenRecord, question: str, *,
                   back: int) -> str | None:
    """The response to ``question`` at the counter ``back`` steps before the next one (and
    the last accepted time step); None where there is no such counter or step."""
    suite = ocra.parse_suite(token.suite)
    counter = token.counter - back if suite.uses_counter else None
    # mutation: "or True" is equivalent: a token whose suite has no time step has no
    # last_time_step (None) either.
    step = token.last_time_step if suite.time_step else None
    if (counter is not None and counter < 0) or (suite.time_step and step is None):
        return None
    return ocra.respond(suite=suite, key=_secret(box, token), question=question,
                        counter=counter, time_step=step)


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def verify(
    conn: Connection, *, box: SecretBox, token: TokenRecord, question: str, response: str,
    now: float,
) -> ocra.Match:
    """S4: the expected response is computed and compared; the used counter or time step
    is consumed atomically (two nodes verifying the same response: one wins)."""
    # mutation: defence in depth no request reaches: respond verifies the user's active
    # token only (active_token refuses a locked one first, with this same code).
    if token.status == "locked":
        raise Locked("the token is locked after repeated failures", code="token_locked")
    # mutation: not passing last_time_step, or picking another statement below, changes
    # nothing under SQLite's single writer: verify_response and the compare-and-set each
    # refuse a used counter or time step; both are needed only when two nodes race.
    match = ocra.verify_response(
        suite=ocra.parse_suite(token.suite), key=_secret(box, token),
        question=question, response=response, counter=token.counter,
        last_time_step=token.last_time_step, now=now,
    )
    # mutation: as above.
    consumed = conn.execute(_CONSUME[(match.counter_next is not None,
                                      match.time_step is not None)],
                            {"b_id": token.id, "b_counter": match.counter_next,
                             "b_step": match.time_step})
    if consumed.rowcount != 1:
        raise Replayed("this response was already used", code="response_replayed")
    return match


def count_failure(conn: Connection, *, token_id: str, max_failures: int) -> bool:
    """Count a failed proof of a pending or active token; returns True when this failure
    locked it."""
    usable = tokens.c.status.in_(("pending", "active"))
    # mutation: the status conditions of both statements only matter when the token was
    # revoked or locked concurrently, between the caller's read and this count (a race).
    row = conn.execute(
        update(tokens).where(tokens.c.id == token_id, usable)
        .values(failures=tokens.c.failures + 1).returning(tokens.c.failures)
    ).first()
    if row is None or row.failures < max_failures:
        return False
    # mutation: as above for the status condition.
    locked = conn.execute(update(tokens).where(tokens.c.id == token_id, usable)
                          .values(status="locked"))
    return locked.rowcount == 1


def set_status(conn: Connection, *, token_id: str, status: str) -> None:
    """Operators unlock (``active``, failures reset) a token locked after it was activated,
    or revoke a token. A token locked before activation never proved possession of its
    secret: it cannot be unlocked, only revoked and replaced."""
    values: dict[str, Any] = {"status": status}
    target = tokens.c.status != "revoked"
    if status == "active":
        values["failures"] = 0
        target = (tokens.c.status == "locked") & tokens.c.activated_at.is_not(None)
    result = conn.execute(update(tokens).where(tokens.c.id == token_id, target)
                          .values(**values))
    if result.rowcount != 1:
        raise NotFound(f"no token with that id that can be set {status}",
                       code="token_not_found")


def resync(
    conn: Connection, *, box: SecretBox, token: TokenRecord, questions: tuple[str, str],
    responses: tuple[str, str],
) -> TokenRecord:
    """A counter token that drifted past the look-ahead window proves two consecutive
    responses within ``ocra.RESYNC_WINDOW``; the counter moves past them (never back)."""
    if token.status == "locked":
        raise Locked("the token is locked after repeated failures", code="token_locked")
    if token.status != "active":
        raise Forbidden("only an active token resynchronises", code="token_inactive")
    counter_next = ocra.resync(suite=ocra.parse_suite(token.suite),
                               key=_secret(box, token), questions=questions,
                               responses=responses, counter=token.counter)
    # mutation: the condition on the counter matters only when another transaction moved it
    # since this one read it (PostgreSQL); under SQLite's single writer ocra.resync above
    # already searched from the current counter, so it cannot fail here.
    moved = conn.execute(update(tokens).where(tokens.c.id == token.id,
                                              tokens.c.counter < counter_next)
                         .values(counter=counter_next, failures=0))
    if moved.rowcount != 1:
        raise Replayed("these responses were already used", code="response_replayed")
    return get_token(conn, token.id)
