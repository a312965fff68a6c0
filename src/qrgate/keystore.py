"""Key material that stays out of the database: the KEK and keys managed outside qrgate.

Code-signing keys live in the database, sealed under the key-encryption key (KEK), and are
shared by every node (see :mod:`qrgate.keys` and docs/keys.md). What stays in files:

``keys/kek`` under ``data_dir``
    32 random bytes, 0600: the KEK of :class:`~qrgate.core.aead.SecretBox`. It is made on
    first start together with ``keys/`` (mode 0700), and only then: if ``keys/`` exists
    but ``keys/kek`` does not, loading fails instead of making a new KEK, because a new KEK
    would leave every secret already stored in the database unreadable.
``keys/signing-<kidhex>.pem``, ``keys/active``, ``keys/retired``
    The ring earlier versions kept here (PKCS8 PEM private keys, the hex kid of the one that
    signs, hex kids one a line that no longer verify). :func:`load_legacy_ring` reads it so
    that the first start on a database without keys imports it; the files are never
    written, and never read again once the database holds keys.

Environment overrides for production (an empty value counts as unset):

``QRGATE_SIGNING_KEY_FILE``
    PEM file (PKCS8 or SEC1, unencrypted) with the P-256 private key that signs. The keys in
    the database are then not used for signing or verifying codes, and rotation does not
    apply: rotate by deploying a new file and listing the old one in
    ``QRGATE_VERIFY_KEY_FILES``.
``QRGATE_VERIFY_KEY_FILES``
    Comma-separated list of PEM files, private or public P-256 keys, that verify but never
    sign: older keys not yet retired. Added to the key above or to the database's keys.
``QRGATE_KEK_FILE``
    File holding the 32-byte KEK, either as 32 raw bytes or as 64 hex characters
    (surrounding whitespace allowed). ``keys/kek`` is then neither read nor created.

Only ES256 (P-256) keys are accepted; anything else is refused with
:class:`~qrgate.errors.InvalidField` (code ``"bad_key_material"``), as are unreadable or
inconsistent files.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qrgate.core.aead import KEY_LEN
from qrgate.core.keyring import KID_LEN, SigningKey, kid_for
from qrgate.errors import InvalidField

ENV_SIGNING_KEY_FILE: Final = "QRGATE_SIGNING_KEY_FILE"
ENV_VERIFY_KEY_FILES: Final = "QRGATE_VERIFY_KEY_FILES"
ENV_KEK_FILE: Final = "QRGATE_KEK_FILE"

KEYS_DIR: Final = "keys"
ACTIVE_FILE: Final = "active"
RETIRED_FILE: Final = "retired"
KEK_FILE: Final = "kek"
_PEM_NAME: Final = re.compile(r"signing-([0-9a-f]{16})\.pem", re.ASCII)
_HEX_KEK: Final = re.compile(rb"[0-9a-fA-F]{64}", re.ASCII)

PublicKeys = dict[bytes, ec.EllipticCurvePublicKey]


@dataclass(frozen=True, kw_only=True, repr=False)
class KeyMaterial:
    """The KEK, plus the keys the environment names (``signing_key`` None: none named)."""

    kek: bytes
    signing_key: SigningKey | None
    verify_keys: PublicKeys

    def __repr__(self) -> str:
        signing = None if self.signing_key is None else self.signing_key.kid.hex()
        return (f"KeyMaterial(kek=<redacted>, signing_key={signing}, "
                f"verify_keys={sorted(kid.hex() for kid in self.verify_keys)})")


@dataclass(frozen=True, kw_only=True)
class LegacyRing:
    """The file-managed ring of earlier versions, as found under ``keys/``."""

    active: SigningKey
    verify_only: tuple[SigningKey, ...]
    retired: tuple[SigningKey, ...]
    # When the last key was retired (the mtime of keys/retired): the files keep no date
    # per key, and this bounds every retirement from above.
    retired_at: float


def _bad(detail: str) -> InvalidField:
    return InvalidField(detail, code="bad_key_material")


# --- file primitives -------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600; never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, 0o600)  # the umask could only narrow it, but be explicit
        out.write(data)
        out.flush()
        os.fsync(fd)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror}") from exc


# --- key files -------------------------------------------------------------------------


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the PEM is encrypted
        raise _bad(f"{path} is not an unencrypted private key PEM") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise _bad(f"{path} does not hold a P-256 (ES256) key")
    return key


def _load_public(path: Path) -> ec.EllipticCurvePublicKey:
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return _load_private(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise _bad(f"{path} is not a public or private key PEM") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise _bad(f"{path} does not hold a P-256 (ES256) key")
    return key


def _signing_key(path: Path) -> SigningKey:
    # The file's mtime is the key's creation time: earlier versions' rotate stamped it.
    return SigningKey.from_private_key(_load_private(path), created_at=path.stat().st_mtime)


def _kid_from_hex(text: str, *, where: Path) -> bytes:
    try:
        kid = bytes.fromhex(text)
    except ValueError as exc:
        raise _bad(f"{where}: {text!r} is not a hex key id") from exc
    if len(kid) != KID_LEN:
        raise _bad(f"{where}: key ids are {KID_LEN} bytes")
    return kid


# --- the legacy file-managed ring ------------------------------------------------------


def _pem_files(keys_dir: Path) -> dict[bytes, Path]:
    found: dict[bytes, Path] = {}
    for path in keys_dir.glob("signing-*.pem"):
        match = _PEM_NAME.fullmatch(path.name)
        if match is None:
            raise _bad(f"unexpected key file name {path.name}")
        found[bytes.fromhex(match.group(1))] = path
    return found


def _read_retired(keys_dir: Path) -> tuple[frozenset[bytes], float]:
    path = keys_dir / RETIRED_FILE
    if not path.exists():
        return frozenset(), 0.0
    lines = _read(path).decode("ascii", "replace").split()
    return frozenset(_kid_from_hex(line, where=path) for line in lines), path.stat().st_mtime


def load_legacy_ring(data_dir: Path) -> LegacyRing | None:
    """The ring an earlier version kept under ``data_dir/keys``, or None if there is none.

    An inconsistent directory (a PEM named after another key, a missing or retired active
    key) is refused rather than half imported: the operator must say which key signs.
    """
    keys_dir = data_dir / KEYS_DIR
    active_path = keys_dir / ACTIVE_FILE
    if not keys_dir.is_dir():
        return None
    if not active_path.exists():
        if _pem_files(keys_dir):
            raise _bad(f"{active_path} is missing but signing keys exist; restore it")
        return None
    active_text = _read(active_path).decode("ascii", "replace").strip()
    active_kid = _kid_from_hex(active_text, where=active_path)
    keys: dict[bytes, SigningKey] = {}
    for kid, path in _pem_files(keys_dir).items():
        key = _signing_key(path)
        if key.kid != kid:
            raise _bad(f"{path.name} holds the key with kid {key.kid.hex()}")
        keys[kid] = key
    active = keys.pop(active_kid, None)
    if active is None:
        raise _bad(f"the active key {active_kid.hex()} has no signing-*.pem file")
    retired, retired_at = _read_retired(keys_dir)
    if active_kid in retired:
        raise _bad(f"the active key {active_kid.hex()} is listed as retired")
    return LegacyRing(
        active=active,
        verify_only=tuple(key for kid, key in sorted(keys.items()) if kid not in retired),
        retired=tuple(key for kid, key in sorted(keys.items()) if kid in retired),
        retired_at=retired_at,
    )


# --- the KEK ---------------------------------------------------------------------------


def _create_keys_dir(data_dir: Path) -> None:
    # Built aside and renamed into place so a crash never leaves a keys/ without a KEK,
    # which the next start would refuse (a missing KEK is not regenerated, see above).
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=".keys-"))
    try:
        os.chmod(tmp, 0o700)
        _write_new(tmp / KEK_FILE, os.urandom(KEY_LEN))
        os.rename(tmp, data_dir / KEYS_DIR)
    except OSError:
        # Another process may have won the race to create keys/; use theirs.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (data_dir / KEYS_DIR).is_dir():
            raise
    _fsync_dir(data_dir)


def _parse_kek(data: bytes, *, where: Path) -> bytes:
    if len(data) == KEY_LEN:
        return data
    stripped = data.strip()
    if _HEX_KEK.fullmatch(stripped):
        return bytes.fromhex(stripped.decode("ascii"))
    raise _bad(f"{where} must hold 32 raw bytes or 64 hex characters")


def _load_kek(data_dir: Path, kek_file: Path | None) -> bytes:
    if kek_file is not None:
        return _parse_kek(_read(kek_file), where=kek_file)
    keys_dir = data_dir / KEYS_DIR
    if not keys_dir.exists():
        _create_keys_dir(data_dir)
    kek_path = keys_dir / KEK_FILE
    if not kek_path.exists():
        raise _bad(
            f"{kek_path} is missing; refusing to make a new KEK, which would leave "
            f"stored secrets unreadable. Restore it or set {ENV_KEK_FILE}."
        )
    return _parse_kek(_read(kek_path), where=kek_path)


# --- overrides from the environment ----------------------------------------------------


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value) if value else None


def _env_verify_keys(env: Mapping[str, str]) -> PublicKeys:
    keys: PublicKeys = {}
    for item in env.get(ENV_VERIFY_KEY_FILES, "").split(","):
        if item.strip():
            key = _load_public(Path(item.strip()))
            keys[kid_for(key)] = key
    return keys


# --- public API ------------------------------------------------------------------------


def load_or_create(data_dir: Path, *, env: Mapping[str, str]) -> KeyMaterial:
    """The KEK (made on first start, see the module docs) and the keys ``env`` names."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        os.chmod(data_dir, 0o700)
    signing_file = _env_path(env, ENV_SIGNING_KEY_FILE)
    signing_key = None
    if signing_file is not None:
        signing_key = SigningKey.from_private_key(
            _load_private(signing_file), created_at=signing_file.stat().st_mtime
        )
    verify_keys = _env_verify_keys(env)
    kek = _load_kek(data_dir, _env_path(env, ENV_KEK_FILE))
    return KeyMaterial(kek=kek, signing_key=signing_key, verify_keys=verify_keys)
