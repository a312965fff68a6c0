"""Loads, creates and rotates the server's key material.

On first start :func:`load_or_create` lays out, under ``data_dir`` (created with mode 0700)::

    keys/                          mode 0700
    keys/signing-<kidhex>.pem      ES256 (P-256) private key, PKCS8 PEM, unencrypted, 0600
    keys/active                    hex kid of the key that signs new codes
    keys/retired                   hex kids, one a line, that no longer verify
    keys/kek                       32 random bytes, 0600: the key-encryption key of SecretBox

Every ``signing-*.pem`` that is neither active nor retired stays a verify-only key, so codes
signed before a :func:`rotate` keep verifying until the key is :func:`retire`-d. Retiring
keeps the PEM file (the step can be undone by editing ``keys/retired``); delete it by hand
once no code signed with it can still be around.

The KEK is only ever generated together with a fresh ``keys/`` directory. If ``keys/``
exists but ``keys/kek`` does not, loading fails instead of making a new KEK, because a new
KEK would leave every secret already stored in the database unreadable.

Environment overrides for production (when set, they are used and nothing is written for
them; an empty value counts as unset):

``QRGATE_SIGNING_KEY_FILE``
    PEM file (PKCS8 or SEC1, unencrypted) with the P-256 private key that signs. The
    ``keys/`` signing files are then ignored entirely, and :func:`rotate` / :func:`retire`
    do not apply: rotate by deploying a new file and listing the old one in
    ``QRGATE_VERIFY_KEY_FILES``.
``QRGATE_VERIFY_KEY_FILES``
    Comma-separated list of PEM files, private or public P-256 keys, that verify but never
    sign: older keys not yet retired. Added to the file-managed keys or to the key above.
``QRGATE_KEK_FILE``
    File holding the 32-byte KEK, either as 32 raw bytes or as 64 hex characters
    (surrounding whitespace allowed). ``keys/kek`` is then neither read nor created.

Only ES256 (P-256) keys are accepted; anything else is refused with
:class:`~qrgate.errors.InvalidField` (code ``"bad_key_material"``), as are unreadable or
inconsistent files.
"""

from __future__ import annotations

import contextlib
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
from qrgate.core.keyring import KID_LEN, KeyRing, SigningKey, kid_for
from qrgate.errors import Conflict, InvalidField, NotFound

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
    keyring: KeyRing
    kek: bytes

    def __repr__(self) -> str:
        return f"KeyMaterial(keyring={self.keyring!r}, kek=<redacted>)"


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


def _replace(path: Path, data: bytes) -> None:
    """Atomically replace ``path``: readers see the old or the new content, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror}") from exc


# --- key files -------------------------------------------------------------------------


def _pem_for(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


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
    # The file's mtime is the key's creation time: rotate() stamps it with its ``now``.
    return SigningKey.from_private_key(_load_private(path), created_at=path.stat().st_mtime)


def _kid_from_hex(text: str, *, where: Path) -> bytes:
    try:
        kid = bytes.fromhex(text)
    except ValueError as exc:
        raise _bad(f"{where}: {text!r} is not a hex key id") from exc
    if len(kid) != KID_LEN:
        raise _bad(f"{where}: key ids are {KID_LEN} bytes")
    return kid


# --- the file-managed ring -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _FileRing:
    active: SigningKey
    others: dict[bytes, SigningKey]
    retired: frozenset[bytes]

    def verify_only(self) -> PublicKeys:
        return {kid: key.public_key for kid, key in self.others.items() if kid not in self.retired}


def _pem_files(keys_dir: Path) -> dict[bytes, Path]:
    found: dict[bytes, Path] = {}
    for path in keys_dir.glob("signing-*.pem"):
        match = _PEM_NAME.fullmatch(path.name)
        if match is None:
            raise _bad(f"unexpected key file name {path.name}")
        found[bytes.fromhex(match.group(1))] = path
    return found


def _read_retired(keys_dir: Path) -> frozenset[bytes]:
    path = keys_dir / RETIRED_FILE
    if not path.exists():
        return frozenset()
    lines = _read(path).decode("ascii", "replace").split()
    return frozenset(_kid_from_hex(line, where=path) for line in lines)


def _load_file_ring(keys_dir: Path) -> _FileRing:
    active_path = keys_dir / ACTIVE_FILE
    if not active_path.exists():
        if _pem_files(keys_dir):
            raise _bad(f"{active_path} is missing but signing keys exist; restore it")
        raise NotFound(f"no file-managed signing key under {keys_dir}")
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
    retired = _read_retired(keys_dir)
    if active_kid in retired:
        raise _bad(f"the active key {active_kid.hex()} is listed as retired")
    return _FileRing(active=active, others=keys, retired=retired)


def _new_signing_key(keys_dir: Path, *, now: float | None) -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    path = keys_dir / f"signing-{kid_for(private_key.public_key()).hex()}.pem"
    _write_new(path, _pem_for(private_key))
    if now is not None:
        os.utime(path, (now, now))
    return _signing_key(path)


def _ensure_signing_key(keys_dir: Path) -> None:
    """Create the first signing key, but only where none has ever existed."""
    if (keys_dir / ACTIVE_FILE).exists() or _pem_files(keys_dir):
        return
    key = _new_signing_key(keys_dir, now=None)
    _replace(keys_dir / RETIRED_FILE, b"")
    _replace(keys_dir / ACTIVE_FILE, key.kid.hex().encode() + b"\n")


def _create_keys_dir(data_dir: Path, *, signing: bool, kek: bool) -> None:
    # Built aside and renamed into place so a crash never leaves a half-made keys/ that
    # the next start would refuse (a missing KEK is not regenerated, see module docs).
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=".keys-"))
    try:
        os.chmod(tmp, 0o700)
        if signing:
            _ensure_signing_key(tmp)
        if kek:
            _write_new(tmp / KEK_FILE, os.urandom(KEY_LEN))
        os.rename(tmp, data_dir / KEYS_DIR)
    except OSError:
        # Another process may have won the race to create keys/; use theirs.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (data_dir / KEYS_DIR).is_dir():
            raise
    _fsync_dir(data_dir)


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


def _parse_kek(data: bytes, *, where: Path) -> bytes:
    if len(data) == KEY_LEN:
        return data
    stripped = data.strip()
    if _HEX_KEK.fullmatch(stripped):
        return bytes.fromhex(stripped.decode("ascii"))
    raise _bad(f"{where} must hold 32 raw bytes or 64 hex characters")


# --- public API ------------------------------------------------------------------------


def load_or_create(data_dir: Path, *, env: Mapping[str, str]) -> KeyMaterial:
    signing_file = _env_path(env, ENV_SIGNING_KEY_FILE)
    kek_file = _env_path(env, ENV_KEK_FILE)
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        os.chmod(data_dir, 0o700)
    keys_dir = data_dir / KEYS_DIR
    if not keys_dir.exists():
        if signing_file is None or kek_file is None:
            _create_keys_dir(data_dir, signing=signing_file is None, kek=kek_file is None)
    elif signing_file is None:
        _ensure_signing_key(keys_dir)

    if signing_file is not None:
        active = SigningKey.from_private_key(
            _load_private(signing_file), created_at=signing_file.stat().st_mtime
        )
        verify_only: PublicKeys = {}
    else:
        ring = _load_file_ring(keys_dir)
        active, verify_only = ring.active, ring.verify_only()
    verify_only.update(_env_verify_keys(env))

    if kek_file is not None:
        kek = _parse_kek(_read(kek_file), where=kek_file)
    else:
        kek_path = keys_dir / KEK_FILE
        if not kek_path.exists():
            raise _bad(
                f"{kek_path} is missing; refusing to make a new KEK, which would leave "
                f"stored secrets unreadable. Restore it or set {ENV_KEK_FILE}."
            )
        kek = _parse_kek(_read(kek_path), where=kek_path)
    return KeyMaterial(keyring=KeyRing(active=active, verify_only=verify_only), kek=kek)


def rotate(data_dir: Path, *, now: float) -> bytes:
    """Make a new signing key active; the previous one stays verify-only. Returns its kid."""
    keys_dir = data_dir / KEYS_DIR
    _load_file_ring(keys_dir)  # refuse to rotate on top of an inconsistent directory
    key = _new_signing_key(keys_dir, now=now)
    _replace(keys_dir / ACTIVE_FILE, key.kid.hex().encode() + b"\n")
    return key.kid


def retire(data_dir: Path, kid: bytes) -> None:
    """Stop accepting codes signed with ``kid``. The active key cannot be retired."""
    keys_dir = data_dir / KEYS_DIR
    ring = _load_file_ring(keys_dir)
    if kid == ring.active.kid:
        raise Conflict("the active signing key cannot be retired; rotate first")
    if kid not in ring.others:
        raise NotFound(f"no signing key with kid {kid.hex()}")
    if kid in ring.retired:
        return
    lines = sorted(k.hex() for k in ring.retired | {kid})
    _replace(keys_dir / RETIRED_FILE, "".join(f"{line}\n" for line in lines).encode())
