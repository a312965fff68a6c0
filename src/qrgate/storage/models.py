"""The relational model: organisations, applications, users, devices, challenges, audit.

Times are stored as Unix seconds (double precision) so that every expiry check is a plain
numeric comparison inside one SQL statement on SQLite and PostgreSQL alike, and so the pure
core, which takes time as an argument, never converts timezones.

Secrets never sit here in clear: API keys, browser tokens and one-time codes are stored as
HMAC-SHA256 digests keyed from the key-encryption key (``qrgate.core.digests``), passwords
as scrypt hashes, and secrets we must read back (TOTP seeds, token secrets, signing keys)
as AEAD ciphertext under the key-encryption key.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class Application(Base):
    """A relying party's application, named inside its organisation by a business id."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("org_id", "business_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    business_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Policy knobs (number matching, verifier routing, TTLs); see qrgate.core.policy.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    # Public half of the key, used to look it up; the secret half is only hashed.
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "login"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    login: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    preferred_verifier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Last accepted TOTP time step: a step is never accepted twice (compare-and-set).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    frozen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # Set by a "this wasn't me" report: no new challenge for the user before this time.
    blocked_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class Enrolment(Base):
    """A one-time device enrolment: the QR carries ``id`` + a secret, the user confirms it."""

    __tablename__ = "enrolments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    confirm_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Device(Base):
    """A phone bound to a user: the identity is proven by its ES256 device key."""

    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_app_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    # Uncompressed SEC1 P-256 point (65 bytes).
    public_key: Mapped[bytes] = mapped_column(LargeBinary(65))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[float] = mapped_column(Float)
    unbound_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The secret the phone derives offline approval codes from (qrgate.confirm.offline),
    # AEAD ciphertext; handed to the phone once, at enrolment.
    offline_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # App lock (qrgate.accounts.app_lock): the key derived from the phone's PIN, as AEAD
    # ciphertext, the wrong PINs counted since the last right one, and the platform
    # authenticator's WebAuthn credential.
    lock_pin_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    lock_pin_failures: Mapped[int] = mapped_column(Integer, default=0,
                                                   server_default=text("0"))
    webauthn_credential_id: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    webauthn_public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    webauthn_sign_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AccessPass(Base):
    """A temporary access pass: a user who lost their phone enrols a new one with it.

    Found by the keyed digest of the pass itself (nothing else identifies it), used once.
    """

    __tablename__ = "access_passes"
    __table_args__ = (Index("ix_access_passes_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    pass_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # Who issued it: "operator" (CLI) or "relying_party" (API, app_id set).
    issued_by: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), nullable=True)
    # Whether the phone enrolled with it replaces the user's other devices (unbinds them).
    revoke_devices: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Report(Base):
    """A user's "this wasn't me": a challenge or transaction they did not start."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    scheme: Mapped[str] = mapped_column(String(16))
    challenge_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    blocked_until: Mapped[float] = mapped_column(Float)


class Challenge(Base):
    """One verification (scheme C: a confirmation) and its state machine.

    Every state change is a single ``UPDATE ... WHERE state = ... RETURNING`` so that two
    nodes racing on one challenge cannot both win.
    """

    __tablename__ = "challenges"
    __table_args__ = (
        Index("ix_challenges_app_created", "app_id", "created_at"),
        Index("ix_challenges_user_created", "user_id", "created_at"),
        Index("ix_challenges_device_created", "device_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    login: Mapped[str] = mapped_column(String(128))
    business_id: Mapped[str] = mapped_column(String(64))
    scene: Mapped[dict[str, Any]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(300), nullable=True)
    verifier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(48), nullable=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The verification code of the QR now on screen; rotation replaces it atomically.
    code_nonce: Mapped[bytes] = mapped_column(LargeBinary(16))
    code_seq: Mapped[int] = mapped_column(Integer, default=0)
    code_expires_at: Mapped[float] = mapped_column(Float)
    # Keyed digest (qrgate.core.digests) of the secret only the starting browser holds.
    browser_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    requester_ip: Mapped[str] = mapped_column(String(64), default="")
    requester_ua: Mapped[str] = mapped_column(String(300), default="")
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    scanned_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Token(Base):
    """Scheme E: a user's challenge/response (OCRA) token and its one-to-one server record.

    The token's secret is AEAD ciphertext under the key-encryption key. A counter is
    accepted at most once (``counter`` is the next one expected, moved by compare-and-set),
    a time step at most once (``last_time_step``).
    """

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    suite: Mapped[str] = mapped_column(String(64))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    last_time_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # pending (enrolment code not yet used) -> active -> locked | revoked
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    enrol_expires_at: Mapped[float] = mapped_column(Float)
    activated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Keyed digest of the id the activating app chose: its retry is recognised, a copy of
    # the enrolment QR activating elsewhere is not (qrgate.txsign.tokens).
    activation_client: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)


class TxTransaction(Base):
    """Scheme E: one transaction to sign, the link it becomes, and its place in a chain."""

    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_app_created", "app_id", "created_at"),
        Index("ix_transactions_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    account: Mapped[str] = mapped_column(String(128))
    platform: Mapped[str] = mapped_column(String(100))
    demand: Mapped[str] = mapped_column(String(300))
    comment: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[float] = mapped_column(Float)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parent_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(48), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    response: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_code: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditEntry(Base):
    """Append-only, hash-chained: ``hash = H(prev_hash || canonical(entry))``."""

    __tablename__ = "audit_log"
    # Support searching one challenge's or one user's history, newest first.
    __table_args__ = (
        Index("ix_audit_log_challenge", "challenge_id", "seq"),
        Index("ix_audit_log_user", "user_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[float] = mapped_column(Float)
    event: Mapped[str] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(String(48))
    scheme: Mapped[str] = mapped_column(String(16), default="")
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    app_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    challenge_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """One row holding the chain's tip; its row lock serialises appenders across nodes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint of the audit chain (see ``qrgate.core.audit_checkpoint``).

    ``text`` is the whole signed line; ``number`` and ``seq`` repeat what it signs so that
    nodes racing to write the next checkpoint collide on a key: the first insert wins and
    the others write nothing, which keeps the checkpoints one unforked chain.
    """

    __tablename__ = "audit_checkpoints"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    text: Mapped[str] = mapped_column(Text)


class StoredSigningKey(Base):
    """A code-signing key shared by every node (see ``qrgate.keys``).

    ``private_key_enc`` is the PKCS #8 DER private key sealed under the KEK with the kid in
    the authenticated context, so whoever can write the database but lacks the KEK can
    neither plant a key nor swap two rows' keys. ``public_key`` is the DER
    SubjectPublicKeyInfo (the kid is derived from it), readable without the KEK.

    At most one row is ``active``: the partial unique index makes nodes seeding an empty
    table at once, or two rotations racing, collide instead of ending with two signers.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint("state IN ('active', 'verify', 'retired')", name="state"),
        Index("uq_signing_keys_active", "state", unique=True,
              sqlite_where=text("state = 'active'"), postgresql_where=text("state = 'active'")),
    )

    kid: Mapped[bytes] = mapped_column(LargeBinary(8), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Webhook(Base):
    """An application's webhook: where its events go and the key that signs them.

    The signing key (Standard Webhooks' ``whsec_`` secret, as raw bytes) is AEAD ciphertext
    under the KEK with the application in the authenticated context. After a rotation the
    previous key still signs, beside the new one, until ``previous_expires_at``: receivers
    switch keys without missing an event.
    """

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_org", "org_id"),)

    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), primary_key=True,
                                        autoincrement=False)
    # The application's organisation, for events about a user or device, which go to
    # every application of the organisation that has a webhook.
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    url: Mapped[str] = mapped_column(String(300))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    previous_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class OutboxEvent(Base):
    """The transactional outbox of webhooks: one row per event and destination application,
    written in the very transaction of the decision it reports (``qrgate.webhooks``).

    ``id`` is the event's ``webhook-id``, the same on every attempt. A node delivers a row
    only while it holds its lease: ``lease_owner`` and ``lease_until`` are set by one
    conditional UPDATE that matches rows whose lease is free or expired, so two nodes never
    send the same row at once, and a node that died mid-delivery leaves a lease that
    expires, after which another node sends the event again.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
        Index("ix_webhook_events_due", "state", "next_attempt_at"),
        Index("ix_webhook_events_app_created", "app_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    app_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)



class GridCard(Base):
    """A printed grid card (scheme A, ``qrgate.gridcard.cards``). The card key is never
    stored; its cells are in ``gridcard_cells``, as keyed digests. A user has at most one
    active card: issuing another revokes it in the same transaction."""

    __tablename__ = "gridcards"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'revoked')", name="status"),
        Index("ix_gridcards_user", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class GridCardCell(Base):
    """One cell of a card: the keyed digest of its content (purpose ``gridcard_cell``) and
    when it was used."""

    __tablename__ = "gridcard_cells"

    card_id: Mapped[str] = mapped_column(ForeignKey("gridcards.id"), primary_key=True)
    position: Mapped[str] = mapped_column(String(4), primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class GridCardAttempt(Base):
    """One authentication with a grid card (``qrgate.gridcard.attempts``): the position
    asked and its window. ``app_id`` is null when the phone app started it alone. Its
    answer token is derived from its id under a server key, never stored."""

    __tablename__ = "gridcard_attempts"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'authenticated', 'failed', 'expired')",
                        name="state"),
        CheckConstraint("risk IN ('low', 'normal', 'high')", name="risk"),
        Index("ix_gridcard_attempts_user_state", "user_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    card_id: Mapped[str] = mapped_column(ForeignKey("gridcards.id"))
    login: Mapped[str] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(64))
    risk: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    position: Mapped[str] = mapped_column(String(4))
    position_seq: Mapped[int] = mapped_column(Integer)
    window_seconds: Mapped[int] = mapped_column(Integer)
    position_issued_at: Mapped[float] = mapped_column(Float)
    position_expires_at: Mapped[float] = mapped_column(Float)
    reissues: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    requester_ip: Mapped[str] = mapped_column(String(64))
    requester_ua: Mapped[str] = mapped_column(String(300))
    answer_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)


# Typed handles for Core statements (``Model.__table__`` is typed as a plain FromClause).
organisations = cast(Table, Organisation.__table__)
applications = cast(Table, Application.__table__)
api_keys = cast(Table, ApiKey.__table__)
users = cast(Table, User.__table__)
enrolments = cast(Table, Enrolment.__table__)
devices = cast(Table, Device.__table__)
challenges = cast(Table, Challenge.__table__)
audit_log = cast(Table, AuditEntry.__table__)
tokens = cast(Table, Token.__table__)
transactions = cast(Table, TxTransaction.__table__)
audit_head = cast(Table, AuditHead.__table__)
audit_checkpoints = cast(Table, AuditCheckpoint.__table__)
signing_keys = cast(Table, StoredSigningKey.__table__)
webhooks = cast(Table, Webhook.__table__)
webhook_events = cast(Table, OutboxEvent.__table__)
access_passes = cast(Table, AccessPass.__table__)
reports = cast(Table, Report.__table__)
gridcards = cast(Table, GridCard.__table__)
gridcard_cells = cast(Table, GridCardCell.__table__)
gridcard_attempts = cast(Table, GridCardAttempt.__table__)
