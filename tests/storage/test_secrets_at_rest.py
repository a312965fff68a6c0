"""Secrets at rest: nothing the server hands out once, or keeps for itself, can be read back
from its database.

``test_no_secret_is_readable_at_rest`` has the running server store every kind of secret in
``SECRET_KINDS`` through its real HTTP API and command line, then reads every column of
every table (the schema reflected with SQLAlchemy's ``MetaData.reflect``, so tables added
later are read too) and, on SQLite, the raw bytes of the database file and its write-ahead
log, which also hold free pages and earlier versions of rows that no query returns.

Each secret is looked for in every form in which a copy of the database would give it away:
each form it was handed out in (an API key and its secret half, a TOTP secret as base32 text
and as key bytes, an enrolment code that carries a secret...), as raw bytes, in hex (either
case), base64 and base64url (padded or not) and base32 (padded or not, either case), and the
plain SHA-256 and SHA-1 of each form in all of those encodings: an unkeyed digest of an
8-digit code is reversed by trying its 10^8 values, and of any secret it is as good as the
secret wherever only the digest is compared. Passwords appear only as scrypt hashes. Keyed
digests (``qrgate.core.digests``: HMAC under a key derived from the KEK) and AEAD
ciphertexts under the KEK (``qrgate.core.aead``) are what belongs there, and each secret is
also found in exactly that protected form, in the table its entry names: a secret whose
storage moved fails here, rather than passing because the test looked in the wrong place.

Adding a kind of secret
    Credentials, fingerprint templates and payment accounts are coming. Each
    is one more ``SecretKind`` in ``SECRET_KINDS``: a name, and a function that stores some
    through the API or the command line and returns each as a ``KeptSecret``: the forms it
    was handed out in, and the table and row of its protected form. Nothing else changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import itertools
import json
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pypdfium2 as pdfium
import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from qrgate.cli.main import cli
from qrgate.clients.phone import PhoneSimulator
from qrgate.clients.token import SoftToken
from qrgate.core import ocra
from qrgate.core.enrolment import read_enrol_code
from qrgate.core.gridcard import parse_cell
from qrgate.core.keyring import SigningKey
from qrgate.core.passwords import verify_password
from qrgate.keystore import load_or_create
from qrgate.qrimage import decode_image
from qrgate.txsign.tokens import activation_question, read_enrolment_code
from support.stack import PASSWORD, Stack, clock, stack, stack_factory
from support.txsign import server_keys

__all__ = ["clock", "stack", "stack_factory"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class KeptSecret:
    """One secret as it was handed out, and where it must be found protected."""

    # Each form the secret was handed out in, by name: none may be readable at rest.
    forms: Mapping[str, bytes]
    # The table of its protected form; None for a secret kept outside the database only.
    table: str | None
    # Whether a row of ``table`` holds it protected (keyed digest, ciphertext, scrypt hash).
    protected: Callable[[Row], bool] = field(default=lambda row: False)


@dataclass
class Vault:
    """What storing and recognising secrets takes: the running stack, its command line, and
    the KEK read from its file as an operator would."""

    stack: Stack
    kek: bytes
    digest_key: bytes = field(init=False)
    aead: AESGCM = field(init=False)
    _logins: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        # Derived here from the formats qrgate.core.digests and qrgate.core.aead document,
        # not with their code: a digest or seal that went wrong there is not trusted here.
        self.digest_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                               info=b"qrgate secret digests v1").derive(self.kek)
        self.aead = AESGCM(self.kek)

    def cli(self, *args: str) -> str:
        settings = self.stack.rt.settings
        env = {"QRGATE_DATA_DIR": str(settings.data_dir),
               "QRGATE_DATABASE_URL": settings.resolved_database_url}
        result = CliRunner().invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def new_user(self, **body: Any) -> str:
        login = f"keeper{next(self._logins)}"
        self.stack.rp.create_user(login, **body)
        return login

    def bound_phone(self, login: str) -> PhoneSimulator:
        phone = self.stack.phone(f"{login}'s phone")
        enrolment = self.stack.rp.start_enrolment(login)
        phone.enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
        return phone

    def keyed(self, secret: str, purpose: str) -> Callable[[bytes], bool]:
        """Whether a stored value is the keyed digest of ``secret``: HMAC-SHA256 under the
        digest key of ``purpose || 0 || SHA-256(secret)``."""
        message = purpose.encode() + b"\0" + hashlib.sha256(secret.encode()).digest()
        expected = hmac.digest(self.digest_key, message, "sha256")
        return lambda stored: bytes(stored) == expected

    def sealed(self, plaintext: bytes, context: bytes) -> Callable[[bytes | None], bool]:
        """Whether a stored value is ``plaintext`` sealed under the KEK: version 1, a
        12-byte nonce, AES-256-GCM with the version and ``context`` authenticated."""
        def opens(stored: bytes | None) -> bool:
            sealed = b"" if stored is None else bytes(stored)
            if sealed[:1] != b"\x01":
                return False
            try:
                return self.aead.decrypt(sealed[1:13], sealed[13:], b"\x01" + context) == plaintext
            except InvalidTag:
                return False
        return opens


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the kinds of secret ------------------------------------------------------------------


def api_keys(vault: Vault) -> list[KeptSecret]:
    made_by_cli = vault.cli("admin", "apikey", "create", "--org", "bank",
                            "--business-id", "web").strip()
    return [api_key(vault, key)
            for key in (made_by_cli, vault.stack.api_key, vault.stack.other.api_key)]


def api_key(vault: Vault, key: str) -> KeptSecret:
    _, prefix, secret = key.split("_", 2)
    matches = vault.keyed(secret, "api_key")
    return KeptSecret(
        forms={"API key": key.encode(), "its secret half": secret.encode(),
               "the secret half's bytes": unb64url(secret)},
        table="api_keys",
        protected=lambda row: row["prefix"] == prefix and matches(row["secret_hash"]))


def passwords(vault: Vault) -> list[KeptSecret]:
    password = secrets.token_urlsafe(12)
    login = vault.new_user(password=password)
    # The stack's alice got hers from provisioning, the new user through the API.
    return [password_of(login, password), password_of("alice", PASSWORD)]


def password_of(login: str, password: str) -> KeptSecret:
    return KeptSecret(
        forms={"password": password.encode()}, table="users",
        protected=lambda row: row["login"] == login and row["password_hash"] is not None
        and verify_password(password, row["password_hash"]))


def totp_secrets(vault: Vault) -> list[KeptSecret]:
    login = vault.new_user()
    uri = vault.stack.rp.setup_totp(login)["uri"]
    secret = pyotp.parse_uri(uri).secret

    def holds(row: Row) -> bool:
        opens = vault.sealed(secret.encode(), f"users.totp_secret:{row['id']}".encode())
        return row["login"] == login and opens(row["totp_secret_enc"])

    return [KeptSecret(forms={"base32 secret": secret.encode(),
                              "key bytes": base64.b32decode(secret),
                              "otpauth URI": uri.encode()},
                       table="users", protected=holds)]


def ocra_token_secrets(vault: Vault) -> list[KeptSecret]:
    stack = vault.stack
    login = vault.new_user()
    code = stack.rp.enrol_token(login)["code"]
    token = SoftToken.enrol(code, server_keys=server_keys(stack), clock=stack.clock)
    # Used once, so the row is read after a counter moved too.
    started = stack.rp.start_transaction(login, demand="buy 1 ACME")
    stack.rp.submit_response(started["transaction_id"], token.sign(started["challenge_code"]))
    opens = vault.sealed(token.secret, f"tokens.secret_enc:{token.token_id}".encode())
    return [KeptSecret(forms={"token secret": token.secret, "enrolment code": code.encode()},
                       table="tokens",
                       protected=lambda row: row["id"] == token.token_id
                       and opens(row["secret_enc"]))]


def activation_client_ids(vault: Vault) -> list[KeptSecret]:
    """The id an app keeps to have a lost activation reply repeated; SoftToken keeps its own
    to itself, so this one activates as the app would, with an id the test chose."""
    stack = vault.stack
    code = stack.rp.enrol_token(vault.new_user())["code"]
    enrolment = read_enrolment_code(code, keys=server_keys(stack), now=stack.clock())
    suite = ocra.parse_suite(enrolment.suite)
    answer = ocra.respond(suite=suite, key=enrolment.secret,
                          question=activation_question(enrolment.token_id),
                          counter=enrolment.counter if suite.uses_counter else None,
                          time_step=None)
    client_id = secrets.token_urlsafe(24)
    activated = httpx.post(f"{stack.base_url}/v1/txsign/tokens/{enrolment.token_id}/activate",
                           json={"response": answer, "client_id": client_id})
    assert activated.status_code == 200, activated.text
    matches = vault.keyed(client_id, "token_client")
    return [KeptSecret(forms={"client id": client_id.encode(),
                              "the client id's bytes": unb64url(client_id)},
                       table="tokens",
                       protected=lambda row: row["id"] == enrolment.token_id
                       and row["activation_client"] is not None
                       and matches(row["activation_client"]))]


def enrolment_secrets(vault: Vault) -> list[KeptSecret]:
    stack = vault.stack
    login = vault.new_user()
    enrolment = stack.rp.start_enrolment(login)
    secret = read_enrol_code(enrolment["code"], keys=stack.rt.keyring.verifier,
                             now=stack.clock()).secret
    # Used, so the row is read after a phone was bound with it too.
    stack.phone().enrol(enrolment["code"], confirm_code=enrolment["confirm_code"])
    matches = vault.keyed(secret, "enrol_secret")
    return [KeptSecret(forms={"enrolment secret": secret.encode(),
                              "its bytes": unb64url(secret),
                              "enrolment code": enrolment["code"].encode()},
                       table="enrolments",
                       protected=lambda row: row["id"] == enrolment["enrolment_id"]
                       and matches(row["secret_hash"]))]


def confirmation_codes(vault: Vault) -> list[KeptSecret]:
    enrolment = vault.stack.rp.start_enrolment(vault.new_user())
    matches = vault.keyed(enrolment["confirm_code"], "enrol_confirm")
    return [KeptSecret(forms={"confirmation code": enrolment["confirm_code"].encode()},
                       table="enrolments",
                       protected=lambda row: row["id"] == enrolment["enrolment_id"]
                       and matches(row["confirm_code_hash"]))]


def browser_tokens(vault: Vault) -> list[KeptSecret]:
    login = vault.new_user()
    phone = vault.bound_phone(login)
    started, browser = vault.stack.start(login)
    browser.status()
    phone.scan_text(started["code"])
    phone.decide(started["challenge_id"], approve=True)
    token = started["browser_token"]
    matches = vault.keyed(token, "browser_token")
    return [KeptSecret(forms={"browser token": token.encode(), "its bytes": unb64url(token)},
                       table="challenges",
                       protected=lambda row: row["id"] == started["challenge_id"]
                       and matches(row["browser_hash"]))]


def signing_keys(vault: Vault) -> list[KeptSecret]:
    """The key the server made at its first start, and one made by ``keys rotate``."""
    live = vault.stack.rt.keys
    first = live.ring.active
    vault.cli("admin", "keys", "rotate")
    live.refresh()
    second = live.ring.active
    assert second.kid != first.kid
    return [signing_key(vault, key) for key in (first, second)]


def signing_key(vault: Vault, key: SigningKey) -> KeptSecret:
    private, encodings = key.private_key, serialization.Encoding
    formats, none = serialization.PrivateFormat, serialization.NoEncryption()
    pkcs8 = private.private_bytes(encodings.DER, formats.PKCS8, none)
    opens = vault.sealed(pkcs8, b"signing_keys.private_key:" + key.kid.hex().encode())
    return KeptSecret(
        forms={"private scalar": private.private_numbers().private_value.to_bytes(32, "big"),
               "PKCS #8 DER": pkcs8,
               "SEC1 DER": private.private_bytes(encodings.DER, formats.TraditionalOpenSSL,
                                                 none),
               "PKCS #8 PEM": private.private_bytes(encodings.PEM, formats.PKCS8, none),
               "SEC1 PEM": private.private_bytes(encodings.PEM, formats.TraditionalOpenSSL,
                                                 none)},
        table="signing_keys",
        protected=lambda row: bytes(row["kid"]) == key.kid and opens(row["private_key_enc"]))


def webhook_keys(vault: Vault) -> list[KeptSecret]:
    """A relying party's (then rotated: the previous key stays, sealed, for a day) and one
    an operator set for the other organisation's application."""
    rp = vault.stack.rp
    first = rp.set_webhook("https://hooks.bank.invalid/qrgate")["secret"]
    second = rp.rotate_webhook_secret()["secret"]
    third = json.loads(vault.cli("admin", "webhook", "set", "--org", "rival", "--business-id",
                                 "shop", "--url", "https://hooks.rival.invalid/"))["secret"]
    return [webhook_key(vault, first, previous=True), webhook_key(vault, second),
            webhook_key(vault, third)]


def webhook_key(vault: Vault, secret: str, *, previous: bool = False) -> KeptSecret:
    text = secret.removeprefix("whsec_")
    key = base64.b64decode(text)
    column = "previous_secret" if previous else "secret"

    def holds(row: Row) -> bool:
        opens = vault.sealed(key, f"webhooks.{column}:{row['app_id']}".encode())
        return opens(row[f"{column}_enc"])

    return KeptSecret(forms={"whsec_ key": secret.encode(), "its base64": text.encode(),
                             "key bytes": key}, table="webhooks", protected=holds)


def gridcard_cells(vault: Vault) -> list[KeptSecret]:
    """A printed grid card's cells, issued by ``qrgate gridcard issue`` and read back from
    its PDF as the card's holder would (the card key is never handed out at all)."""
    login = vault.new_user()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "card.pdf"
        vault.cli("gridcard", "issue", "--org", "bank", "--login", login, "--out", str(out))
        document = pdfium.PdfDocument(out.read_bytes())
    try:
        page = document[0].render(scale=150 / 72).to_pil().convert("L")
    finally:
        document.close()
    png = io.BytesIO()
    page.save(png, format="PNG")
    texts = [code.text for code in decode_image(png.getvalue())]
    assert len(texts) == 30
    return [gridcard_cell(vault, text) for text in texts]


def gridcard_cell(vault: Vault, text: str) -> KeptSecret:
    cell, matches = parse_cell(text), vault.keyed(text, "gridcard_cell")
    return KeptSecret(forms={"grid card cell": text.encode(), "its secret": cell.secret.encode()},
                      table="gridcard_cells",
                      protected=lambda row: row["position"] == cell.position.label
                      and matches(row["digest"]))


def key_encryption_key(vault: Vault) -> list[KeptSecret]:
    return [KeptSecret(forms={"KEK": vault.kek}, table=None)]


@dataclass(frozen=True)
class SecretKind:
    name: str
    store: Callable[[Vault], list[KeptSecret]]


SECRET_KINDS = [
    SecretKind("API key", api_keys),
    SecretKind("user password", passwords),
    SecretKind("TOTP secret", totp_secrets),
    SecretKind("OCRA token secret", ocra_token_secrets),
    SecretKind("token activation client id", activation_client_ids),
    SecretKind("device enrolment secret", enrolment_secrets),
    SecretKind("enrolment confirmation code", confirmation_codes),
    SecretKind("browser token", browser_tokens),
    SecretKind("signing private key", signing_keys),
    SecretKind("webhook signing key", webhook_keys),
    SecretKind("grid card cell", gridcard_cells),
    SecretKind("key-encryption key", key_encryption_key),
]


# --- where a secret would give itself away ------------------------------------------------


def encodings(data: bytes) -> dict[str, bytes]:
    b64, b64url, b32 = (base64.b64encode(data), base64.urlsafe_b64encode(data),
                        base64.b32encode(data))
    return {
        "raw": data, "hex": data.hex().encode(), "upper-case hex": data.hex().upper().encode(),
        "base64": b64, "unpadded base64": b64.rstrip(b"="),
        "base64url": b64url, "unpadded base64url": b64url.rstrip(b"="),
        "base32": b32, "unpadded base32": b32.rstrip(b"="),
        "lower-case base32": b32.lower(), "unpadded lower-case base32": b32.lower().rstrip(b"="),
    }


def giveaways(secret: KeptSecret) -> dict[bytes, str]:
    """Every byte string whose presence gives the secret away, and what it is."""
    found: dict[bytes, str] = {}
    for name, form in secret.forms.items():
        for digest, value in (("", form), ("SHA-256 of ", hashlib.sha256(form).digest()),
                              ("SHA-1 of ", hashlib.sha1(form).digest())):
            for encoding, needle in encodings(value).items():
                found.setdefault(needle, f"{digest}{name}, {encoding}")
    return found


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return str(value).encode()


def every_table(vault: Vault) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table there is, as reflected from the database itself."""
    engine = vault.stack.rt.engine
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.connect() as conn:
        return {table.name: [dict(row._mapping) for row in conn.execute(select(table))]
                for table in metadata.sorted_tables}


def sqlite_files(vault: Vault) -> list[Path]:
    url = make_url(vault.stack.rt.settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or url.database is None:
        return []
    database = Path(url.database)
    return [path for path in (database, Path(f"{database}-wal")) if path.exists()]


def findings(kind: str, secret: KeptSecret, tables: dict[str, list[dict[str, Any]]],
             files: list[Path]) -> Iterator[str]:
    needles = giveaways(secret)
    for table, rows in tables.items():
        for number, row in enumerate(rows):
            for column, value in row.items():
                if value is None:
                    continue
                cell = as_bytes(value)
                for needle, what in needles.items():
                    if needle in cell:
                        where = row.get("id", f"#{number}")
                        yield f"{table}.{column} (row {where}) holds the {kind}: {what}"
    for path in files:
        content = path.read_bytes()
        for needle, what in needles.items():
            if needle in content:
                yield f"the file {path.name} holds the {kind}: {what}"
    if secret.table is not None and not any(map(secret.protected,
                                                tables.get(secret.table, []))):
        yield (f"no row of {secret.table} holds the {kind} protected as its entry in "
               "SECRET_KINDS says: stored elsewhere, or differently?")


# --- the test ------------------------------------------------------------------------------


def test_no_secret_is_readable_at_rest(stack: Stack) -> None:
    settings = stack.rt.settings
    vault = Vault(stack, kek=load_or_create(settings.data_dir, env=settings.env).kek)
    kept = [(kind.name, secret) for kind in SECRET_KINDS for secret in kind.store(vault)]

    tables = every_table(vault)
    files = sqlite_files(vault)
    problems = [problem for name, secret in kept
                for problem in findings(name, secret, tables, files)]
    problems += [f"users.password_hash holds something other than an scrypt hash: "
                 f"{str(row['password_hash'])[:12]}..."
                 for row in tables["users"]
                 if row["password_hash"] is not None
                 and not str(row["password_hash"]).startswith("scrypt$")]
    if problems:
        pytest.fail(f"{len(problems)} findings over {len(kept)} secrets of "
                    f"{len(SECRET_KINDS)} kinds:\n" + "\n".join(problems), pytrace=False)
